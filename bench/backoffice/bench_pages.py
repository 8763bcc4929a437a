"""Back-office page benchmark (issue 13: "page response times for the register list and a file with 100 messages on
a register of 1,000,000 complaints, p95 < 150 ms"). A script, not a test: it prints latency percentiles next to the
raw limits measured in the same run, on the same server and the same database.

    nice -n 10 .venv/bin/python bench/backoffice/bench_pages.py --backend sqlite --backend postgres \\
        [--rows 1000000] [--clients 1 --clients 4] [--requests 300] [--warmup 20] [--budget 90] [--explain]
        [--profile FOLDER] [--only TEXT] [--build-only]

1. **The register** (built once per backend and size, then reused): `bench/registry/bench_registry.py`'s
   `generate_register` fills ten years of complaints (statuses, channels, services, themes, deadlines, texts) on the
   schema of revision `0007_facts_and_rules` (the last one before the back office), kept under `var/bench/backoffice/`
   (SQLite) or as a PostgreSQL database `ombudsdesk_bench_pages_base_<fingerprint>` on
   OMBUDSDESK_BENCH_POSTGRES_URL (default the local server). The fingerprint covers the size, the generator's source
   and those migrations: any change rebuilds it.
2. **The register of today**: a copy of it (a file copy; `CREATE DATABASE ... TEMPLATE` on PostgreSQL) brought to the
   current head by the project's own migrations — what an upgrade of a real register does — then completed: handlers
   (12 staff members; one open file in ten unassigned), sender verdicts, screening pending on new complaints, ~2 %
   data-protection complaints (once the column exists), and one file of the service `pensions` with 100 thread
   messages (new text and quoted history, some attachments), 30 change-log entries and two correspondents. Kept
   under a fingerprint of the base, every migration and this completion step; an older copy is dropped.
3. **The server**: the real registry FastAPI application (`services.registry.api.create_api` over a
   `RegistryStore` of that database) under uvicorn on a free port, in its own process, as the registry serves it.
   A real staff account (role staff, services pensions and finances) is created with the identity's
   `AccountStore` and signed in by its session cookie; while the identity work is not in the tree, the pages'
   dependency is overridden with the same principal, and the run says so.
4. **The measure**: for each page, `--requests` requests per client after `--warmup`, with each number of
   `--clients` (concurrent httpx clients, one connection each): p50 / p95 / p99, requests/s and the number of
   samples — a slow page stops after `--budget` seconds (at least 10 requests per client). Pages: the register's
   first page (default sort), a filtered page (status in_review + service pensions), a full-text search (a common word
   and a rare e-mail fragment), page 200 of the list, the file with 100 messages, and one of its quoted histories
   as the page loads it when unfolded. **Raw limits of the same run**:
   `GET /health` through the same server and clients, and the statements the repository sends for the register's
   first page, replayed as bare SQL on the driver (captured from the repository, so they are the real ones).
5. `--explain`: first, for each register page, the statements the repository sends (the count bounded as the page
   bounds it, then the list), each timed bare (median of 5) with its plan, and the exact count the page sent before
   (docs/benchmarks.md, issue 13).
   `--profile FOLDER`: py-spy samples the server during the measure (`pip install py-spy`); read it with
   `bench/profile_summary.py FOLDER/<backend>-server.speedscope.json --match services/`. `--only TEXT`: only the
   pages whose label contains TEXT. `--build-only`: build or find the registers and stop.

The figures are printed with the commands and a markdown table to paste in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import structlog  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import Column, MetaData, Table, event, insert, make_url, text  # noqa: E402
from sqlalchemy import inspect as sa_inspect  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.registry import bench_registry  # noqa: E402
from ombudsdesk.embedded_nats import free_port, is_listening  # noqa: E402
from services.registry import models  # noqa: E402
from services.registry.access.roles import Principal, Role  # noqa: E402
from services.registry.repository import MIGRATIONS, ComplaintFilter, RegistryStore, migrate  # noqa: E402
from shared.database import alembic_config, create_engine, read_only  # noqa: E402

ADMIN_URL = bench_registry.ADMIN_URL
BASE_REVISION = "0007_facts_and_rules"  # the schema before the back office: the register the upgrade meets
CACHE = ROOT / "var" / "bench" / "backoffice"
PG_PREFIX = "ombudsdesk_bench_pages_"
BUILD_VERSION = "1"  # bump when the way the base is built changes outside generate_register
BENCH_EMAIL = "bench.staff@ombudsdesk.example"
BENCH_SERVICES = ("pensions", "finances")
FILE_MESSAGES = 100


def log(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------------- fingerprints


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()


def _migration_files(up_to: str | None = None) -> list[Path]:
    files = sorted((MIGRATIONS / "versions").glob("*.py"))
    return [f for f in files if up_to is None or f.name <= f"{up_to}.py"]


def base_fingerprint(rows: int) -> str:
    return _digest(BUILD_VERSION, str(rows), BASE_REVISION, inspect.getsource(bench_registry.generate_register),
                   *(f.read_bytes() for f in _migration_files(BASE_REVISION)))


def work_fingerprint(base: str) -> str:
    return _digest(base, inspect.getsource(complete_register), inspect.getsource(file_thread),
                   *(f.name.encode() + f.read_bytes() for f in _migration_files()))


# ------------------------------------------------------------------------------------------------- databases


async def upgrade_to(engine: AsyncEngine, revision: str) -> None:
    """The project's migrations up to `revision` (not head: the base is the register the back-office upgrade meets)."""
    config = alembic_config(MIGRATIONS, engine.url.render_as_string(hide_password=False))

    def run(connection: Any) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def column_names(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: {col["name"] for col in sa_inspect(c).get_columns(table)})


