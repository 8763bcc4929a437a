"""The notifier's side of the event bus (adapter): what it subscribes to, and the publishers of its own events.

One typed handler per subscription, each calling one entry of `NotifierHandlers`. Every subscription is a durable
JetStream pull consumer (`shared.messaging.durable_subscriber`): manual ack once the notice is in the outbox,
retries with back-off, dead letter; never a silent drop. One event at a time per consumer: the follow-up rate limit
counts then inserts, and SQLite has a single writer. The same declarations make the AsyncAPI document.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from faststream.nats import NatsBroker
from pydantic import Field

from services.notifier.handlers import NotifierHandlers
from shared import streams
from shared.events import (
    ComplaintRegistered,
    DeadlineApproaching,
    DeadlineMissed,
    DeliveryFailed,
    NoticeRequested,
    NotificationFailed,
    NotificationSent,
)
from shared.messaging import declare_publishers, durable_subscriber
from shared.settings import CommonSettings

PUBLISHES = (NotificationSent, NotificationFailed)

# Both deadline events arrive on one consumer (`ombudsdesk.registry.deadline.*`); their `event_type` tells them apart.
DeadlineEvent = Annotated[DeadlineApproaching | DeadlineMissed, Field(discriminator="event_type")]

bound = structlog.contextvars.bound_contextvars


def register_consumers(broker: NatsBroker, handlers: NotifierHandlers, settings: CommonSettings) -> None:
    """Declare the notifier's subscribers and publishers on `broker` (no I/O: they start with `broker.start()`)."""
    declare_publishers(broker, PUBLISHES)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_COMPLAINT_REGISTERED,
                        durable=streams.CONSUMER_NOTIFIER_REGISTRY)
    async def complaint_registered(event: ComplaintRegistered) -> None:
        """Queue the acknowledgment of receipt of a new complaint."""
        with bound(complaint_number=event.complaint_number):
            await handlers.complaint_registered(event)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_NOTICE_REQUESTED,
                        durable=streams.CONSUMER_NOTIFIER_NOTICES)
    async def notice_requested(event: NoticeRequested) -> None:
        """Queue a notice the registry asked for (inadmissible, redirected, extension, final answer...)."""
        with bound(complaint_number=event.complaint_number):
            await handlers.notice_requested(event)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_DEADLINES,
                        durable=streams.CONSUMER_NOTIFIER_DEADLINES)
    async def deadline_alert(event: DeadlineEvent) -> None:
        """Warn the handler and the supervisor of a deadline approaching or missed; keep it for the digest."""
        with bound(complaint_number=event.complaint_number):
            await handlers.deadline_alert(event)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_DELIVERY_FAILED,
                        durable=streams.CONSUMER_NOTIFIER_DELIVERY_FAILED)
    async def delivery_failed(event: DeliveryFailed) -> None:
        """A bounce of one of our notices: flag the address and mark the notice failed."""
        with bound(message_id=event.original_message_id):
            await handlers.delivery_failed(event)
