"""Database plumbing shared by the services that own a database (each its own): engines and Alembic migrations.

SQLite is the default (a file under `var/`, WAL journal so readers never block the single writer; a transaction takes
the write lock at BEGIN, unless it runs on `read_only(engine)`, whose transactions only read a snapshot and never
wait for writers; `synchronous=NORMAL`, see docs/registry.md "Durability"); PostgreSQL is
used in production through an `postgresql+asyncpg://` URL. The schema is always created by Alembic, never by
`create_all`, so that production databases follow the same history as tests. Engines hide bound parameters in their
error texts (`hide_parameters=True`): a failed statement's exception never carries a citizen's data into a log or a
dead letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.sqlite_driver import one_trip_dbapi

# Execution option of the engine `read_only` returns: its SQLite transactions BEGIN without the write lock.
_READ_ONLY = "ombudsdesk_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) for transactions that only read: on SQLite they begin with a plain (deferred)
    `BEGIN` — a WAL snapshot, no lock, so a reader neither waits for nor delays a writer. A write in such a
    transaction would have to upgrade its lock late and may fail with "database is locked": write elsewhere.
    PostgreSQL transactions are unchanged."""
    return engine.execution_options(**{_READ_ONLY: True})


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # aiosqlite with one trip to its thread per statement instead of three or four (shared/sqlite_driver.py).
        driver = {"module": one_trip_dbapi()} if make_url(url).get_driver_name() == "aiosqlite" else {}
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **driver)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy's "begin" hook below issue BEGIN itself (the documented aiosqlite/pysqlite recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # The busy timeout first: switching a new database to WAL takes a lock that another process starting
            # at the same moment may hold, and must wait for it rather than fail with "database is locked".
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Erasure (issue 16): the bytes a delete or an update frees are zeroed, not left in free space.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin_immediate(connection):  # type: ignore[no-untyped-def]
            # Take the write lock at BEGIN so that two writers queue instead of failing halfway (SQLite's
            # deferred transactions upgrade locks late and raise "database is locked" under contention). A
            # reader (`read_only`) takes no lock: WAL gives it a consistent snapshot.
            if connection.get_execution_options().get(_READ_ONLY):
                connection.exec_driver_sql("BEGIN")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


def alembic_config(script_location: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migration_lock_key(script_location: Path) -> int:
    """A stable PostgreSQL advisory-lock key per migration history (a signed 64-bit integer)."""
    digest = hashlib.sha256(script_location.resolve().as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def upgrade_to_head(engine: AsyncEngine, script_location: Path) -> None:
    """Apply every migration of one service's history on the given engine.

    Several processes of a service may start together against one PostgreSQL: they take turns on an advisory lock
    held in the migrating transaction, so only the first creates the schema and the others find it at head.
    SQLite's `BEGIN IMMEDIATE` (see `create_engine`) already makes them take turns.
    """
    config = alembic_config(script_location, engine.url.render_as_string(hide_password=False))

    def _upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": migration_lock_key(script_location)})
        await connection.run_sync(_upgrade)


def run_migrations_in_alembic_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`: runs on the connection handed over by `upgrade_to_head`."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("ombudsdesk migrations run through the service (`upgrade_to_head`), not the alembic CLI")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def refresh_statistics(engine: AsyncEngine, tables: Sequence[str] = ()) -> None:
    """PostgreSQL: sample `tables` (all of the database's when empty) again, after an erasure. The planner's
    statistics (`pg_statistic`, readable as `pg_stats` by anyone who may read the table) hold sampled column values
    — an erased name or address among them — until the next ANALYZE (measured: tests/e2e/test_erasure_every_copy.py).
    SQLite keeps no sampled values (sqlite_stat1 holds counts): nothing to do there."""
    if engine.dialect.name != "postgresql":
        return
    names = ", ".join(engine.dialect.identifier_preparer.quote(table) for table in tables)
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(f"ANALYZE {names}".strip()))