def present_table(model_table: Table, names: set[str]) -> Table:
    """The model's table (its column types: UTC timestamps, JSON) restricted to the columns the database has: the
    schema of an older revision, or of a model edited ahead of its migration."""
    return Table(model_table.name, MetaData(), *(Column(c.name, c.type, primary_key=c.primary_key)
                                                 for c in model_table.columns if c.name in names))


@contextmanager
def generator_on(table: Table) -> Iterator[None]:
    """bench_registry's generator, run as is, on the base revision's schema: it migrates to head and inserts into the
    model's table; here it stops at BASE_REVISION and inserts into the columns that revision has."""
    saved = bench_registry.migrate, bench_registry.Complaint
    bench_registry.migrate = lambda engine: upgrade_to(engine, BASE_REVISION)  # type: ignore[assignment]
    bench_registry.Complaint = SimpleNamespace(__table__=table)  # type: ignore[assignment]
    try:
        yield
    finally:
        bench_registry.migrate, bench_registry.Complaint = saved


async def fill_base(url: str, rows: int) -> None:
    engine = create_engine(url)
    await upgrade_to(engine, BASE_REVISION)
    table = present_table(models.Complaint.__table__, await column_names(engine, "complaints"))
    await engine.dispose()
    with generator_on(table):
        await bench_registry.generate_register(url, rows)


def pg_url(name: str) -> str:
    return make_url(ADMIN_URL).set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False)


async def pg_admin(*statements: str) -> list[Any]:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        return [await connection.fetch(statement) for statement in statements]
    finally:
        await connection.close()


async def pg_marked(name: str, fingerprint: str) -> bool:
    """The database exists and its build finished (the marker row is written last; a copy inherits its template's
    row, under the template's fingerprint)."""
    (found,) = await pg_admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if not found:
        return False
    connection = await asyncpg.connect(make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False))
    try:
        if not await connection.fetchval("SELECT to_regclass('bench_pages_built') IS NOT NULL"):
            return False
        return bool(await connection.fetchval("SELECT 1 FROM bench_pages_built WHERE fingerprint = $1", fingerprint))
    finally:
        await connection.close()


async def pg_mark(name: str, fingerprint: str) -> None:
    connection = await asyncpg.connect(make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False))
    try:
        await connection.execute("VACUUM ANALYZE")  # visibility map and statistics, as a live register has them
        await connection.execute("CREATE TABLE IF NOT EXISTS bench_pages_built (fingerprint text, "
                                 "built_at timestamptz)")
        await connection.execute("INSERT INTO bench_pages_built VALUES ($1, now())", fingerprint)
    finally:
        await connection.close()


