"""Registration end to end over real NATS and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone

import pytest

from services.registry.repository import ComplaintFilter
from shared import streams
from shared.events import ComplaintChanged, ComplaintRegistered, MessageAppended, NotificationSent
from tests.registry.conftest import next_events, publish, received, stream_count


async def test_received_message_is_registered_and_announced(running_registry, js):
    event = received(at=datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc))
    await publish(js, event)
    [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-registered")
    registered = ComplaintRegistered.model_validate_json(payload)
    assert registered.complaint_number == "MED-2026-00001"
    assert registered.message_key == event.message_key
    assert registered.legal_start == date(2026, 11, 24)
    # Five working days after Tuesday 24 November 2026; 45 calendar days fall on Friday 8 January 2027.
    assert registered.acknowledgment_due == date(2026, 12, 1)
    assert registered.answer_due == date(2027, 1, 8)
    assert registered.complainant.email == "jeanne.dupont@example.org"
    assert registered.reply_to_message_id == event.message_id
    stored = await running_registry.store.complaint("MED-2026-00001")
    assert stored is not None and stored.status == "received" and stored.subject_line == event.subject_line


async def test_replayed_message_is_registered_once_and_reannounced_identically(running_registry, js):
    event = received()
    await publish(js, event)
    [first] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-first")
    # A replay beyond JetStream's duplicate window: same event, another Nats-Msg-Id.
    await publish(js, event, msg_id="replayed-later")
    await publish(js, received())
    payloads = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 2, "t-all")
    numbers = [ComplaintRegistered.model_validate_json(p).complaint_number for p in payloads]
    assert numbers == ["MED-2026-00001", "MED-2026-00002"]
    # The replay re-published the same event (same dedup id), which JetStream dropped as a duplicate.
    assert ComplaintRegistered.model_validate_json(first).event_id == ComplaintRegistered.model_validate_json(
        payloads[0]).event_id
    assert len(await running_registry.store.list_complaints(ComplaintFilter())) == 2


async def test_acknowledgment_is_recorded_and_reply_to_it_is_attached(running_registry, js):
    await publish(js, received(email="Jeanne.Dupont@Example.org"))
    [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-reg")
    number = ComplaintRegistered.model_validate_json(payload).complaint_number
    sent = NotificationSent(notification_key=f"ack:{number}", complaint_number=number, notice_kind="acknowledgment",
                            recipient="jeanne.dupont@example.org", message_id="<ack-1@ombudsdesk.localhost>")
    await publish(js, sent)
    await publish(js, sent, msg_id="redelivered")
    changes = await next_events(js, streams.SUBJECT_COMPLAINT_CHANGED, 2, "t-changed")
    assert [ComplaintChanged.model_validate_json(c).change for c in changes] == ["registered", "status"]

    reply = received(email="jeanne.dupont@example.org", subject="Re: votre plainte",
                     in_reply_to="<ack-1@ombudsdesk.localhost>", at=datetime.now(timezone.utc))
    await publish(js, reply)
    [appended] = await next_events(js, streams.SUBJECT_MESSAGE_APPENDED, 1, "t-appended")
    assert MessageAppended.model_validate_json(appended).complaint_number == number

    complaint, thread, _changes, parties = await running_registry.store.complaint_file(number)
    assert complaint.status == "acknowledged" and complaint.acknowledged_at is not None
    assert [(m.direction, m.notice_kind) for m in thread] == [("in", None), ("out", "acknowledgment"), ("in", None)]
    assert parties == ["jeanne.dupont@example.org"]


async def test_stranger_quoting_a_number_is_held_not_attached(running_registry, js):
    await publish(js, received())
    [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-reg")
    number = ComplaintRegistered.model_validate_json(payload).complaint_number
    intruder = received(email="someone@else.example", subject=f"Re: [{number}] ajout", candidate_case_numbers=(number,))
    await publish(js, intruder)
    for _ in range(100):
        held = await running_registry.store.held_messages()
        if held:
            break
        await asyncio.sleep(0.05)
    [item] = held
    assert item.reason == "sender_not_party"
    assert item.suggestions[0]["number"] == number
    _complaint, thread, _changes, _parties = await running_registry.store.complaint_file(number)
    assert len(thread) == 1
    assert await stream_count(js, streams.SUBJECT_MESSAGE_APPENDED) == 0


async def test_event_left_unpublished_by_a_crash_is_published_by_the_outbox(nats_server, database_url, js):
    from services.registry.handlers import Registry
    from services.registry.publisher import OutboxPublisher
    from services.registry.repository import RegistryStore, migrate
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import policy_from_settings
    from shared.database import create_engine
    from shared.messaging import make_broker

    class DiesAfterCommit:
        async def publish(self, rows):
            raise ConnectionError("process killed between commit and publish")

    engine = create_engine(database_url)
    await migrate(engine)
    store = RegistryStore(engine)
    registry = Registry(store, policy_from_settings(RegistrySettings()), DiesAfterCommit())
    broker = make_broker(RegistrySettings(nats_url=nats_server.url))
    try:
        with pytest.raises(ConnectionError):
            await registry.on_message_received(received())
        assert len(await store.unpublished_events()) == 2  # registered + change log, committed
        await broker.connect()
        assert await OutboxPublisher(store, broker).drain() == 2  # what the restarted service's loop does
        [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-late")
        assert ComplaintRegistered.model_validate_json(payload).complaint_number == "MED-2026-00001"
        assert await store.unpublished_events() == []
    finally:
        await broker.stop()
        await engine.dispose()


async def test_malformed_or_impossible_events_are_dead_lettered_and_work_goes_on(running_registry, js):
    from shared.events import DeadLettered

    await js.publish(streams.SUBJECT_MESSAGE_RECEIVED, b'{"not": "a message"}', headers={"Nats-Msg-Id": "bad-1"})
    await publish(js, NotificationSent(notification_key="n-x", complaint_number="MED-2026-09999",
                                       notice_kind="acknowledgment", recipient="a@b.c", message_id="<x@y>"))
    await publish(js, received())
    [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-after-bad")
    assert ComplaintRegistered.model_validate_json(payload).complaint_number == "MED-2026-00001"
    dead = await next_events(js, f"{streams.SUBJECT_DEAD_LETTER}.>", 2, "t-dead")
    by_consumer = {DeadLettered.model_validate_json(d).consumer: DeadLettered.model_validate_json(d) for d in dead}
    assert set(by_consumer) == {streams.CONSUMER_REGISTRY_INTAKE, streams.CONSUMER_REGISTRY_DELIVERY}
    assert by_consumer[streams.CONSUMER_REGISTRY_INTAKE].payload == '{"not": "a message"}'
    assert "MED-2026-09999" in by_consumer[streams.CONSUMER_REGISTRY_DELIVERY].error
