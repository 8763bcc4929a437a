"""The search behind the proof of issue 16 (tests/e2e/test_erasure_every_copy.py): which stored byte still holds a
citizen, in files (SQLite, the NATS data folder, `var/`, logs) and in PostgreSQL (every table read through SQL, and the
databases' relation files as the server keeps them on disk).

A secret is looked for in the forms a stored copy may take: UTF-8, JSON-escaped, quoted-printable (mail bodies and
headers), and the ASCII unique token, plain and as base64 at each of its three alignments. Matching is case-insensitive.
"""

from __future__ import annotations

import asyncio
import base64
import json
import quopri
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import make_url


def variants(secret: str) -> set[bytes]:
    """The forms a stored copy may take: UTF-8, JSON-escaped, quoted-printable (mail bodies and headers)."""
    forms = {secret.encode("utf-8"), json.dumps(secret)[1:-1].encode("ascii"),
             quopri.encodestring(secret.encode("utf-8")).rstrip(b"=\n"),
             quopri.encodestring(secret.encode("utf-8"), header=True)}
    return {form for form in forms if len(form) >= 6}


def base64_forms(token: str) -> set[bytes]:
    """The ASCII unique token as it appears inside any base64 text, whatever its alignment (3 shifts, edges cut)."""
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + token.encode("ascii"))
        forms.add(encoded[4:-4])
    return forms


def secret_forms(unique: str, *secrets: str) -> set[bytes]:
    """The secrets' forms, and the unique token itself in plain and base64 form: a secret made of it is then found
    however a copy cut or encoded the rest (an RFC 2047 header encodes each word apart)."""
    return set().union(*(variants(secret) for secret in secrets)) | {unique.encode("ascii")} | base64_forms(unique)


def found_in(label: str, data: bytes, needles: set[bytes]) -> list[str]:
    lowered = data.lower()
    return [f"{label}: {needle!r}" for needle in sorted(needles) if needle.lower() in lowered]


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()]


def hits(root: Path, needles: set[bytes]) -> list[str]:
    """Every file under `root` holding one of the needles, as `relative/path: needle`."""
    found: list[str] = []
    for path in stored_files(root):
        found += found_in(str(path.relative_to(root)), path.read_bytes(), needles)
    return found


# PostgreSQL. The test's databases are made by tests/conftest.py as SQLAlchemy URLs (postgresql+asyncpg://...).

def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_name(url: str) -> str:
    return str(make_url(url).database)


