"""Gap-free numbering under concurrent writers, on a real database (SQLite and PostgreSQL), without NATS."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy import select

from services.registry.handlers import Registry
from services.registry.models import Complaint, NumberCounter, OutboxEvent
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from tests.registry.conftest import received


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish(self, rows):
        self.published.extend(row.id for row in rows)


async def test_concurrent_writers_get_gap_free_unique_numbers_and_replays_register_once(database_url):
    # Four independent engines stand for four registry processes sharing one database.
    engines = [create_engine(database_url) for _ in range(4)]
    await asyncio.gather(*(migrate(engine) for engine in engines))  # concurrent start-ups migrate once
    policy = policy_from_settings(RegistrySettings())
    registries = [Registry(RegistryStore(engine), policy, RecordingPublisher()) for engine in engines]
    events = [received(key=f"k{i}") for i in range(60)]
    # Every event is delivered twice, to two different writers, at the same time.
    deliveries = [registries[i % 4].on_message_received(e) for i, e in enumerate(events)]
    deliveries += [registries[(i + 1) % 4].on_message_received(e) for i, e in enumerate(events)]
    outcomes = await asyncio.gather(*deliveries)
    try:
        async with RegistryStore(engines[0]).transaction() as tx:
            rows = (await tx.session.execute(select(Complaint.sequence, Complaint.message_key))).all()
            counter = (await tx.session.execute(select(NumberCounter.last))).scalar_one()
            announced = (await tx.session.execute(
                select(OutboxEvent.dedup_id).where(OutboxEvent.dedup_id.like("registered:%")))).scalars().all()
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(sequence for sequence, _ in rows) == list(range(1, 61))
    assert sorted(key for _, key in rows) == sorted(e.message_key for e in events)
    assert counter == 60
    assert len(announced) == 60
    assert sum(1 for o in outcomes if o.replay) == 60
    # The replays re-announce the same number as the first delivery of the same message.
    by_key: dict[str, set[str]] = {}
    for delivery_event, outcome in zip(events + events, outcomes, strict=True):
        by_key.setdefault(delivery_event.message_key, set()).add(outcome.number)
    assert all(len(numbers) == 1 for numbers in by_key.values())


async def test_numbers_restart_at_one_each_year_from_the_legal_start_date(sqlite_url):
    engine = create_engine(sqlite_url)
    await migrate(engine)
    registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), RecordingPublisher())
    try:
        # 23:30 UTC on 31 December is already 1 January in Brussels: the legal start date is in the new year.
        late = await registry.on_message_received(received(at=datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)))
        before = await registry.on_message_received(received(at=datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc)))
        letter = await registry.on_message_received(received(
            at=datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc), channel="letter",
            letter_received_on=datetime(2026, 12, 30).date()))
    finally:
        await engine.dispose()
    assert (late.number, before.number, letter.number) == ("MED-2027-00001", "MED-2026-00001", "MED-2026-00002")
