"""SQLite through aiosqlite with one trip to its thread per statement (`shared/sqlite_driver.py`, issue 12).

The services' SQLite engines use a cursor that opens, executes, fetches and closes in one trip to aiosqlite's thread.
What SQLAlchemy reads from a cursor must be what the plain aiosqlite adapter gives: rows, row counts, last row ids,
executemany, errors as SQLAlchemy's exceptions, transactions that roll back.
"""

from __future__ import annotations

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.database import create_engine
from shared.sqlite_driver import OneTripCursor

metadata = MetaData()
people = Table("people", metadata, Column("id", Integer, primary_key=True),
               Column("email", String(320), unique=True, nullable=False), Column("city", String(40)))


@pytest.fixture
async def engine(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_the_services_sqlite_engines_use_the_one_trip_cursor(engine):
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)


async def test_rows_counts_ids_and_executemany_are_what_sqlalchemy_expects(engine):
    async with engine.begin() as connection:
        first = await connection.execute(insert(people).values(email="ann@example.org", city="Namur"))
        assert first.inserted_primary_key == (1,)
        many = await connection.execute(insert(people), [
            {"email": "bob@example.org", "city": "Liège"}, {"email": "eve@example.org", "city": "Liège"}])
        assert many.rowcount == 2
        returned = await connection.execute(
            insert(people).returning(people.c.id, people.c.email, sort_by_parameter_order=True),
            [{"email": "zoe@example.org"}, {"email": "yves@example.org"}])
        assert [tuple(row) for row in returned] == [(4, "zoe@example.org"), (5, "yves@example.org")]
        changed = await connection.execute(update(people).where(people.c.city == "Liège").values(city="Huy"))
        assert changed.rowcount == 2
    async with engine.connect() as connection:
        rows = (await connection.execute(select(people.c.email, people.c.city).order_by(people.c.id))).all()
        assert rows == [("ann@example.org", "Namur"), ("bob@example.org", "Huy"), ("eve@example.org", "Huy"),
                        ("zoe@example.org", None), ("yves@example.org", None)]
        partial = await connection.execute(select(people.c.id).order_by(people.c.id))
        assert partial.fetchmany(2) == [(1,), (2,)]
        assert partial.fetchone() == (3,)
        assert partial.fetchall() == [(4,), (5,)]
        assert (await connection.execute(select(people.c.id).where(people.c.id > 99))).first() is None


async def test_errors_are_sqlalchemy_s_and_a_failed_transaction_rolls_back(engine):
    async with engine.begin() as connection:
        await connection.execute(insert(people).values(email="ann@example.org"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(people).values(email="bob@example.org"))
            await connection.execute(insert(people).values(email="ann@example.org"))
    with pytest.raises(OperationalError):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT * FROM no_such_table"))
    async with engine.connect() as connection:
        emails = (await connection.execute(select(people.c.email))).scalars().all()
    assert emails == ["ann@example.org"]


@pytest.fixture
def trips(monkeypatch):
    """The functions each trip to aiosqlite's thread ran, in order."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_statement_takes_one_trip_to_the_database_thread(engine, trips):
    """The point of the driver: SQLAlchemy's own adapter takes three or four trips per statement."""
    async with engine.connect() as connection:
        await connection.execute(select(people.c.id))  # the connection's first use (BEGIN) is not counted
        trips.clear()
        await connection.execute(select(people.c.id, people.c.email).where(people.c.id > 0))
        await connection.execute(insert(people).values(email="ann@example.org"))
    assert trips[:2] == ["_run_statement", "_run_statement"]


async def test_no_commit_or_rollback_is_sent_outside_a_transaction(engine, trips):
    """The pool's rollback of a connection it takes back after a commit is not sent (SQLAlchemy's own adapter:
    BEGIN, statement, COMMIT, ROLLBACK — four trips); a failed transaction is rolled back once."""
    async with engine.begin() as connection:
        await connection.execute(insert(people).values(email="ann@example.org"))
    assert trips == ["_run_statement", "_run_statement", "commit"]  # BEGIN IMMEDIATE, INSERT, COMMIT
    trips.clear()
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(people).values(email="bob@example.org"))
            await connection.execute(insert(people).values(email="ann@example.org"))
    assert trips == ["_run_statement", "_run_statement", "_run_statement", "rollback"]  # not one more from the pool
    async with engine.connect() as connection:
        emails = (await connection.execute(select(people.c.email))).scalars().all()
    assert emails == ["ann@example.org"]


async def test_the_pool_still_rolls_back_a_connection_given_back_inside_a_transaction(engine, trips):
    """A transaction SQLAlchemy does not know of (begun on the driver's connection) is still open when the pool
    takes the connection back: the pool's rollback is sent, nothing of it stays and the write lock is released."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        await raw.driver_connection.execute("BEGIN IMMEDIATE")
        await raw.driver_connection.execute("INSERT INTO people (email) VALUES ('ann@example.org')")
        assert raw.driver_connection.in_transaction
    assert trips[-1] == "rollback"
    async with engine.begin() as connection:  # the lock is free: this would wait 30 s otherwise
        assert (await connection.execute(select(people.c.email))).all() == []