async def pg_drop_others(rows: int, keep: set[str]) -> None:
    """Older builds of a register of this size (another fingerprint): no longer of use."""
    (names,) = await pg_admin(f"SELECT datname FROM pg_database WHERE datname LIKE '{PG_PREFIX}%'")
    for row in names:
        if re.fullmatch(rf"{PG_PREFIX}(base_)?{rows}_[0-9a-f]+", row["datname"]) and row["datname"] not in keep:
            await pg_admin(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')


def sqlite_checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@dataclass
class Register:
    backend: str
    url: str
    rows: int
    file_number: str
    fresh: list[str] = field(default_factory=list)  # what this run built (else reused)


async def prepare(backend: str, rows: int) -> Register:
    """The base register (built if missing) and its copy at head, completed (built if missing)."""
    base_fp = base_fingerprint(rows)
    work_fp = work_fingerprint(base_fp)
    fresh: list[str] = []
    CACHE.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        base = CACHE / f"base-{rows}-{base_fp[:12]}.db"
        work = CACHE / f"work-{rows}-{work_fp[:12]}.db"
        if not Path(f"{base}.done").exists():
            for stale in CACHE.glob(f"base-{rows}-*"):
                stale.unlink()
            log(f"  building the base register ({rows} complaints, revision {BASE_REVISION}) in {base}")
            started = time.perf_counter()
            await fill_base(sqlite_url(base), rows)
            sqlite_checkpoint(base)
            Path(f"{base}.done").write_text(json.dumps({"seconds": round(time.perf_counter() - started)}))
            fresh.append(f"base built in {time.perf_counter() - started:.0f} s")
        if not Path(f"{work}.done").exists():
            for stale in CACHE.glob(f"work-{rows}-*"):
                stale.unlink()
            started = time.perf_counter()
            shutil.copyfile(base, work)
            copied = time.perf_counter() - started
            number = await upgrade_and_complete(sqlite_url(work))
            sqlite_checkpoint(work)
            Path(f"{work}.done").write_text(json.dumps({"file": number}))
            fresh.append(f"copied in {copied:.0f} s, upgraded to head and completed in "
                         f"{time.perf_counter() - started - copied:.0f} s")
        number = json.loads(Path(f"{work}.done").read_text())["file"]
        return Register(backend, sqlite_url(work), rows, number, fresh)
    base_name = f"{PG_PREFIX}base_{rows}_{base_fp[:12]}"
    work_name = f"{PG_PREFIX}{rows}_{work_fp[:12]}"
    if not await pg_marked(base_name, base_fp):
        await pg_drop_others(rows, {work_name})
        await pg_admin(f'CREATE DATABASE "{base_name}"')
        log(f"  building the base register ({rows} complaints, revision {BASE_REVISION}) in database {base_name}")
        started = time.perf_counter()
        await fill_base(pg_url(base_name), rows)
        await pg_mark(base_name, base_fp)
        fresh.append(f"base built in {time.perf_counter() - started:.0f} s")
    if not await pg_marked(work_name, work_fp):
        await pg_drop_others(rows, {base_name})
        started = time.perf_counter()
        await pg_admin(f'CREATE DATABASE "{work_name}" TEMPLATE "{base_name}"')
        copied = time.perf_counter() - started
        await upgrade_and_complete(pg_url(work_name))
        await pg_mark(work_name, work_fp)
        fresh.append(f"copied in {copied:.0f} s, upgraded to head and completed in "
                     f"{time.perf_counter() - started - copied:.0f} s")
    engine = create_engine(pg_url(work_name))
    try:
        number = await bench_file_number(engine)
    finally:
        await engine.dispose()
    return Register(backend, pg_url(work_name), rows, number, fresh)


# ------------------------------------------------------------------------------------------------- the completion


async def upgrade_and_complete(url: str) -> str:
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        await migrate(engine)
        log(f"  migrated to head in {time.perf_counter() - started:.0f} s")
        return await complete_register(engine)
    finally:
        await engine.dispose()


async def complete_register(engine: AsyncEngine) -> str:
    """What the generator does not set, as a register in use has it; returns the number of the 100-message file.

    Deterministic (by id), so that every backend gets the same register."""
    columns = await column_names(engine, "complaints")
    started = time.perf_counter()
    # One statement, so that PostgreSQL rewrites each row (and its index entries) once.
    data_protection = ", data_protection = (id % 50 = 7)" if "data_protection" in columns else ""  # ~2 %, issue 13
    async with engine.begin() as connection:
        await connection.execute(text(
            # Twelve handlers; complaints not yet acknowledged and one open file in ten are unassigned.
            "UPDATE complaints SET handler = CASE WHEN status <> 'received' AND id % 10 <> 0 "
            "THEN 'agent' || CAST((id % 12) + 1 AS TEXT) || '@ombudsdesk.example' END, "
            "sender_verdict = CASE WHEN channel <> 'email' THEN sender_verdict WHEN id % 20 = 3 THEN 'failed' "
            "WHEN id % 3 = 0 THEN 'unverified' ELSE 'verified' END, "
            "admissibility = CASE WHEN status = 'received' THEN 'pending' ELSE admissibility END" + data_protection))
    log(f"  handlers, verdicts, screening, data protection set in {time.perf_counter() - started:.0f} s")
    number = await file_thread(engine)
    async with engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
    return number


BENCH_FILE_QUERY = ("SELECT id FROM complaints WHERE status = 'in_review' AND service_concerned = 'pensions' "
                    "AND id % 50 <> 7 AND year = (SELECT MAX(year) FROM complaints) ORDER BY sequence DESC LIMIT 1")


async def bench_file_number(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return (await connection.execute(text(
            "SELECT c.number FROM complaints c JOIN thread_messages t ON t.complaint_id = c.id "
            "GROUP BY c.number HAVING COUNT(*) >= :n"), {"n": FILE_MESSAGES})).scalar_one()


async def file_thread(engine: AsyncEngine) -> str:
    """One recent open file of `pensions` handled by the benchmark's account: 100 messages in and out (new text,
    quoted history growing to a few KB, an attachment now and then), 30 change-log entries, two correspondents."""
    tables = {}
    for model in (models.ThreadMessage, models.ChangeLogEntry, models.CaseParty):
        tables[model] = present_table(model.__table__, await column_names(engine, model.__tablename__))
    async with engine.begin() as connection:
        complaint_id = (await connection.execute(text(BENCH_FILE_QUERY))).first()[0]
        row = (await connection.execute(text(
            "SELECT number, complainant_name, complainant_email, subject_line, received_at FROM complaints "
            "WHERE id = :id"), {"id": complaint_id})).one()
        number, name, email, subject = row[0], row[1], row[2], row[3]
        received = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
        await connection.execute(text("UPDATE complaints SET handler = :me WHERE id = :id"),
                                 {"me": BENCH_EMAIL, "id": complaint_id})
        messages, previous = [], ""
        for i in range(FILE_MESSAGES):
            incoming = i % 2 == 0
            at = received + timedelta(hours=13 * i)
            new_text = (f"Message {i + 1}. " + ("Madame, Monsieur, je reviens vers vous au sujet de ma pension de "
                        "retraite : le montant versé ce mois-ci ne correspond toujours pas au calcul annoncé, et le "
                        "service ne répond pas à mes courriers. " if incoming else "Madame, nous avons interrogé "
                        "le service des pensions, qui nous confirme avoir recalculé vos droits ; nous attendons sa "
                        "décision écrite et reviendrons vers vous dès sa réception. ") * (2 + i % 4))
            quoted = "\n".join(f"> {line}" for line in previous.splitlines())
            body = f"{new_text}\n\nLe {at:%d/%m/%Y}, {'le service' if incoming else name} a écrit :\n{quoted}"[:6000]
            previous = body
            messages.append({
                "complaint_id": complaint_id, "direction": "in" if incoming else "out",
                "message_key": f"bench-file-{number}-{i}", "message_id": f"<bench-file-{i}.{number}@example.org>",
                "sender_name": name if incoming else "", "sender_email": email if incoming else None,
                "recipient": None if incoming else email, "subject_line": f"Re: {subject}", "body": body,
                "new_text": new_text if incoming else None, "rules": [] if incoming else None,
                "notice_kind": None if incoming else "staff_message",
                "attachments": [{"filename": f"piece-{i}.pdf", "content_type": "application/pdf", "size": 184_320,
                                 "sha256": hashlib.sha256(str(i).encode()).hexdigest(),
                                 "object_name": f"bench/{number}/{i}"}] if i % 7 == 0 else [],
                "raw_object": f"raw/bench-{number}-{i}.eml" if incoming else None, "automated": False,
                "sender_verdict": "verified" if incoming else None, "occurred_at": at,
            })
        thread_table = tables[models.ThreadMessage]
        await connection.execute(insert(thread_table),
                                 [{k: v for k, v in m.items() if k in thread_table.c} for m in messages])
        changes = ["assigned", "transition", "classified", "facts_recorded", "extended", "recommendation_added"]
        await connection.execute(insert(tables[models.ChangeLogEntry]), [{
            "complaint_id": complaint_id, "change_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{number}/{i}").hex,
            "change": changes[i % len(changes)], "actor": f"agent{i % 12 + 1}@ombudsdesk.example",
            "reason": "suivi du dossier" if i % 3 == 0 else None, "details": {"step": i, "from": "a", "to": "b"},
            "at": received + timedelta(hours=29 * i)} for i in range(30)])
        await connection.execute(insert(tables[models.CaseParty]), [
            {"complaint_id": complaint_id, "email": email, "role": "complainant", "added_by": "registry",
             "added_at": received},
            {"complaint_id": complaint_id, "email": "avocat.conseil@example.org", "role": "correspondent",
             "added_by": "agent1@ombudsdesk.example", "added_at": received + timedelta(days=3)}])
    return number


# ------------------------------------------------------------------------------------------------- the server


def bench_principal(account_id: int = 0) -> Principal:
    return Principal(account_id=account_id, email=BENCH_EMAIL, roles=frozenset({Role.STAFF}),
                     display_name="Bench Staff", services=BENCH_SERVICES, language="fr")


def identity_store() -> type | None:
    """The identity's AccountStore, or None while that work is not in the tree."""
    try:
        from services.registry.access.accounts import AccountStore
    except ImportError:
        return None
    return AccountStore


def serve(url: str, port: int, override: bool) -> None:
    """The registry's API and back office as the registry serves them (wiring._start_api), on `port`."""
    import uvicorn

    from services.registry.access.dependencies import api_principal, page_principal
    from services.registry.api import create_api
    from services.registry.handlers import Registry
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import policy_from_settings
    from shared.logging import configure_logging

    configure_logging(os.environ.get("OMBUDSDESK_LOG_LEVEL", "WARNING"))
    settings = RegistrySettings(registry_database_url=url)
    engine = create_engine(url)
    registry = Registry(RegistryStore(engine), policy_from_settings(settings), bench_registry.NoPublish())
    # As the registry wires it (settings: allowed host names, identity policy), with whatever create_api takes today.
    app = create_api(registry, settings) if "settings" in inspect.signature(create_api).parameters \
        else create_api(registry)
    if override:
        app.dependency_overrides[page_principal] = app.dependency_overrides[api_principal] = bench_principal
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uvicorn.Server(config).run()


@asynccontextmanager
async def server(url: str, override: bool, profile: Path | None, backend: str) -> AsyncIterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", url, "--port", str(port)]
                               + (["--override"] if override else []), start_new_session=True)
    profiler = None
    try:
        deadline = time.monotonic() + 60
        while not is_listening(port, "127.0.0.1"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start (see its output above)")
            await asyncio.sleep(0.1)
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            output = profile / f"{backend}-server.speedscope.json"
            profiler = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                                         str(process.pid), "--rate", "200", "--format", "speedscope", "--output",
                                         str(output), "--nonblocking"], stdout=subprocess.DEVNULL)
            log(f"  profiling the server into {output}")
        yield f"http://127.0.0.1:{port}"
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on Ctrl-C
            try:
                profiler.wait(120)
            except subprocess.TimeoutExpired:
                profiler.kill()
        process.send_signal(signal.SIGTERM)  # uvicorn's graceful shutdown
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def sign_in(url: str) -> tuple[dict[str, str], str]:
    """A real staff account's session cookie, or ({}, how) when the pages' dependency is to be overridden."""
    store_class = identity_store()
    if store_class is None:
        return {}, "dependency override (services/registry/access/accounts.py is not in the tree yet)"
    engine = create_engine(url)
    try:
        store = store_class(engine)
        account = await store.account_by_email(BENCH_EMAIL)
        if account is None:
            account_id = await store.create_account(BENCH_EMAIL, roles=(Role.STAFF,), display_name="Bench Staff",
                                                    services=BENCH_SERVICES, language="fr")
        else:
            account_id = account["id"] if isinstance(account, dict) else account.id
        cookie = await store.issue_session(account_id, ip="127.0.0.1", user_agent=USER_AGENT)
    finally:
        await engine.dispose()
    return {"ombudsdesk_session": cookie}, f"real session of {BENCH_EMAIL} (AccountStore, role staff, services " \
                                           f"{', '.join(BENCH_SERVICES)})"


