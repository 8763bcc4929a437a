"""JetStream consumers of the registry (adapters): received messages, sent and failed notifications.

All are durable pull consumers with manual acknowledgement, settled by `shared.messaging.settle_delivery`: the
event is acknowledged only after the register committed it and its own events were published; a failure is
retried with back-off and finally dead-lettered, never dropped.
"""

from __future__ import annotations

import structlog
from faststream.nats import NatsBroker

from services.registry.handlers import Registry
from shared import streams
from shared.events import MessageReceived, NotificationFailed, NotificationSent
from shared.messaging import subscribe_durable
from shared.settings import CommonSettings


def subscribe_registry(broker: NatsBroker, registry: Registry, settings: CommonSettings, workers: int = 1) -> None:
    """Declare the registry's subscribers on `broker` (no I/O: they start with the broker)."""

    async def on_message_received(data: bytes, _subject: str) -> None:
        event = MessageReceived.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(message_id=event.message_id, message_key=event.message_key):
            await registry.on_message_received(event)

    async def on_notification_sent(data: bytes, _subject: str) -> None:
        event = NotificationSent.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number,
                                                     message_id=event.message_id):
            await registry.on_notification_sent(event)

    async def on_notification_failed(data: bytes, _subject: str) -> None:
        event = NotificationFailed.model_validate_json(data)
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await registry.on_notification_failed(event)

    # Several messages in flight per process: the database serialises only the numbering itself.
    subscribe_durable(broker, settings, subject=streams.SUBJECT_MESSAGE_RECEIVED,
                      durable=streams.CONSUMER_REGISTRY_INTAKE, handle=on_message_received, workers=workers)
    subscribe_durable(broker, settings, subject=streams.SUBJECT_NOTIFICATION_SENT,
                      durable=streams.CONSUMER_REGISTRY_DELIVERY, handle=on_notification_sent)
    subscribe_durable(broker, settings, subject=streams.SUBJECT_NOTIFICATION_FAILED,
                      durable=streams.CONSUMER_REGISTRY_NOTIFICATION_FAILED, handle=on_notification_failed)
