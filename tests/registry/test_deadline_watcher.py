"""The deadline watcher: each alert once per complaint, deadline and lead time, across restarts (real database,
and a real NATS + registry restart for the published events)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from services.registry.commands import Transition
from services.registry.handlers import Registry
from services.registry.watcher import DeadlineWatcher
from services.registry.wiring import build_registry
from shared import streams
from shared.events import DeadlineApproaching, DeadlineMissed
from tests.registry.conftest import next_events, received, registry_settings, stream_count


async def test_alerts_go_out_once_each_and_stop_when_the_deadline_is_met(registry_on_db):
    registry, published, clock = registry_on_db
    outcome = await registry.on_message_received(received(at=clock.now))  # Tuesday 24 November 2026
    watcher = DeadlineWatcher(registry, lead_days=(5, 1))
    assert await watcher.check() == 0  # acknowledgment due 1 December: 7 days away
    clock.advance(days=2)  # 26 November: 5 days left
    assert await watcher.check() == 1
    assert await watcher.check() == 0
    clock.advance(days=4)  # 30 November: one day before the acknowledgment deadline
    assert await watcher.check() == 1
    clock.advance(days=2)  # 2 December: missed
    assert await watcher.check() == 1
    # A restarted process (a new Registry on the same database) raises nothing already raised.
    restarted = DeadlineWatcher(Registry(registry.store, registry.policy, published, clock=clock), (5, 1))
    assert await restarted.check() == 0
    await registry.handle(Transition(outcome.number, "acknowledged", "agent@med.be"))
    clock.advance(days=33)  # 4 January 2027: the answer (due 8 January) is 4 days away
    assert await watcher.check() == 1
    await registry.handle(Transition(outcome.number, "in_review", "agent@med.be"))
    await registry.handle(Transition(outcome.number, "waiting_for_citizen", "agent@med.be"))
    clock.advance(days=10)  # past the old deadline, but the clock is paused while we wait for the citizen
    assert await watcher.check() == 0

    alerts = [(type(e).__name__, e.deadline_kind, e.due, e.lead_days)
              for e in published.events if isinstance(e, DeadlineApproaching | DeadlineMissed)]
    assert alerts == [
        ("DeadlineApproaching", "acknowledgment", date(2026, 12, 1), 5),
        ("DeadlineApproaching", "acknowledgment", date(2026, 12, 1), 1),
        ("DeadlineMissed", "acknowledgment", date(2026, 12, 1), 0),
        ("DeadlineApproaching", "answer", date(2027, 1, 8), 5),
    ]


async def test_missed_deadline_published_once_across_service_restarts(tmp_path, nats_server, database_url, js):
    settings = registry_settings(tmp_path, nats_server.url, database_url)
    service = build_registry(settings)
    await service.start()
    try:
        old = datetime(2026, 9, 1, 9, 0, tzinfo=timezone.utc)
        await service.registry.on_message_received(received(at=old))
    finally:
        await service.stop()
    for _ in range(2):  # two starts, two first passes of the watcher
        service = build_registry(settings)
        await service.start()
        try:
            payloads = await next_events(js, streams.SUBJECT_DEADLINE_MISSED, 2, f"t-missed-{_}")
        finally:
            await service.stop()
    kinds = sorted(DeadlineMissed.model_validate_json(p).deadline_kind for p in payloads)
    assert kinds == ["acknowledgment", "answer"]
    assert await stream_count(js, streams.SUBJECT_DEADLINE_MISSED) == 2


async def test_a_complaint_acknowledged_after_the_watcher_read_it_raises_no_alert(registry_on_db, monkeypatch):
    registry, published, clock = registry_on_db
    outcome = await registry.on_message_received(received(at=clock.now))  # acknowledgment due 1 December
    clock.advance(days=2)  # 26 November: the 5-day alert is due, on the row as the watcher reads it
    read_page = registry.store.open_complaints

    async def acknowledged_just_after_the_read(after_id: int = 0, batch: int = 500):
        page = await read_page(after_id=after_id, batch=batch)
        if page:  # staff acknowledge it between the watcher's read and its alert
            await registry.handle(Transition(outcome.number, "acknowledged", "agent@med.be"))
        return page

    monkeypatch.setattr(registry.store, "open_complaints", acknowledged_just_after_the_read)
    assert await DeadlineWatcher(registry, lead_days=(5, 1)).check() == 0
    assert [e for e in published.events if isinstance(e, DeadlineApproaching | DeadlineMissed)] == []