# ------------------------------------------------------------------------------------------------- the measure

USER_AGENT = "ombudsdesk-bench-pages"


@dataclass
class Target:
    label: str
    path: str
    check: Callable[[str], str | None]  # the page's text -> what is wrong with it, or None


def rows_shown(html: str) -> str | None:
    return None if re.search(r"MED-\d{4}-\d{5}", html) else "no case number on the page"


def targets(file_number: str) -> list[Target]:
    def whole_thread(html: str) -> str | None:
        missing = [i for i in range(1, FILE_MESSAGES + 1) if f"Message {i}." not in html]
        return f"{len(missing)} of the {FILE_MESSAGES} messages not on the page" if missing else None

    return [
        Target("register, first page (default sort)", "/backoffice/register", rows_shown),
        Target("register, status in_review + service pensions",
               "/backoffice/register?status=in_review&service=pensions", rows_shown),
        Target("register, search 'pension' (common word)", "/backoffice/register?q=pension", rows_shown),
        Target("register, search 'c12345@' (rare fragment)", "/backoffice/register?q=c12345%40", lambda html: None),
        Target("register, page 200", "/backoffice/register?page=200", rows_shown),
        Target(f"file with {FILE_MESSAGES} messages", f"/backoffice/files/{file_number}", whole_thread),
        # The longest quoted history (6 KB), as the page loads it when a message's folded part is opened.
        Target("file, one quoted history unfolded",
               f"/backoffice/files/{file_number}/messages/bench-file-{file_number}-{FILE_MESSAGES - 2}/quoted",
               lambda html: None if "&gt; " in html else "no quoted line"),
    ]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


