"""Registry benchmarks (a script, not a test): prints throughput and latency percentiles next to the raw limit
measured in the same run on the same database.

1. registrations: `Registry.on_message_received` (screening, numbering transaction, thread, change log, outbox),
   one at a time, next to a bare loop of one-row INSERT transactions into a scratch table with the same columns;
2. pipeline: the same number of `MessageReceived` events published to a real NATS and registered by the running
   service (consumer, settle, publish of the registered event), measured until the last `ComplaintRegistered`;
3. big register: a generated register of `--rows` complaints (default 1,000,000) over ten years (inserted through the
   migrated schema, so SQLite's search index triggers run too), then the p95 of the staff list / search queries and
   the time of the annual indicators for one year (5 runs).

    .venv/bin/python bench/registry/bench_registry.py --backend sqlite --backend postgres
    .venv/bin/python bench/registry/bench_registry.py --backend postgres --rows 1000000 --skip-pipeline

PostgreSQL: a throw-away database is created on OMBUDSDESK_BENCH_POSTGRES_URL (default the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import nats  # noqa: E402
import structlog  # noqa: E402
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, Text, insert, make_url  # noqa: E402

from ombudsdesk.embedded_nats import EmbeddedNats  # noqa: E402
from services.registry.handlers import Registry  # noqa: E402
from services.registry.models import Complaint  # noqa: E402
from services.registry.reports import annual_report  # noqa: E402
from services.registry.repository import ComplaintFilter, RegistryStore, migrate  # noqa: E402
from services.registry.settings import RegistrySettings  # noqa: E402
from services.registry.wiring import build_registry, policy_from_settings  # noqa: E402
from shared import streams  # noqa: E402
from shared.database import create_engine  # noqa: E402
from shared.events import MessageReceived, Party  # noqa: E402
from shared.stream_admin import ensure_streams  # noqa: E402

ADMIN_URL = os.environ.get("OMBUDSDESK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ENDED = {"closed", "inadmissible", "redirected", "withdrawn"}
OLD_CASES_END = date(2026, 3, 1)
TEXT = ("Madame, Monsieur, je conteste la facture d'eau reçue le mois dernier; le service n'a pas répondu à mes "
        "deux courriers. Je vous prie de bien vouloir examiner ma plainte.")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return f"p50 {at(50):.1f} ms, p95 {at(95):.1f} ms, p99 {at(99):.1f} ms"


def message(i: int, at: datetime) -> MessageReceived:
    return MessageReceived(message_key=f"bench-{uuid.uuid4().hex}", received_at=at,
                           sender=Party(name=f"Citoyen {i}", email=f"citoyen{i}@example.org"),
                           subject_line=f"Plainte {i}: facture contestée", text=TEXT, message_id=f"<b{i}@example.org>")


class NoPublish:
    async def publish(self, rows: object) -> None:
        return None


async def new_database(backend: str, workdir: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"

        async def drop_file() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return f"sqlite+aiosqlite:///{path}", drop_file
    name = f"ombudsdesk_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        connection = await asyncpg.connect(ADMIN_URL)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    url = make_url(ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), drop


async def bench_registrations(url: str, count: int) -> None:
    engine = create_engine(url)
    await migrate(engine)
    scratch = Table("bench_bare", MetaData(), Column("id", Integer, primary_key=True),
                    Column("number", String(40)), Column("message_key", String(512), unique=True),
                    Column("received_at", DateTime(timezone=True)), Column("legal_start", Date),
                    Column("subject_line", Text), Column("body", Text))
    async with engine.begin() as connection:
        await connection.run_sync(scratch.metadata.create_all)
    now = datetime.now(timezone.utc)
    bare: list[float] = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(insert(scratch).values(
                number=f"MED-2026-{i:05d}", message_key=uuid.uuid4().hex, received_at=now, legal_start=now.date(),
                subject_line=f"Plainte {i}", body=TEXT))
        bare.append(time.perf_counter() - t0)
    bare_rate = count / (time.perf_counter() - started)

    registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), NoPublish())
    events = [message(i, now) for i in range(count)]
    latencies: list[float] = []
    started = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        await registry.on_message_received(event)
        latencies.append(time.perf_counter() - t0)
    rate = count / (time.perf_counter() - started)
    await engine.dispose()
    print(f"  bare insert loop (1 row / transaction): {bare_rate:8.0f} /s   {percentiles(bare)}")
    print(f"  registrations (use case, no NATS):      {rate:8.0f} /s   {percentiles(latencies)}"
          f"   = {rate / bare_rate:.0%} of the bare loop")


async def bench_pipeline(url: str, count: int, workdir: Path) -> None:
    with EmbeddedNats(workdir / f"js-{uuid.uuid4().hex[:6]}") as server:
        connection = await nats.connect(server.url)
        js = connection.jetstream()
        await ensure_streams(js)
        now = datetime.now(timezone.utc)
        events = [message(i, now) for i in range(count)]
        for chunk in range(0, count, 200):
            await asyncio.gather(*(js.publish(e.subject, e.model_dump_json().encode(),
                                              headers={"Nats-Msg-Id": e.dedup_id()})
                                   for e in events[chunk:chunk + 200]))
        settings = RegistrySettings(nats_url=server.url, registry_database_url=url, var_dir=workdir,
                                    registry_api_port=0)
        service = build_registry(settings)
        started = time.perf_counter()
        await service.start()
        subscription = await js.pull_subscribe(streams.SUBJECT_COMPLAINT_REGISTERED, durable="bench")
        seen = 0
        while seen < count:
            try:
                batch = await subscription.fetch(min(500, count - seen), timeout=2)
            except nats.errors.TimeoutError:
                continue
            seen += len(batch)
            for item in batch:
                await item.ack()
        elapsed = time.perf_counter() - started
        await service.stop()
        await connection.close()
    print(f"  pipeline (NATS -> registry -> NATS, 1 process, {settings.registry_consumer_workers} workers): "
          f"{count / elapsed:8.0f} /s ({count} in {elapsed:.1f} s, including start-up)")


async def generate_register(url: str, rows: int) -> None:
    """Ten years of complaints, numbered per year, with realistic statuses, deadlines and texts."""
    engine = create_engine(url)
    await migrate(engine)
    rng = random.Random(42)
    table = Complaint.__table__
    statuses = ["closed"] * 70 + ["answered"] * 8 + ["in_review"] * 8 + ["acknowledged"] * 4 + ["received"] * 2 + \
               ["inadmissible"] * 4 + ["redirected"] * 3 + ["withdrawn"] + ["waiting_for_citizen"] * 2
    words = ["facture", "pension", "impôt", "allocation", "retard", "train", "énergie", "télécom", "permis",
             "logement", "école", "santé", "mutuelle", "chômage", "amende", "douane", "poste", "eau"]
    years = list(range(2017, 2027))
    per_year = rows // len(years)
    batch: list[dict[str, object]] = []
    created = datetime(2026, 11, 24, tzinfo=timezone.utc)
    started = time.perf_counter()
    for year in years:
        for sequence in range(1, per_year + 1):
            legal_start = date(year, 1, 1) + timedelta(days=rng.randrange(365))
            status = rng.choice(statuses)
            if legal_start < OLD_CASES_END and status not in ENDED and rng.random() > 0.002:
                status = "closed"  # a real register: old complaints are ended, but for a rare forgotten one
            received_at = datetime(legal_start.year, legal_start.month, legal_start.day, 9, tzinfo=timezone.utc)
            answered = received_at + timedelta(days=rng.randrange(5, 80)) if status in {"closed", "answered"} else None
            ended = answered + timedelta(days=rng.randrange(1, 20)) if status == "closed" and answered else (
                received_at + timedelta(days=rng.randrange(1, 30)) if status in {"inadmissible", "redirected",
                                                                                   "withdrawn"} else None)
            subject = f"{rng.choice(words)} {rng.choice(words)} {sequence}"
            batch.append({
                "number": f"MED-{year}-{sequence:05d}", "year": year, "sequence": sequence,
                "message_key": f"gen-{year}-{sequence}", "kind": "complaint", "channel": rng.choice(
                    ["email"] * 8 + ["letter", "web_form"]),
                "received_at": received_at, "legal_start": legal_start,
                "complainant_name": f"Nom{rng.randrange(200000)} Prénom", "complainant_email":
                    f"c{rng.randrange(500000)}@example.org", "subject_line": subject, "body": TEXT,
                "attachments": [], "admissibility": "inadmissible" if status == "inadmissible" else "admissible",
                "admissibility_reasons": ["out_of_competence"] if status == "inadmissible" else [],
                "status": status, "acknowledgment_due": legal_start + timedelta(days=7),
                "answer_due": legal_start + timedelta(days=45), "answer_extended": False, "paused_days": 0,
                "acknowledged_at": received_at + timedelta(days=rng.randrange(1, 9)),
                "answered_at": answered, "closed_at": ended,
                "outcome": rng.choice(["founded", "unfounded", "partially_founded", "no_assessment"])
                if status == "closed" else None,
                "service_concerned": rng.choice(["finances", "pensions", "mobility", "energy", None]),
                "theme": rng.choice(["billing", "delay", "attitude", None]), "recommendations": [],
                "automated": False, "created_at": created, "updated_at": created,
            })
            if len(batch) == 5000:
                async with engine.begin() as connection:
                    await connection.execute(insert(table), batch)
                batch.clear()
    if batch:
        async with engine.begin() as connection:
            await connection.execute(insert(table), batch)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
    else:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
    await engine.dispose()
    print(f"  generated {per_year * len(years)} complaints in {time.perf_counter() - started:.0f} s")


async def bench_queries(url: str, repeat: int) -> None:
    engine = create_engine(url)
    store = RegistryStore(engine)
    today = date(2026, 11, 24)
    queries = {
        "list, newest first (page 1)": ComplaintFilter(limit=50),
        "list, page 200": ComplaintFilter(limit=50, offset=10000),
        "filter status=in_review": ComplaintFilter(status="in_review", limit=50),
        "filter service + year": ComplaintFilter(service="pensions", year=2025, limit=50),
        "due before a date (open)": ComplaintFilter(status="acknowledged", due_before=today, limit=50),
        "overdue today": ComplaintFilter(overdue_on=today, limit=50),
        "search by number": ComplaintFilter(text="MED-2024-01234", limit=50),
        "search text 'pension'": ComplaintFilter(text="pension", limit=50),
        "search e-mail fragment": ComplaintFilter(text="c12345@", limit=50),
    }
    for label, criteria in queries.items():
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await store.list_complaints(criteria)
            samples.append(time.perf_counter() - t0)
        print(f"  {label:<32} {percentiles(samples)}")
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        report = await annual_report(store, 2025, ZoneInfo("Europe/Brussels"))
        runs.append(time.perf_counter() - t0)
    print(f"  annual indicators 2025 ({report['received']['total']} received), 5 runs: "
          f"{' '.join(f'{run:.2f}' for run in runs)} s (median {sorted(runs)[2]:.2f} s)")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--count", type=int, default=1000, help="registrations per measurement")
    parser.add_argument("--rows", type=int, default=1_000_000, help="size of the generated register (0: skip)")
    parser.add_argument("--repeat", type=int, default=40, help="runs of each list/search query")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        workdir = Path(tmp)
        for backend in args.backend or ["sqlite", "postgres"]:
            print(f"== {backend}")
            url, drop = await new_database(backend, workdir)
            try:
                await bench_registrations(url, args.count)
            finally:
                await drop()
            if not args.skip_pipeline:
                url, drop = await new_database(backend, workdir)
                try:
                    await bench_pipeline(url, args.count, workdir)
                finally:
                    await drop()
            if args.rows:
                url, drop = await new_database(backend, workdir)
                try:
                    await generate_register(url, args.rows)
                    await bench_queries(url, args.repeat)
                finally:
                    await drop()


if __name__ == "__main__":
    asyncio.run(main())
