"""The delivery policy against a real NATS server: retries, dead letter, duplicate suppression."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone

import nats
from faststream.nats import JStream, NatsMessage, PullSub
from faststream.middlewares import AckPolicy

from shared import streams
from shared.events import ComplaintRegistered, DeadLettered, Party
from shared.messaging import DeliveryPolicy, make_broker, publish_event, settle_delivery
from shared.stream_admin import ensure_streams
from shared.settings import CommonSettings


def sample_registered(number: str = "MED-2026-00001") -> ComplaintRegistered:
    return ComplaintRegistered(
        complaint_number=number,
        message_key="k1",
        channel="email",
        received_at=datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc),
        legal_start=date(2026, 11, 24),
        complainant=Party(name="Jeanne Dupont", email="jeanne@example.org"),
        acknowledgment_due=date(2026, 12, 1),
        answer_due=date(2027, 1, 8),
    )


async def test_duplicate_publish_is_dropped_by_jetstream(nats_server):
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    async with broker:
        await broker.connect()
        await ensure_streams(broker.connection.jetstream())
        await ensure_streams(broker.connection.jetstream())  # idempotent at every start
        event = sample_registered()
        assert await publish_event(broker, event) is True
        assert await publish_event(broker, event.model_copy(update={"event_id": event.event_id})) is False
        info = await broker.connection.jetstream().stream_info(streams.STREAM_REGISTRY)
        assert info.state.messages == 1


async def test_failing_handler_is_retried_then_dead_lettered_not_lost(nats_server):
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    policy = DeliveryPolicy(durable="test-consumer", max_deliveries=3, first_retry_seconds=0.05)
    attempts: list[int] = []
    done = asyncio.Event()

    @broker.subscriber(
        streams.SUBJECT_COMPLAINT_REGISTERED,
        stream=JStream(streams.STREAM_REGISTRY, declare=False),
        durable=policy.durable,
        config=policy.consumer_config(),
        pull_sub=PullSub(batch_size=1, timeout=0.5),
        ack_policy=AckPolicy.MANUAL,
    )
    async def always_fails(msg: NatsMessage) -> None:
        async def process() -> None:
            attempts.append(msg.raw_message.metadata.num_delivered)
            raise RuntimeError("database unavailable")

        await settle_delivery(broker, msg, policy, process)
        if len(attempts) >= policy.max_deliveries:
            done.set()

    connection = await nats.connect(nats_server.url)
    await ensure_streams(connection.jetstream())
    async with broker:
        await broker.start()
        await publish_event(broker, sample_registered())
        await asyncio.wait_for(done.wait(), 10)
        js = connection.jetstream()
        dead = await js.pull_subscribe(streams.dead_letter_subject(policy.durable), durable="inspect")
        [record] = await dead.fetch(1, timeout=5)
        dead_letter = DeadLettered.model_validate_json(record.data)
    await connection.close()
    assert attempts == [1, 2, 3]
    assert dead_letter.deliveries == 3
    assert "database unavailable" in dead_letter.error
    assert ComplaintRegistered.model_validate_json(dead_letter.payload).complaint_number == "MED-2026-00001"