@dataclass
class Measure:
    samples: list[float]
    seconds: float
    errors: dict[int, int] = field(default_factory=dict)

    def cell(self) -> str:
        if not self.samples:
            return "—"
        return f"{percentile(self.samples, 50):.1f} / {percentile(self.samples, 95):.1f} / " \
               f"{percentile(self.samples, 99):.1f}"

    def line(self) -> str:
        rate = len(self.samples) / self.seconds if self.seconds else 0
        errors = f"  errors {self.errors}" if self.errors else ""
        return f"p50 / p95 / p99 {self.cell():>24} ms  {rate:7.1f} req/s  n={len(self.samples)}{errors}"


async def concurrently(clients: int, requests: int, warmup: int, one: Callable[[int], Any],
                       budget: float = 90.0) -> Measure:
    """`clients` loops, each `warmup` calls then `requests` timed calls of `one(client)` (which returns an HTTP status
    or None); all loops warm up before any is timed. A slow page stops at `budget` seconds (warm-up: a third of it),
    once each loop has 10 samples: the count of samples is printed with the figures."""
    deadline = time.monotonic() + budget / 3
    for _ in range(warmup):
        await asyncio.gather(*(one(c) for c in range(clients)))
        if time.monotonic() > deadline:
            break
    samples: list[float] = []
    errors: dict[int, int] = {}
    deadline = time.monotonic() + budget

    async def loop(client: int) -> None:
        for done in range(requests):
            if done >= 10 and time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            status = await one(client)
            samples.append(time.perf_counter() - t0)
            if status is not None and status != 200:
                errors[status] = errors.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in range(clients)))
    return Measure(samples, time.perf_counter() - started, errors)


