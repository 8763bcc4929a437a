"""JetStream consumers of the registry (adapters): received messages and sent notifications.

Both are durable pull consumers with manual acknowledgement, settled by `shared.messaging.settle_delivery`: the
event is acknowledged only after the register committed it and its own events were published; a failure is
retried with back-off and finally dead-lettered, never dropped.
"""

from __future__ import annotations

import structlog
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub

from services.registry.handlers import Registry
from shared import streams
from shared.events import MessageReceived, NotificationSent
from shared.messaging import DeliveryPolicy, settle_delivery
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)


def delivery_policy(durable: str, settings: CommonSettings) -> DeliveryPolicy:
    return DeliveryPolicy(durable=durable, max_deliveries=settings.max_deliveries,
                          ack_wait_seconds=settings.ack_wait_seconds)


def subscribe_registry(broker: NatsBroker, registry: Registry, settings: CommonSettings, workers: int = 1) -> None:
    """Declare the registry's subscribers on `broker` (no I/O: they start with the broker)."""
    intake_policy = delivery_policy(streams.CONSUMER_REGISTRY_INTAKE, settings)
    delivery_policy_ = delivery_policy(streams.CONSUMER_REGISTRY_DELIVERY, settings)

    @broker.subscriber(
        streams.SUBJECT_MESSAGE_RECEIVED,
        stream=JStream(streams.STREAM_INTAKE, declare=False),
        durable=intake_policy.durable,
        config=intake_policy.consumer_config(),
        # Several messages in flight per process: the database serialises only the numbering itself.
        pull_sub=PullSub(batch_size=workers, timeout=1.0),
        max_workers=workers,
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_message_received(msg: NatsMessage) -> None:
        async def process() -> None:
            event = MessageReceived.model_validate_json(msg.raw_message.data)
            with structlog.contextvars.bound_contextvars(message_id=event.message_id, message_key=event.message_key):
                await registry.on_message_received(event)

        await settle_delivery(broker, msg, intake_policy, process)

    @broker.subscriber(
        streams.SUBJECT_NOTIFICATION_SENT,
        stream=JStream(streams.STREAM_NOTIFIER, declare=False),
        durable=delivery_policy_.durable,
        config=delivery_policy_.consumer_config(),
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_notification_sent(msg: NatsMessage) -> None:
        async def process() -> None:
            event = NotificationSent.model_validate_json(msg.raw_message.data)
            with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number,
                                                         message_id=event.message_id):
                await registry.on_notification_sent(event)

        await settle_delivery(broker, msg, delivery_policy_, process)
