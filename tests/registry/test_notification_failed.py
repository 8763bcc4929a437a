"""Notices the notifier gave up on (`notification.failed`): recorded in the thread and the change log; a failed
acknowledgment never counts as one (review of issue 4). Over real NATS and both databases, and as use cases."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import pytest

from shared import streams
from shared.events import ComplaintChanged, ComplaintRegistered, NotificationFailed, NotificationSent
from shared.messaging import PermanentError
from services.registry import views
from tests.registry.conftest import next_events, publish, received


def failed(number: str, key: str, kind: str = "acknowledgment") -> NotificationFailed:
    return NotificationFailed(notification_key=key, complaint_number=number, notice_kind=kind,
                              recipient="jeanne.dupont@example.org", reason="550 5.1.1 mailbox unknown")


def sent(number: str, key: str, kind: str = "acknowledgment") -> NotificationSent:
    return NotificationSent(notification_key=key, complaint_number=number, notice_kind=kind,
                            recipient="jeanne.dupont@example.org", message_id=f"<{key}@ombudsdesk.localhost>")


async def _until(condition, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Await a state the consumer reaches (no event of its own announces it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)
    return result


async def test_failed_acknowledgment_is_recorded_over_nats_and_never_counts(running_registry, js):
    await publish(js, received())
    [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-reg")
    number = ComplaintRegistered.model_validate_json(payload).complaint_number
    await publish(js, failed(number, f"ack:{number}"))
    await publish(js, failed(number, f"ack:{number}"), msg_id="redelivered")
    changes = [ComplaintChanged.model_validate_json(c)
               for c in await next_events(js, streams.SUBJECT_COMPLAINT_CHANGED, 2, "t-changed")]
    assert [c.change for c in changes] == ["registered", "notification_failed"]
    assert changes[1].actor == "registry" and changes[1].reason == "550 5.1.1 mailbox unknown"
    assert changes[1].details["notice_kind"] == "acknowledgment"

    # A late "sent" for the same notice (a redelivery out of order) does not acknowledge the complaint.
    await publish(js, sent(number, f"ack:{number}"))

    async def both_recorded():  # type: ignore[no-untyped-def]
        found = await running_registry.store.complaint_file(number)
        keys = {m.message_key for m in found[1]}
        return found if {f"failed:ack:{number}", f"out:ack:{number}"} <= keys else None

    complaint, thread, log, _parties = await _until(both_recorded)
    assert complaint.acknowledged_at is None and complaint.status == "received"
    failure = next(m for m in thread if m.message_key == f"failed:ack:{number}")
    assert (failure.direction, failure.notice_kind, failure.body) == ("out", "acknowledgment",
                                                                       "550 5.1.1 mailbox unknown")
    assert [entry.change for entry in log].count("notification_failed") == 1


async def test_failure_after_sent_clears_the_acknowledgment_it_gave(registry_on_db):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    assert await registry.on_notification_sent(sent(number, "ack-1")) is True
    acknowledged = await registry.store.complaint(number)
    assert acknowledged.acknowledged_at is not None and acknowledged.status == "acknowledged"
    assert await registry.on_notification_failed(failed(number, "ack-1")) is True
    assert await registry.on_notification_failed(failed(number, "ack-1")) is False  # replay: nothing new
    complaint, _thread, log, _parties = await registry.store.complaint_file(number)
    assert complaint.acknowledged_at is None
    # Staff must not read the file as acknowledged: the citizen was not told.
    assert complaint.status == "received"
    assert log[-1].change == "notification_failed" and "acknowledged_at_cleared" in log[-1].details
    assert log[-1].details["status_reverted"] == {"from": "acknowledged", "to": "received"}
    assert (log[-2].change, log[-2].details["from"], log[-2].details["to"]) == ("status", "acknowledged", "received")
    # Staff read the registry's own reasons in their language (`register show --lang fr`).
    context = views.TextContext(language="fr", zone=ZoneInfo("Europe/Brussels"))
    history = "\n".join(views.complaint_file_lines(complaint, _thread, log, _parties, context))
    assert "Reçue → Accusé de réception envoyé (accusé de réception envoyé)" in history
    assert "Accusé de réception envoyé → Reçue (l'accusé de réception n'a pas pu être remis)" in history
    assert "acknowledgment" not in history


async def test_a_failure_leaves_an_acknowledgment_given_by_another_notice(registry_on_db):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    await registry.on_notification_sent(sent(number, "ack-by-mail"))
    acknowledged_at = (await registry.store.complaint(number)).acknowledged_at
    await registry.on_notification_failed(failed(number, "ack-by-post"))
    await registry.on_notification_failed(failed(number, "answer-1", kind="final_answer"))
    complaint, _thread, log, _parties = await registry.store.complaint_file(number)
    assert complaint.acknowledged_at == acknowledged_at
    assert [e.details["notice_kind"] for e in log if e.change == "notification_failed"] == ["acknowledgment",
                                                                                           "final_answer"]


async def test_failure_for_an_unknown_complaint_is_permanent(registry_on_db):
    registry, _published, _clock = registry_on_db
    with pytest.raises(PermanentError):
        await registry.on_notification_failed(failed("MED-2026-09999", "ack-x"))
