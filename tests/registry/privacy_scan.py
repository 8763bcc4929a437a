"""The privacy tests' search of a whole register database (issue 16): every table, every row, as text."""

from __future__ import annotations

from sqlalchemy import inspect, text


async def rows_mentioning(engine, needles: tuple[str, ...]) -> dict[str, list[str]]:
    """Every table of the database (SQLite's FTS5 shadow tables included), every row, as text: which row holds
    which needle (case-insensitive)."""

    def names(connection) -> list[str]:
        return inspect(connection).get_table_names()

    found: dict[str, list[str]] = {}
    async with engine.connect() as connection:
        tables = await connection.run_sync(names)
        if engine.dialect.name == "sqlite":
            tables += list((await connection.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))).scalars())
        for table in sorted(set(tables)):
            for row in await connection.execute(text(f'SELECT * FROM "{table}"')):
                cells = " ".join(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in row)
                for needle in needles:
                    if needle.lower() in cells.lower() or needle.lower() in cells.encode().decode(
                            "unicode_escape", "ignore").lower():
                        found.setdefault(table, []).append(needle)
    return found
