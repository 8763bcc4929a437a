"""SQLite locking of the register: writers queue at BEGIN IMMEDIATE; the staff views' reads take no lock."""

from __future__ import annotations

import asyncio
import sqlite3

from services.registry.repository import ComplaintFilter, RegistryStore, migrate
from shared.database import create_engine


async def test_reads_do_not_wait_for_a_writer_holding_the_lock(tmp_path) -> None:
    path = tmp_path / "register.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    store = RegistryStore(engine)
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write transaction
        async with asyncio.timeout(5):  # the busy timeout is 30 s: a read waiting for the lock would fail here
            assert await store.list_complaints(ComplaintFilter()) == []
            assert await store.unpublished_events() == []
            assert await store.complaint("MED-2026-00001") is None

        async def write() -> None:
            async with store.transaction() as tx:
                await tx.next_sequence(2026)

        attempt = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not attempt.done()  # a writer does wait for the lock (BEGIN IMMEDIATE) ...
        writer.execute("ROLLBACK")
        await asyncio.wait_for(attempt, 5)  # ... and goes on once it is free
    finally:
        writer.close()
        await engine.dispose()