def _cell_bytes(value: Any) -> bytes:
    """A cell as the bytes a search reads: binary as stored, everything else as its text (JSON as its text too)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


async def rows_hits(url: str, needles: set[bytes]) -> list[str]:
    """Every row of every table of the database outside the system schemas, every column, read through SQL, and
    the values the planner's statistics sampled from them (`pg_stats`): `schema.table: needle` (or `pg_stats:
    needle`) for each holding one — what a reader of the live database can see."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')")
        found: list[str] = []
        for schema, table in tables:
            rows = await connection.fetch(f'SELECT * FROM "{schema}"."{table}"')
            data = b"\n".join(b"\t".join(_cell_bytes(cell) for cell in row.values()) for row in rows)
            found += found_in(f"{schema}.{table}", data, needles)
        # The planner's statistics: sampled values of every column (ANALYZE), readable by whoever may read the table.
        samples = await connection.fetch(
            "SELECT most_common_vals::text, histogram_bounds::text FROM pg_stats "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        data = b"\n".join(_cell_bytes(cell) for row in samples for cell in row.values() if cell is not None)
        return found + found_in("pg_stats", data, needles)
    finally:
        await connection.close()


class RelationFilesUnreadable(Exception):
    """The role of the test's administrative connection may not read the server's files."""


async def relation_file_hits(admin_url: str, database: str, needles: set[bytes]) -> list[str]:
    """Every file of the database's directory in the server's data directory (`base/<oid>/`: the tables, their
    TOAST tables, indexes, free-space and visibility maps, the database's own catalogs such as `pg_statistic`),
    read by the server itself (`pg_read_binary_file`, superuser or `pg_read_server_files`), so that it works whether
    or not the server runs on this machine. `file: needle` for each file holding one. What the server has not written
    yet is in its shared buffers: the caller runs CHECKPOINT first."""
    # Connected to that database, to name each file's relation (`pg_filenode_relation` answers for the current one).
    connection = await asyncpg.connect(asyncpg_dsn(make_url(admin_url).set(database=database)
                                                   .render_as_string(hide_password=False)))
    try:
        oid = await connection.fetchval("SELECT oid FROM pg_database WHERE datname = $1", database)
        folder = f"base/{oid}"
        try:
            names = await connection.fetch("SELECT name FROM pg_ls_dir($1) AS name ORDER BY name", folder)
        except asyncpg.InsufficientPrivilegeError as error:
            raise RelationFilesUnreadable(str(error)) from None
        found: list[str] = []
        for (name,) in names:
            # A file may vanish between the listing and the read (a relation dropped or rewritten meanwhile): its
            # size is then NULL and so is the read. (PostgreSQL 15 has `missing_ok` only with offset and length.)
            data = await connection.fetchval(
                "SELECT pg_read_binary_file($1, 0, (pg_stat_file($1, true)).size, true)", f"{folder}/{name}")
            if data:
                found += found_in(f"{database}/{folder}/{name} ({await _relation(connection, name)})", data, needles)
        return found
    finally:
        await connection.close()


async def _relation(connection: asyncpg.Connection, file_name: str) -> str:
    """The relation a file of the database's directory belongs to (`1234`, `1234.1`, `1234_fsm`...), for reports."""
    filenode = file_name.split("_")[0].split(".")[0]
    if not filenode.isdigit():
        return "-"
    name = await connection.fetchval("SELECT pg_filenode_relation(0, $1)::regclass::text", int(filenode))
    return name or "no relation (dropped)"


async def execute(url: str, *statements: str) -> None:
    """Run statements one by one, each in its own transaction (VACUUM runs outside any)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def checkpoint(admin_url: str) -> None:
    """Write every changed page to the relation files (what `relation_file_hits` reads)."""
    await execute(admin_url, "CHECKPOINT")


async def analyze(url: str) -> None:
    """What autovacuum's autoanalyze does on its own in production (it is off on the test server): the planner's
    statistics sample columns' values into `pg_statistic` (names, addresses, subject lines)."""
    await execute(url, "ANALYZE")


async def operator_vacuum(url: str, timeout: float = 60.0) -> None:
    """The operator's step after an erasure on request, on one database: ANALYZE first, so that the statistics
    sampled before the erasure are replaced; then, once no transaction older than that is running anywhere on the
    server, VACUUM FULL of the whole database (user tables and catalogs, `pg_statistic` included), which writes every
    table and index anew without the old row versions.

    Measured: a plain VACUUM (with or without ANALYZE) leaves the old rows' bytes in the heap and index files;
    VACUUM FULL without ANALYZE first carries the old statistics over; and VACUUM FULL keeps, as "recently dead", the
    row versions a still-running transaction might see — a transaction of another database of the same server
    included, since transaction ids and snapshots are the server's (the test's neighbours' migrations made it keep
    the replaced `pg_statistic` rows). Hence the wait."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("ANALYZE")
        analysed = await connection.fetchval("SELECT pg_current_xact_id()")  # a transaction after the ANALYZE's
        deadline = asyncio.get_running_loop().time() + timeout
        while not await connection.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8",
                                            str(analysed)):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"a transaction older than the ANALYZE still runs after {timeout} s")
            await asyncio.sleep(0.2)
        await connection.execute("VACUUM FULL")
    finally:
        await connection.close()
