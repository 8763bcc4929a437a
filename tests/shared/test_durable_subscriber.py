"""`durable_subscriber` and `publish_event`, the one NATS style of the services: typed handlers, settled deliveries.

In FastStream's `TestNatsBroker` (no server: the subscription mechanics) and against a real NATS (what JetStream
does with a malformed event).
"""

from __future__ import annotations

import asyncio

import nats
import pytest
from faststream.nats import JStream, NatsMessage, TestNatsBroker
from faststream.nats.message import NatsMessage as NatsMessageClass

from shared import streams
from shared.events import ComplaintRegistered, DeadLettered
from shared.messaging import durable_subscriber, make_broker, publish_event
from shared.stream_admin import ensure_streams
from shared.settings import CommonSettings
from tests.shared.test_messaging import sample_registered

SETTINGS = CommonSettings(nats_url="nats://127.0.0.1:1", max_deliveries=3)


def dead_letters_of(broker, durable: str) -> list[DeadLettered]:
    """A subscriber, in the test broker, to the consumer's dead-letter subject."""
    received: list[DeadLettered] = []

    @broker.subscriber(streams.dead_letter_subject(durable), stream=JStream(streams.STREAM_DEAD_LETTER, declare=False))
    async def dead(record: DeadLettered) -> None:
        received.append(record)

    return received


async def test_the_handler_gets_the_event_as_its_model_and_the_delivery_is_acked(monkeypatch):
    broker = make_broker(SETTINGS)
    handled: list[ComplaintRegistered] = []
    settled: list[str] = []
    monkeypatch.setattr(NatsMessageClass, "ack", lambda self: _record(settled, "ack"))

    @durable_subscriber(broker, SETTINGS, subject=streams.SUBJECT_COMPLAINT_REGISTERED, durable="unit")
    async def registered(event: ComplaintRegistered) -> None:
        handled.append(event)

    event = sample_registered()
    async with TestNatsBroker(broker) as test_broker:
        assert await publish_event(test_broker, event) is True
    assert handled == [event]
    assert settled == ["ack"]


async def test_a_failing_handler_is_nacked_with_the_first_retry_delay_not_acked(monkeypatch):
    broker = make_broker(SETTINGS)
    settled: list[object] = []
    monkeypatch.setattr(NatsMessageClass, "ack", lambda self: _record(settled, "ack"))
    monkeypatch.setattr(NatsMessageClass, "nack", lambda self, delay=None: _record(settled, ("nack", delay)))

    @durable_subscriber(broker, SETTINGS, subject=streams.SUBJECT_COMPLAINT_REGISTERED, durable="unit")
    async def registered(event: ComplaintRegistered) -> None:
        raise RuntimeError("database unavailable")

    async with TestNatsBroker(broker) as test_broker:
        await publish_event(test_broker, sample_registered())
    assert settled == [("nack", 0.5)]


async def test_a_payload_that_is_not_the_event_is_dead_lettered_whole_without_calling_the_handler():
    broker = make_broker(SETTINGS)
    handled: list[ComplaintRegistered] = []

    @durable_subscriber(broker, SETTINGS, subject=streams.SUBJECT_COMPLAINT_REGISTERED, durable="unit")
    async def registered(event: ComplaintRegistered) -> None:
        handled.append(event)

    dead = dead_letters_of(broker, "unit")
    payload = b'{"complaint_number": 42, "note": "Jeanne Dupont"}'
    async with TestNatsBroker(broker) as test_broker:
        await test_broker.publish(payload, streams.SUBJECT_COMPLAINT_REGISTERED, stream=streams.STREAM_REGISTRY)
    assert handled == []
    [record] = dead
    assert record.consumer == "unit"
    assert record.payload == payload.decode()
    assert record.error.startswith("ValidationError:")
    assert "Jeanne" not in record.error  # names the fields, never the values


async def test_publishing_goes_through_the_declared_publisher_with_the_dedup_header():
    broker = make_broker(SETTINGS)
    event = sample_registered()
    seen: list[dict[str, str]] = []

    @broker.subscriber(streams.SUBJECT_COMPLAINT_REGISTERED, stream=JStream(streams.STREAM_REGISTRY, declare=False))
    async def raw(body: ComplaintRegistered, message: NatsMessage) -> None:
        seen.append(message.headers)

    async with TestNatsBroker(broker) as test_broker:
        await publish_event(test_broker, event)
    assert seen[0]["Nats-Msg-Id"] == event.dedup_id()
    assert [p.subject.template for p in broker.publishers] == [streams.SUBJECT_COMPLAINT_REGISTERED]


async def test_a_malformed_event_on_a_real_jetstream_is_dead_lettered_at_once_with_its_payload(nats_server):
    settings = CommonSettings(nats_url=nats_server.url, max_deliveries=3)
    broker = make_broker(settings)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_COMPLAINT_REGISTERED, durable="strict")
    async def registered(event: ComplaintRegistered) -> None:
        pytest.fail("a malformed event reached the handler")

    connection = await nats.connect(nats_server.url)
    js = connection.jetstream()
    await ensure_streams(js)
    payload = b'{"event_type": "complaint.registered", "complaint_number": "MED-2026-00009"}'
    async with broker:
        await broker.start()
        await js.publish(streams.SUBJECT_COMPLAINT_REGISTERED, payload, headers={"Nats-Msg-Id": "bad-1"})
        dead = await js.pull_subscribe(streams.dead_letter_subject("strict"), durable="inspect")
        [stored] = await dead.fetch(1, timeout=10)
        record = DeadLettered.model_validate_json(stored.data)
        await asyncio.sleep(0.2)
        info = await js.consumer_info(streams.STREAM_REGISTRY, "strict")
    await connection.close()
    assert record.deliveries == 1
    assert record.payload == payload.decode()
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def _record(into: list, value: object) -> None:
    into.append(value)
