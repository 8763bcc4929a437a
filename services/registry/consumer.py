"""The registry's side of the event bus (adapter): what it subscribes to, and the publishers of its own events.

One typed handler per event type, each calling one entry of the registry's use cases. Every subscription is a
durable JetStream pull consumer (`shared.messaging.durable_subscriber`): the event is acknowledged only after the
register committed it and its own events were published; a failure is retried with back-off and finally
dead-lettered, never dropped. The same declarations make the AsyncAPI document (docs/asyncapi.yaml).

The two events that come once per complaint (`MessageReceived`, `NotificationSent`) are consumed in batches of up to
`EVENT_BATCH` (issue 12): the handlers of a batch commit in one transaction (`unit_of_work.UnitOfWork`'s group
commit), each event still acknowledged after that commit, one alone when the batch's transaction fails.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from faststream.nats import NatsBroker

from services.registry.publisher import EVENT_TYPES
from shared import streams
from shared.events import MessageReceived, NotificationFailed, NotificationSent
from shared.messaging import declare_publishers, durable_subscriber
from shared.settings import CommonSettings

bound = structlog.contextvars.bound_contextvars

# Events fetched and committed together (a setting to be: OMBUDSDESK_REGISTRY_EVENT_BATCH); a lone event is not
# held back for companions longer than `shared.messaging.BATCH_WAIT_SECONDS`.
EVENT_BATCH = 32


class RegistryEntries(Protocol):
    """The registry's use-case entries the bus calls: one per event type it subscribes to."""

    async def on_message_received(self, event: MessageReceived) -> object: ...

    async def on_notification_sent(self, event: NotificationSent) -> object: ...

    async def on_notification_failed(self, event: NotificationFailed) -> object: ...


def subscribe_registry(broker: NatsBroker, registry: RegistryEntries, settings: CommonSettings, workers: int = 1) -> None:
    """Declare the registry's subscribers and publishers on `broker` (no I/O: they start with the broker)."""
    declare_publishers(broker, EVENT_TYPES.values())

    # A batch of messages in flight per process, committed together; several processes may share the consumer.
    @durable_subscriber(broker, settings, subject=streams.SUBJECT_MESSAGE_RECEIVED,
                        durable=streams.CONSUMER_REGISTRY_INTAKE, workers=workers, batch=max(EVENT_BATCH, workers))
    async def message_received(event: MessageReceived) -> None:
        """Register a message intake took in: a new complaint, a follow-up, or one held for staff."""
        with bound(message_id=event.message_id, message_key=event.message_key):
            await registry.on_message_received(event)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_NOTIFICATION_SENT,
                        durable=streams.CONSUMER_REGISTRY_DELIVERY, batch=EVENT_BATCH)
    async def notification_sent(event: NotificationSent) -> None:
        """Record in the complaint's file that a notice went out (an acknowledgment dates it)."""
        with bound(complaint_number=event.complaint_number, message_id=event.message_id):
            await registry.on_notification_sent(event)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_NOTIFICATION_FAILED,
                        durable=streams.CONSUMER_REGISTRY_NOTIFICATION_FAILED)
    async def notification_failed(event: NotificationFailed) -> None:
        """Record in the complaint's file that a notice could not be delivered, for staff to act on."""
        with bound(complaint_number=event.complaint_number):
            await registry.on_notification_failed(event)
