"""The notifier's side of the event bus (adapter): what it subscribes to, and the publishers of its own events.

One typed handler per subscription, each calling one entry of `NotifierHandlers`. Every subscription is a durable
JetStream pull consumer (`shared.messaging.durable_subscriber`): manual ack once the notice is in the outbox,
retries with back-off, dead letter; never a silent drop. One event at a time per consumer (the follow-up rate limit
counts then inserts, and SQLite has a single writer), except `ComplaintRegistered`, one per complaint: up to
`EVENT_BATCH` fetched at once, their acknowledgments recorded in one transaction (`outbox.Outbox.record`'s group
commit, issue 12), each event acknowledged after that commit. The same declarations make the AsyncAPI document.

Previews (`NoticePreviewRequest` on `SUBJECT_NOTICE_PREVIEW`) are core NATS request/reply, not a stream: a queue
group so that one notifier answers, and a middleware (`_AlwaysAnswer`) that answers every request, also one too
large, malformed or failing, with a `NoticePreview` carrying the error, so a page never waits for a timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.nats import NatsBroker, NatsRouter
from pydantic import Field, ValidationError

from services.notifier.handlers import NotifierHandlers
from shared import streams
from shared.events import (
    ComplaintRegistered,
    DeadlineApproaching,
    DeadlineMissed,
    DeliveryFailed,
    NoticePreview,
    NoticePreviewRequest,
    NoticeRequested,
    NotificationFailed,
    NotificationSent,
    PreviewProblem,
)
from shared.messaging import declare_publishers, describe_error, durable_subscriber
from shared.settings import CommonSettings

PUBLISHES = (NotificationSent, NotificationFailed)

# Both deadline events arrive on one consumer (`ombudsdesk.registry.deadline.*`); their `event_type` tells them apart.
DeadlineEvent = Annotated[DeadlineApproaching | DeadlineMissed, Field(discriminator="event_type")]

bound = structlog.contextvars.bound_contextvars
log = structlog.get_logger(__name__)

# Events fetched and recorded together (a setting to be: OMBUDSDESK_NOTIFIER_EVENT_BATCH); a lone event is not held
# back for companions longer than `shared.messaging.BATCH_WAIT_SECONDS`.
EVENT_BATCH = 32


class _AlwaysAnswer(BaseMiddleware):
    """Around the preview handler (FastStream's validation of the request included): a request over
    `NoticePreviewRequest.MAX_BYTES` is refused unread, and any failure is answered as the preview's error."""

    async def consume_scope(self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]],
                            msg: StreamMessage[Any]) -> Any:
        size = len(msg.body or b"")
        if size > NoticePreviewRequest.MAX_BYTES:
            log.warning("preview.too_large", size=size)
            return NoticePreview.failure(PreviewProblem.TOO_LARGE,
                                         f"{size} bytes, at most {NoticePreviewRequest.MAX_BYTES}")
        try:
            return await call_next(msg)
        except ValidationError as error:
            return NoticePreview.failure(PreviewProblem.INVALID_REQUEST, describe_error(error))
        except Exception as error:  # noqa: BLE001 - the page must hear why, not wait for its timeout
            log.error("preview.failed", error=describe_error(error))
            return NoticePreview.failure(PreviewProblem.FAILED, type(error).__name__)


def register_consumers(broker: NatsBroker, handlers: NotifierHandlers, settings: CommonSettings) -> None:
    """Declare the notifier's subscribers and publishers on `broker` (no I/O: they start with `broker.start()`)."""
    declare_publishers(broker, PUBLISHES)

    previews = NatsRouter(middlewares=(_AlwaysAnswer,))

    @previews.subscriber(streams.SUBJECT_NOTICE_PREVIEW, queue=streams.QUEUE_NOTIFIER_PREVIEW,
                         title=f"{streams.SUBJECT_NOTICE_PREVIEW}:{streams.QUEUE_NOTIFIER_PREVIEW}",
                         description="Core NATS request/reply (no stream): answers the NoticePreview of a notice "
                                     "the registry may request, storing and sending nothing.")
    async def notice_preview(request: NoticePreviewRequest) -> NoticePreview:
        """Render a requested notice as it would be sent, for staff to read before sending it."""
        with bound(complaint_number=request.complaint_number):
            return await handlers.preview(request)

    broker.include_router(previews)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_COMPLAINT_REGISTERED,
                        durable=streams.CONSUMER_NOTIFIER_REGISTRY, batch=EVENT_BATCH)
    async def complaint_registered(event: ComplaintRegistered) -> None:
        """Queue the acknowledgment of receipt of a new complaint."""
        # The message key too: the correlation id that follows one complaint from intake's SMTP session.
        with bound(complaint_number=event.complaint_number, message_key=event.message_key):
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
