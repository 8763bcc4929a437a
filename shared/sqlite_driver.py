"""SQLite through aiosqlite with one trip to its thread per statement (issue 12).

aiosqlite runs every call on its own thread and wakes the event loop for each result. SQLAlchemy's adapter makes
three or four such trips per statement: create a cursor, execute, fetch the rows, close the cursor. Each trip costs a
queue hand-over, a thread switch and a write to the loop's wake-up pipe, which the profiles showed as 10–15 % of the
registry's and the notifier's CPU. The cursor here does all four in one function on aiosqlite's thread and keeps
what SQLAlchemy reads afterwards (rows, description, row count, last row id).

A `COMMIT` or `ROLLBACK` on a connection that holds no transaction is not sent: sqlite3 itself does nothing then (it
checks `sqlite3_get_autocommit` first), so the trip to the thread was all it cost — and SQLAlchemy's pool rolls back
every connection it takes back, after each commit too: a small write transaction now takes three trips, not four.
The `BEGIN` stays a trip of its own, sent when SQLAlchemy begins: sent later, with the first statement, it would let
the Python code between the two run before the write lock is held, and code that counts on that lock to take turns
(concurrent migrations in one process, through alembic's module-level context) would interleave.

Everything else is SQLAlchemy's own aiosqlite adapter, unchanged: transactions, errors, termination, server-side
cursors. It reaches aiosqlite's queue through `Connection._execute`, as
SQLAlchemy's adapter itself reaches aiosqlite's private `_tx` and `_conn` (the same in aiosqlite 0.20–0.22), and
subclasses SQLAlchemy 2.1's adapter: `pyproject.toml` keeps both below their next minor version for that reason.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

# What one statement returns from aiosqlite's thread: description, rows, row count, last row id.
_Outcome = tuple[Any, list[Any], int, Any]


def _run_statement(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """Runs on aiosqlite's thread: the whole life of one sqlite3 cursor."""
    cursor: sqlite3.Cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs, fetches and closes in one trip to aiosqlite's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No sqlite3 cursor is opened here (that was a trip of its own): `_run_statement` opens one per statement.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        # The sqlite3 cursor is already closed: its rows and description are kept here.
        return None

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._trip(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._trip(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        # A failed statement leaves nothing of the one before it to read.
        self._rows.clear()
        self._description, self._rowcount, self._lastrowid = None, -1, None
        async with self._adapt_connection._execute_mutex:
            outcome = await self._connection._execute(_run_statement, self._connection, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection with `OneTripCursor`s, and no trip for a COMMIT or ROLLBACK outside a
    transaction."""

    __slots__ = ()
    _cursor_cls = OneTripCursor

    def _in_transaction(self) -> bool:
        """sqlite3's flag (`not sqlite3_get_autocommit`), read on the loop's thread: SQLAlchemy waits for each trip
        on this connection to end before it commits or rolls back, and the raw driver calls elsewhere
        (`wal_checkpoint`) run outside transactions. A connection aiosqlite stopped answers as before (it raises)."""
        connection = self._connection
        if not connection._running:
            return True
        return connection._connection is not None and connection.in_transaction

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI module whose connections hand out `OneTripCursor`s (pass as `module=`)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
