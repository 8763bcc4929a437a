"""The events intake publishes: one FastStream publisher each (`shared.messaging.declare_publishers`), documented
in docs/asyncapi.yaml. Intake subscribes to no event (its spool is its own work queue, not a contract)."""

from __future__ import annotations

from shared.events import DeliveryFailed, Event, MessageReceived

PUBLISHES: tuple[type[Event], ...] = (MessageReceived, DeliveryFailed)