async def page_measures(base_url: str, cookies: dict[str, str], file_number: str, clients: int, requests: int,
                        warmup: int, budget: float, only: list[str] | None = None) -> dict[str, Measure]:
    sessions = [httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=120, follow_redirects=False,
                                  headers={"User-Agent": USER_AGENT}, limits=httpx.Limits(max_connections=1))
                for _ in range(clients)]
    results: dict[str, Measure] = {}
    try:
        async def health(client: int) -> int:
            return (await sessions[client].get("/health")).status_code

        results["raw: GET /health, same server"] = await concurrently(clients, requests, warmup, health, budget)
        log(f"  {'raw: GET /health, same server':<50} {results['raw: GET /health, same server'].line()}")
        for target in targets(file_number):
            if only and not any(word in target.label for word in only):
                continue
            first = await sessions[0].get(target.path)
            problem = f"HTTP {first.status_code}" if first.status_code != 200 else target.check(first.text)
            if first.status_code != 200:
                log(f"  {target.label:<50} skipped: {problem} ({first.headers.get('location', '')})")
                continue
            if problem:
                log(f"  {target.label:<50} WARNING: {problem}")

            async def page(client: int, path: str = target.path) -> int:
                return (await sessions[client].get(path)).status_code

            results[target.label] = await concurrently(clients, requests, warmup, page, budget)
            log(f"  {target.label:<50} {results[target.label].line()}  ({len(first.content) // 1024} KB)")
    finally:
        for session in sessions:
            await session.aclose()
    return results


