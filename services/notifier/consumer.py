"""The notifier's durable JetStream consumers (adapter): each event is decoded, handled, then settled through
`shared.messaging.settle_delivery` (manual ack, retries with backoff, dead letter; never a silent drop)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub

from services.notifier.handlers import NotifierHandlers
from shared import streams
from shared.events import (
    ComplaintRegistered,
    DeadlineAlert,
    DeadlineApproaching,
    DeadlineMissed,
    DeliveryFailed,
    Event,
    NoticeRequested,
)
from shared.messaging import DeliveryPolicy, settle_delivery
from shared.settings import CommonSettings

# Consumers beyond the two named in shared/streams.py; notifier-only, so they live here.
CONSUMER_NOTIFIER_NOTICES = "notifier-notices"
CONSUMER_NOTIFIER_DEADLINES = "notifier-deadlines"
SUBJECT_DEADLINES = f"{streams.SUBJECT_ROOT}.registry.deadline.*"


def _decode_deadline(data: bytes, subject: str) -> DeadlineAlert:
    if subject == streams.SUBJECT_DEADLINE_MISSED:
        return DeadlineMissed.model_validate_json(data)
    return DeadlineApproaching.model_validate_json(data)


def register_consumers(broker: NatsBroker, handlers: NotifierHandlers, settings: CommonSettings) -> None:
    """Declare the subscribers on the broker (no I/O: they start with `broker.start()`)."""

    def subscribe(
        subject: str,
        durable: str,
        stream: str,
        handle: Callable[[bytes, str], Awaitable[Event]],
    ) -> None:
        policy = DeliveryPolicy(
            durable=durable, max_deliveries=settings.max_deliveries, ack_wait_seconds=settings.ack_wait_seconds
        )

        # One event at a time per consumer (FastStream runs a fetched batch concurrently): the follow-up rate limit
        # counts then inserts, and SQLite has a single writer anyway.
        @broker.subscriber(
            subject,
            stream=JStream(stream, declare=False),
            durable=policy.durable,
            config=policy.consumer_config(),
            pull_sub=PullSub(batch_size=1, timeout=0.5),
            ack_policy=AckPolicy.MANUAL,
        )
        async def on_message(msg: NatsMessage) -> None:
            async def process() -> None:
                event = await handle(msg.raw_message.data, msg.raw_message.subject)
                structlog.get_logger(__name__).debug("event.handled", consumer=durable, event_id=str(event.event_id))

            with structlog.contextvars.bound_contextvars(consumer=durable):
                await settle_delivery(broker, msg, policy, process)

    async def registered(data: bytes, _subject: str) -> Event:
        event = ComplaintRegistered.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await handlers.complaint_registered(event)
        return event

    async def notice(data: bytes, _subject: str) -> Event:
        event = NoticeRequested.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await handlers.notice_requested(event)
        return event

    async def deadline(data: bytes, subject: str) -> Event:
        event = _decode_deadline(data, subject)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await handlers.deadline_alert(event)
        return event

    async def bounce(data: bytes, _subject: str) -> Event:
        event = DeliveryFailed.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(message_id=event.original_message_id):
            await handlers.delivery_failed(event)
        return event

    subscribe(streams.SUBJECT_COMPLAINT_REGISTERED, streams.CONSUMER_NOTIFIER_REGISTRY, streams.STREAM_REGISTRY,
              registered)
    subscribe(streams.SUBJECT_NOTICE_REQUESTED, CONSUMER_NOTIFIER_NOTICES, streams.STREAM_REGISTRY, notice)
    subscribe(SUBJECT_DEADLINES, CONSUMER_NOTIFIER_DEADLINES, streams.STREAM_REGISTRY, deadline)
    subscribe(streams.SUBJECT_DELIVERY_FAILED, streams.CONSUMER_NOTIFIER_DELIVERY_FAILED, streams.STREAM_INTAKE,
              bounce)
