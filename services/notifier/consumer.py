"""The notifier's durable JetStream consumers (adapter): each event is decoded, handled, then settled through
`shared.messaging.settle_delivery` (manual ack, retries with backoff, dead letter; never a silent drop)."""

from __future__ import annotations

import structlog
from faststream.nats import NatsBroker

from services.notifier.handlers import NotifierHandlers
from shared import streams
from shared.events import (
    ComplaintRegistered,
    DeadlineAlert,
    DeadlineApproaching,
    DeadlineMissed,
    DeliveryFailed,
    NoticeRequested,
)
from shared.messaging import subscribe_durable
from shared.settings import CommonSettings


def _decode_deadline(data: bytes, subject: str) -> DeadlineAlert:
    if subject == streams.SUBJECT_DEADLINE_MISSED:
        return DeadlineMissed.model_validate_json(data)
    return DeadlineApproaching.model_validate_json(data)


def register_consumers(broker: NatsBroker, handlers: NotifierHandlers, settings: CommonSettings) -> None:
    """Declare the subscribers on the broker (no I/O: they start with `broker.start()`).

    One event at a time per consumer: the follow-up rate limit counts then inserts, and SQLite has a single writer.
    """

    async def registered(data: bytes, _subject: str) -> None:
        event = ComplaintRegistered.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await handlers.complaint_registered(event)

    async def notice(data: bytes, _subject: str) -> None:
        event = NoticeRequested.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await handlers.notice_requested(event)

    async def deadline(data: bytes, subject: str) -> None:
        event = _decode_deadline(data, subject)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await handlers.deadline_alert(event)

    async def bounce(data: bytes, _subject: str) -> None:
        event = DeliveryFailed.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(message_id=event.original_message_id):
            await handlers.delivery_failed(event)

    subscribe_durable(broker, settings, subject=streams.SUBJECT_COMPLAINT_REGISTERED,
                      durable=streams.CONSUMER_NOTIFIER_REGISTRY, handle=registered)
    subscribe_durable(broker, settings, subject=streams.SUBJECT_NOTICE_REQUESTED,
                      durable=streams.CONSUMER_NOTIFIER_NOTICES, handle=notice)
    subscribe_durable(broker, settings, subject=streams.SUBJECT_DEADLINES,
                      durable=streams.CONSUMER_NOTIFIER_DEADLINES, handle=deadline)
    subscribe_durable(broker, settings, subject=streams.SUBJECT_DELIVERY_FAILED,
                      durable=streams.CONSUMER_NOTIFIER_DELIVERY_FAILED, handle=bounce)
