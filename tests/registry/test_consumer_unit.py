"""The registry's subscriptions in FastStream's `TestNatsBroker` (no server, no database): each event reaches its
one use-case entry as its model, and a failing entry is not acknowledged."""

from __future__ import annotations

from datetime import datetime, timezone

from faststream.nats import TestNatsBroker
from faststream.nats.message import NatsMessage

from services.registry.consumer import subscribe_registry
from shared.events import MessageReceived, NotificationFailed, NotificationSent, Party
from shared.messaging import make_broker, publish_event
from shared.settings import CommonSettings


class RecordingRegistry:
    def __init__(self, failing: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.failing = failing

    async def _record(self, name: str, event: object) -> None:
        self.calls.append((name, event))
        if self.failing:
            raise RuntimeError("database unavailable")

    async def on_message_received(self, event: MessageReceived) -> None:
        await self._record("message_received", event)

    async def on_notification_sent(self, event: NotificationSent) -> None:
        await self._record("notification_sent", event)

    async def on_notification_failed(self, event: NotificationFailed) -> None:
        await self._record("notification_failed", event)


def events() -> list[object]:
    return [
        MessageReceived(message_key="k1", received_at=datetime(2026, 11, 24, 9, tzinfo=timezone.utc),
                        sender=Party(name="Jeanne Dupont", email="jeanne@example.org"), subject_line="Plainte"),
        NotificationSent(notification_key="n1", complaint_number="MED-2026-00001", notice_kind="acknowledgment",
                         recipient="jeanne@example.org", message_id="<n1@example.org>"),
        NotificationFailed(notification_key="n2", complaint_number="MED-2026-00001", notice_kind="acknowledgment",
                           recipient="jeanne@example.org", reason="550 no such user"),
    ]


async def test_each_event_reaches_its_use_case_entry_as_its_model():
    settings = CommonSettings(nats_url="nats://127.0.0.1:1")
    broker = make_broker(settings)
    registry = RecordingRegistry()
    subscribe_registry(broker, registry, settings, workers=4)
    sent = events()
    async with TestNatsBroker(broker) as test_broker:
        for event in sent:
            await publish_event(test_broker, event)
    assert registry.calls == list(zip(["message_received", "notification_sent", "notification_failed"], sent))


async def test_a_failing_entry_is_retried_later_never_acknowledged(monkeypatch):
    settings = CommonSettings(nats_url="nats://127.0.0.1:1")
    broker = make_broker(settings)
    settled: list[str] = []

    async def ack(self) -> None:
        settled.append("ack")

    async def nack(self, delay: float | None = None) -> None:
        settled.append("nack")

    monkeypatch.setattr(NatsMessage, "ack", ack)
    monkeypatch.setattr(NatsMessage, "nack", nack)
    subscribe_registry(broker, RecordingRegistry(failing=True), settings)
    async with TestNatsBroker(broker) as test_broker:
        for event in events():
            await publish_event(test_broker, event)
    assert settled == ["nack", "nack", "nack"]
