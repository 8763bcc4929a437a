"""The FastStream internals `shared.jetstream_producer` relies on: if an upgrade moves them, this fails loudly
(rather than the services silently publishing through FastStream's slower request-per-event producer)."""

from __future__ import annotations

import inspect

from faststream.nats import TestNatsBroker
from faststream.nats.publisher.producer import NatsFastProducer
from faststream.nats.response import NatsPublishCommand

from shared.jetstream_producer import PipelinedJetStreamProducer
from shared.messaging import make_broker, publish_event
from shared.settings import CommonSettings
from tests.shared.test_messaging import sample_registered


def test_the_broker_config_still_holds_the_jetstream_producer_that_publishers_use():
    broker = make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))
    assert isinstance(broker.config.broker_config.js_producer, PipelinedJetStreamProducer)
    abstract = {name for name, member in inspect.getmembers(NatsFastProducer)
                if getattr(member, "__isabstractmethod__", False)}
    assert abstract <= {"publish", "request"}, f"FastStream's producer protocol changed: {abstract}"
    assert list(inspect.signature(NatsFastProducer.connect).parameters) == ["self", "connection", "serializer",
                                                                             "codec"]
    assert "js" in inspect.signature(NatsPublishCommand.headers_to_publish).parameters


async def test_test_nats_broker_swaps_it_out_and_back():
    broker = make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))
    async with TestNatsBroker(broker) as test_broker:
        assert not isinstance(broker.config.broker_config.js_producer, PipelinedJetStreamProducer)
        assert await publish_event(test_broker, sample_registered()) is True
    assert isinstance(broker.config.broker_config.js_producer, PipelinedJetStreamProducer)


async def test_on_connect_it_is_handed_the_connections_jetstream_context(nats_server):
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    async with broker:
        await broker.connect()
        producer = broker.config.broker_config.js_producer
        assert producer._jetstream is broker.config.broker_config.connection_state.stream


async def test_a_stored_event_is_published_as_publish_event_would_publish_it(nats_server):
    """`publish_stored` (the registry's outbox rows, stored encoded) against `publish_event`: a real JetStream
    stream holds the same body as the same model, the same `Nats-Msg-Id` and event header, the JSON content type
    FastStream's subscribers decode; a second publish of either kind is JetStream's duplicate. Under
    `TestNatsBroker` it publishes nothing and says so (None): the caller publishes the model instead."""
    import nats as nats_client

    from shared.events import ComplaintRegistered, Party
    from shared.messaging import publish_stored
    from shared.stream_admin import ensure_streams

    stored, direct = (sample_registered(number).model_copy(update={"complainant": Party(
        name="Zoë Van den Brœck-Ñúñez", email="zoe@example.org")}) for number in ("MED-2026-00001", "MED-2026-00002"))
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    async with broker:
        await broker.connect()
        js = broker.config.broker_config.connection_state.stream
        await ensure_streams(js)
        assert await publish_stored(broker, stored.subject, stored.model_dump_json(), dedup_id=stored.dedup_id(),
                                    event_type=stored.event_type) is True
        assert await publish_event(broker, direct) is True
        assert await publish_event(broker, stored) is False  # the same Nats-Msg-Id: a duplicate
        assert await publish_stored(broker, direct.subject, direct.model_dump_json(), dedup_id=direct.dedup_id(),
                                    event_type=direct.event_type) is False
    connection = await nats_client.connect(nats_server.url)
    try:
        subscription = await connection.jetstream().subscribe(stored.subject, ordered_consumer=True)
        messages = [await subscription.next_msg(timeout=5) for _ in range(2)]
    finally:
        await connection.close()
    by_id = {message.headers["Nats-Msg-Id"]: message for message in messages}
    assert set(by_id) == {stored.dedup_id(), direct.dedup_id()}
    for event in (stored, direct):
        message = by_id[event.dedup_id()]
        assert message.data == event.model_dump_json().encode()  # the very bytes, non-ASCII name included
        assert ComplaintRegistered.model_validate_json(message.data) == event
        assert message.headers["Ombudsdesk-Event"] == "complaint.registered"
        assert message.headers["content-type"] == "application/json"

    async with TestNatsBroker(make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))) as test_broker:
        assert await publish_stored(test_broker, stored.subject, stored.model_dump_json(),
                                    dedup_id=stored.dedup_id(), event_type=stored.event_type) is None


async def test_the_registry_s_outbox_row_reaches_a_subscriber_under_test_nats_broker_too():
    """`publish_row`'s other path: FastStream's in-memory broker has no pipelined producer, so the stored row is
    decoded and published as its model, and a subscriber gets the event."""
    from services.registry.models import OutboxEvent
    from faststream.nats import JStream

    from services.registry.publisher import publish_row
    from shared.events import ComplaintRegistered
    from shared.messaging import stream_for_subject

    event = sample_registered()
    broker = make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))
    received: list[ComplaintRegistered] = []

    @broker.subscriber(event.subject, stream=JStream(stream_for_subject(event.subject), declare=False))
    async def registered(message: ComplaintRegistered) -> None:
        received.append(message)

    row = OutboxEvent(id=1, dedup_id=event.dedup_id(), subject=event.subject, payload=event.model_dump_json())
    async with TestNatsBroker(broker) as test_broker:
        await publish_row(test_broker, row)
    assert received == [event]
