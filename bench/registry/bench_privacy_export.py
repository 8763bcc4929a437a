"""Benchmark of the personal-data export (`services/registry/privacy/export.py`, issue 16): a script, not a test.

Generates a register of `--complaints` files (default 200,000), each with its complainant party, an incoming message,
an outgoing notice and two change-log entries (so 6 rows a file: 1,200,000 rows by default, in the tables the export
reads), inserted through the migrated schema; then registers one citizen's `--files` files (default 20) through the
registry's real path, each with a raw original and an attachment in a real NATS object store, a notice sent and a
staff change; then times `export_person` (`--repeat` runs: min / median / max) and prints the query plans of the
person lookups, which must be index searches, not scans.

    .venv/bin/python bench/registry/bench_privacy_export.py --backend sqlite --backend postgres
    .venv/bin/python bench/registry/bench_privacy_export.py --backend postgres --complaints 1000000

PostgreSQL: a throw-away database on OMBUDSDESK_BENCH_POSTGRES_URL (default the local server), as bench_registry.py.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nats  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402

from bench_registry import new_database  # noqa: E402
from ombudsdesk.embedded_nats import EmbeddedNats  # noqa: E402
from services.registry import commands  # noqa: E402
from services.registry.backoffice.pages.file_originals import OriginalStore  # noqa: E402
from services.registry.handlers import Registry  # noqa: E402
from services.registry.models import CaseParty, ChangeLogEntry, Complaint, ThreadMessage  # noqa: E402
from services.registry.privacy.export import export_person  # noqa: E402
from services.registry.repository import RegistryStore, migrate  # noqa: E402
from services.registry.settings import RegistrySettings  # noqa: E402
from services.registry.wiring import policy_from_settings  # noqa: E402
from shared import streams  # noqa: E402
from shared.database import create_engine  # noqa: E402
from shared.events import AttachmentRef, MessageReceived, NotificationSent, Party  # noqa: E402
from shared.stream_admin import ensure_streams  # noqa: E402

CITIZEN = "bench.citizen@example.be"
CREATED = datetime(2026, 11, 24, tzinfo=timezone.utc)
BATCH = 5000


class _NoPublish:
    async def publish(self, rows: object) -> None:
        return None


async def generate(url: str, complaints: int) -> int:
    """`complaints` files of other people, 6 rows each across complaints, parties, thread and change log."""
    engine = create_engine(url)
    await migrate(engine)
    rng = random.Random(16)
    tables = {name: [] for name in ("complaints", "parties", "thread", "changes")}
    rows = 0
    started = time.perf_counter()

    async def flush() -> None:
        async with engine.begin() as connection:
            for name, entity in (("complaints", Complaint), ("parties", CaseParty), ("thread", ThreadMessage),
                                 ("changes", ChangeLogEntry)):
                if tables[name]:
                    await connection.execute(insert(entity.__table__), tables[name])
                    tables[name].clear()

    for i in range(1, complaints + 1):
        year, sequence = 2000 + i % 10, i // 10 + 1  # years the registry does not number now
        email = f"c{rng.randrange(complaints // 2)}@example.org"  # people with several files, as in life
        day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        at = datetime(day.year, day.month, day.day, 9, tzinfo=timezone.utc)
        tables["complaints"].append({
            "id": i, "number": f"GEN-{year}-{sequence:06d}", "year": year, "sequence": sequence,
            "message_key": f"gen-{i}", "kind": "complaint", "channel": "email", "received_at": at,
            "legal_start": day, "complainant_name": f"Nom{i}", "complainant_email": email,
            "subject_line": f"sujet {i}", "body": "texte " * 40, "attachments": [], "admissibility": "admissible",
            "admissibility_reasons": [], "status": "closed", "acknowledgment_due": day + timedelta(days=7),
            "answer_due": day + timedelta(days=45), "answer_extended": False, "paused_days": 0,
            "recommendations": [], "automated": False, "created_at": CREATED, "updated_at": CREATED})
        tables["parties"].append({"complaint_id": i, "email": email, "role": "complainant", "added_by": "system",
                                  "added_at": at})
        tables["thread"] += [
            {"complaint_id": i, "direction": "in", "message_key": f"gen-{i}", "message_id": f"g{i}@example.org",
             "sender_name": f"Nom{i}", "sender_email": email, "recipient": None, "subject_line": f"sujet {i}", "body": "texte " * 40,
             "attachments": [], "automated": False, "occurred_at": at},
            {"complaint_id": i, "direction": "out", "message_key": f"out:gen-{i}", "message_id": f"n{i}@o.example",
             "sender_name": "", "sender_email": None, "recipient": email, "subject_line": "Accusé", "body": "", "attachments": [],
             "automated": False, "occurred_at": at + timedelta(hours=1)}]
        tables["changes"] += [{"complaint_id": i, "change_id": f"gen-{i}-{n}", "change": "registered", "actor": "s",
                               "details": {}, "at": at} for n in range(2)]
        rows += 6
        if len(tables["complaints"]) == BATCH:
            await flush()
    await flush()
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Let the sequences continue after the generated ids (the registry's own inserts follow).
            for table in ("complaints", "case_parties", "thread_messages", "change_log"):
                await connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            await connection.commit()
        await connection.exec_driver_sql("ANALYZE")
        await connection.commit()
    await engine.dispose()
    print(f"  generated {complaints} files, {rows} rows in {time.perf_counter() - started:.0f} s")
    return rows


async def citizen(url: str, nats_url: str, files: int) -> None:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await ensure_streams(js)
    raws, pieces = await js.object_store(streams.BUCKET_RAW_MESSAGES), await js.object_store(streams.BUCKET_ATTACHMENTS)
    engine = create_engine(url)
    registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), _NoPublish())
    for i in range(files):
        piece = f"%PDF-1.4 bench {i}\n".encode() * 5000  # ~90 kB
        digest = hashlib.sha256(piece).hexdigest()
        await raws.put(f"bench-{i}.eml", b"From: x\r\n\r\n" + b"ligne de texte\r\n" * 2000)
        await pieces.put(f"sha256-{digest}", piece)
        outcome = await registry.handle(MessageReceived(
            message_key=f"bench-{i}", received_at=CREATED + timedelta(minutes=i), sender=Party(name="Bench",
                                                                                              email=CITIZEN),
            subject_line=f"Dossier {i}", text="Texte.", message_id=f"<bench{i}@example.be>",
            raw_object=f"bench-{i}.eml", attachments=(AttachmentRef(
                filename="piece.pdf", content_type="application/pdf", size=len(piece), sha256=digest,
                object_name=f"sha256-{digest}"),)))
        await registry.handle(NotificationSent(notification_key=f"bench-ack-{i}", complaint_number=outcome.number,
                                               notice_kind="acknowledgment", recipient=CITIZEN,
                                               message_id=f"ack{i}@o.example", subject_line="Accusé"))
        await registry.handle(commands.Assign(outcome.number, "agent@med.example", "boss@med.example", None))
    await engine.dispose()
    await client.close()


async def plans(url: str) -> None:
    engine = create_engine(url)
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    queries = {
        "files as complainant": "SELECT id FROM complaints WHERE complainant_email = :e",
        "files as party": "SELECT complaint_id FROM case_parties WHERE email = :e",
        "messages by sender": "SELECT id FROM thread_messages WHERE substr(thread_messages.sender_email, 1, 320) = :e",
        "held by sender": "SELECT id FROM holding_pen WHERE sender_email = :e",
        "thread of a file": "SELECT id FROM thread_messages WHERE complaint_id IN (1, 2, 3)",
    }
    async with engine.connect() as connection:
        for name, sql in queries.items():
            plan = [" ".join(str(v) for v in row) for row in (await connection.execute(text(explain + sql),
                                                                                      {"e": CITIZEN})).all()]
            print(f"  plan, {name}: {' | '.join(plan)[:200]}")
    await engine.dispose()


async def run(backend: str, complaints: int, files: int, repeat: int, workdir: Path) -> None:
    url, drop = await new_database(backend, workdir)
    nats_server = EmbeddedNats(workdir / f"nats-{backend}")
    nats_server.start()
    try:
        print(f"{backend}:")
        await generate(url, complaints)
        await citizen(url, nats_server.url, files)
        await plans(url)
        engine = create_engine(url)
        client = await nats.connect(nats_server.url)
        js = client.jetstream()
        store = RegistryStore(engine)
        times, size, numbers = [], 0, 0
        for _ in range(repeat):
            started = time.perf_counter()
            result = await export_person(store, CITIZEN, OriginalStore(lambda: js), now=CREATED,
                                         zone=ZoneInfo("Europe/Brussels"), organisation="Bench")
            times.append(time.perf_counter() - started)
            size, numbers = len(result.archive), len(result.numbers)
            assert not result.missing, result.missing
        print(f"  export of {numbers} files ({size / 1e3:.0f} kB zip): min {min(times):.2f} s, "
              f"median {statistics.median(times):.2f} s, max {max(times):.2f} s over {repeat} runs")
        await client.close()
        await engine.dispose()
    finally:
        nats_server.stop()
        await drop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--complaints", type=int, default=200_000, help="other people's files to generate")
    parser.add_argument("--files", type=int, default=20, help="the citizen's own files")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ombudsdesk-bench-export-") as workdir:
        for backend in args.backend or ["sqlite"]:
            await run(backend, args.complaints, args.files, args.repeat, Path(workdir))


if __name__ == "__main__":
    asyncio.run(main())