def page_criteria(query_string: str) -> tuple[ComplaintFilter, ComplaintFilter, int]:
    """(the count's criteria, the list's criteria, the count's bound) the register page builds for this query string,
    for the benchmark's account (`pages/register.py`: `RegisterQuery.criteria`, the count bounded by `count_bound`
    first, then the page of PAGE_SIZE rows)."""
    from services.registry.backoffice.pages.register import PAGE_SIZE, RegisterQuery, count_bound
    from services.registry.handlers import Registry
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import policy_from_settings

    # Criteria need the policy (number format) and today's date only: no store.
    registry = Registry(None, policy_from_settings(RegistrySettings()),  # type: ignore[arg-type]
                        bench_registry.NoPublish())
    query = RegisterQuery.from_string(query_string)
    principal = bench_principal()
    return (query.criteria(principal, registry, limit=1, offset=0),
            query.criteria(principal, registry, limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE),
            count_bound(query.page))


async def captured(engine: AsyncEngine, call: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SELECT statements (and parameters) `call` sends, as the driver gets them."""
    found: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            found.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await call()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    return found


async def replay(connection: Any, statements: list[tuple[str, Any]]) -> None:
    for statement, parameters in statements:
        (await connection.exec_driver_sql(statement, parameters)).fetchall()
    await connection.rollback()  # one read transaction per replay, as the repository's


async def raw_measures(url: str, clients: int, requests: int, warmup: int, budget: float) -> dict[str, Measure]:
    """The register's first page's queries (count, then list) through the repository, and replayed as bare SQL on the
    driver (captured from the repository: the statements and parameters it really sends)."""
    engine = create_engine(url)
    try:
        store = RegistryStore(engine)
        count_criteria, list_criteria, bound = page_criteria("")

        async def queries() -> None:
            await store.count_complaints(count_criteria, at_most=bound)
            await store.list_complaints(list_criteria)

        await queries()  # the pool's connections and the statement cache are warm
        statements = await captured(engine, queries)
        # Read-only connections, as the repository reads (on SQLite: a plain BEGIN, no write lock).
        connections = [await read_only(engine).connect() for _ in range(clients)]
        try:
            async def bare(client: int) -> None:
                await replay(connections[client], statements)

            async def repository(_client: int) -> None:
                await queries()

            plural = "s" * (len(statements) > 1)
            return {
                f"raw: first page's SQL ({len(statements)} statement{plural}), bare driver":
                    await concurrently(clients, requests, warmup, bare, budget),
                "first page's queries through the repository": await concurrently(clients, requests, warmup,
                                                                                   repository, budget),
            }
        finally:
            for connection in connections:
                await connection.close()
    finally:
        await engine.dispose()


async def breakdown(url: str) -> None:
    """Where a register page's database time goes: each statement of its count (bounded, as the page counts) and of
    its list, bare, median of 5, with the plan; and, for comparison, the exact count the page sent before."""
    engine = create_engine(url)
    store = RegistryStore(engine)
    sqlite = engine.dialect.name == "sqlite"
    try:
        async with read_only(engine).connect() as connection:
            for target in targets(""):
                if not target.path.startswith("/backoffice/register"):
                    continue
                query_string = target.path.partition("?")[2]
                count_criteria, list_criteria, bound = page_criteria(query_string)
                log(f"  {target.label}")
                for name, call in (
                        (f"count at most {bound}", lambda c=count_criteria, b=bound: store.count_complaints(c, b)),
                        ("list", lambda c=list_criteria: store.list_complaints(c)),
                        ("exact count (before)", lambda c=count_criteria: store.count_complaints(c))):
                    for sql, parameters in await captured(engine, call):
                        runs = []
                        for _ in range(5):
                            t0 = time.perf_counter()
                            (await connection.exec_driver_sql(sql, parameters)).fetchall()
                            runs.append(time.perf_counter() - t0)
                        plan = (await connection.exec_driver_sql(
                            ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, parameters)).fetchall()
                        await connection.rollback()
                        steps = [row[3] if sqlite else row[0].strip() for row in plan]
                        shown = " ".join(sql.split())
                        where = shown.rfind(" WHERE ")
                        log(f"    {name:<22} {sorted(runs)[2] * 1000:8.1f} ms  "
                            f"{shown[:48]}...{shown[where:where + 150] if where > 0 else ''}")
                        for step in steps[:4]:
                            log(f"        {step}")
    finally:
        await engine.dispose()


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} vCPUs ({model}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# ------------------------------------------------------------------------------------------------- main


async def run_backend(backend: str, args: argparse.Namespace) -> dict[int, dict[str, Measure]]:
    log(f"== {backend}")
    register = await prepare(backend, args.rows)
    log(f"  register: {register.url}  file with {FILE_MESSAGES} messages: {register.file_number}  "
        f"({'; '.join(register.fresh) or 'reused'})")
    if backend == "postgres":
        (rows,) = await pg_admin("SELECT version()")
        log(f"  {rows[0][0]}")
    if args.build_only:
        return {}
    if args.explain:
        log("  where the register pages' database time goes (bare statements, median of 5):")
        await breakdown(register.url)
    cookies, how = await sign_in(register.url)
    log(f"  signed in: {how}")
    by_clients: dict[int, dict[str, Measure]] = {}
    async with server(register.url, not cookies, args.profile, backend) as base_url:
        for clients in args.clients or [1, 4]:
            log(f"  -- {clients} client{'s' * (clients > 1)}, {args.requests} requests each after {args.warmup} "
                f"warm-up (load average {load()})")
            by_clients[clients] = await page_measures(base_url, cookies, register.file_number, clients,
                                                      args.requests, args.warmup, args.budget, args.only)
            raw = await raw_measures(register.url, clients, args.requests, args.warmup, args.budget)
            for label, measure in raw.items():
                log(f"  {label:<50} {measure.line()}")
            by_clients[clients].update(raw)
    return by_clients


def table(results: dict[str, dict[int, dict[str, Measure]]]) -> str:
    columns = [(backend, clients) for backend, runs in results.items() for clients in runs]
    labels: list[str] = []
    for backend, clients in columns:
        labels += [label for label in results[backend][clients] if label not in labels]
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    head = "| p50 / p95 / p99 ms | " + " | ".join(
        f"{names[backend]}, {clients} client{'s' * (clients > 1)}" for backend, clients in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for label in labels:
        cells = [results[backend][clients].get(label) for backend, clients in columns]
        lines.append(f"| {label} | " + " | ".join(cell.cell() if cell else "—" for cell in cells) + " |")
    return "\n".join(lines)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="complaints in the register")
    parser.add_argument("--clients", type=int, action="append", help="concurrent clients (repeatable; default 1 and 4)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per client and page")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per client and page first")
    parser.add_argument("--profile", type=Path, help="record a py-spy profile of the server into this folder")
    parser.add_argument("--only", action="append", help="measure only the pages whose label contains this text")
    parser.add_argument("--explain", action="store_true",
                        help="first print each register page's statements: time, plan, and the exact count")
    parser.add_argument("--budget", type=float, default=90.0,
                        help="seconds at most per page and number of clients (a slow page gets fewer samples)")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the registers, measure nothing")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the server process, on this database URL
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--override", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


async def bench(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    log(f"ombudsdesk back-office page benchmark — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
        f"load average {load()}")
    log(f"  command: {' '.join(sys.argv)}")
    results = {backend: await run_backend(backend, args) for backend in args.backend or ["sqlite", "postgres"]}
    if not args.build_only:
        log(f"\nload average at the end {load()}\n")
        log(table(results))


if __name__ == "__main__":
    ARGS = arguments()
    if ARGS.serve:
        serve(ARGS.serve, ARGS.port, ARGS.override)  # uvicorn runs its own event loop
    else:
        asyncio.run(bench(ARGS))
