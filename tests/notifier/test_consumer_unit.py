"""The notifier's subscriptions in FastStream's `TestNatsBroker` (no server): each event reaches its one handler
entry as its model; both deadline events share one consumer and keep their type."""

from __future__ import annotations

from datetime import date

from faststream.nats import TestNatsBroker

from services.notifier.consumer import register_consumers
from shared.events import DeadlineApproaching, DeadlineMissed, DeliveryFailed, NoticeRequested, Party
from shared.messaging import make_broker, publish_event
from shared.settings import CommonSettings
from tests.shared.test_messaging import sample_registered


class RecordingHandlers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def complaint_registered(self, event: object) -> None:
        self.calls.append(("complaint_registered", event))

    async def notice_requested(self, event: object) -> None:
        self.calls.append(("notice_requested", event))

    async def deadline_alert(self, event: object) -> None:
        self.calls.append(("deadline_alert", event))

    async def delivery_failed(self, event: object) -> None:
        self.calls.append(("delivery_failed", event))


async def test_each_event_reaches_its_handler_entry_as_its_model():
    settings = CommonSettings(nats_url="nats://127.0.0.1:1")
    broker = make_broker(settings)
    handlers = RecordingHandlers()
    register_consumers(broker, handlers, settings)  # type: ignore[arg-type]
    sent = [
        sample_registered(),
        NoticeRequested(request_key="k", complaint_number="MED-2026-00001", notice_kind="extension",
                        recipient=Party(name="Jeanne Dupont", email="jeanne@example.org")),
        DeadlineApproaching(complaint_number="MED-2026-00001", deadline_kind="answer", due=date(2027, 1, 8)),
        DeadlineMissed(complaint_number="MED-2026-00001", deadline_kind="acknowledgment", due=date(2026, 12, 1)),
        DeliveryFailed(message_key="bounce-1", original_message_id="<n1@example.org>"),
    ]
    async with TestNatsBroker(broker) as test_broker:
        for event in sent:
            await publish_event(test_broker, event)
    assert [name for name, _ in handlers.calls] == ["complaint_registered", "notice_requested", "deadline_alert",
                                                    "deadline_alert", "delivery_failed"]
    assert [event for _, event in handlers.calls] == sent
    assert [type(event) for _, event in handlers.calls][2:4] == [DeadlineApproaching, DeadlineMissed]
