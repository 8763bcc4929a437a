"""Fixtures of the audit-trail tests: a trail on a migrated database (SQLite and PostgreSQL) with a settable clock,
and `tamper`, which changes the tables the way someone with full database access would (triggers lifted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.registry.access.audit import AuditTrail
from services.registry.repository import migrate
from shared.database import create_engine
from tests.registry.conftest import Clock

SQLITE_TRIGGERS = ("audit_trail_no_update", "audit_trail_no_delete", "audit_head_no_delete",
                   "audit_head_forward_only")


@pytest.fixture
async def trail_on_db(database_url) -> AsyncIterator[tuple[AuditTrail, Clock]]:
    engine = create_engine(database_url)
    await migrate(engine)
    clock = Clock(datetime(2027, 2, 1, 9, 0, tzinfo=timezone.utc))
    try:
        yield AuditTrail(engine, clock=clock), clock
    finally:
        await engine.dispose()


async def tamper(engine: AsyncEngine, *statements: Any) -> None:
    """Run statements with the append-only triggers out of the way (PostgreSQL: replica role, as a superuser may;
    SQLite: the triggers dropped, as anyone who can write the file may)."""
    async with engine.begin() as connection:
        await _lift_triggers(connection)
        for statement in statements:
            await connection.execute(text(statement) if isinstance(statement, str) else statement)


async def _lift_triggers(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        for name in SQLITE_TRIGGERS:
            await connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
