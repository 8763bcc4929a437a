"""Acknowledgments recorded in batches (issue 12), over real NATS, a real database and a real SMTP sink.

The notifier fetches `ComplaintRegistered` in batches and records a batch's notices in one transaction. One failing
notice must neither block nor lose the others, and every acknowledgment is still sent exactly once through the
outbox, also when the whole batch comes again.
"""

from __future__ import annotations

import asyncio

import pytest

from services.notifier.outbox import Outbox
from shared import streams
from shared.events import DeadLettered, Party
from tests.notifier.support import publish, publish_duplicate, read_stream, registered_event, wait_until


def citizens(count: int) -> list:
    return [registered_event(f"MED-2026-{index:05d}", complainant=Party(name=f"Citizen {index}",
                                                                        email=f"citizen{index}@example.org"))
            for index in range(1, count + 1)]


async def test_a_poison_event_in_a_batch_is_dead_lettered_alone_and_the_others_acknowledged_once(
        nats_server, smtp_sink, start_notifier, monkeypatch):
    events = citizens(15)
    poison = events[6]
    original = Outbox._store_if_unchanged

    async def failing_on_poison(self, connection, notification_key, *args, **kwargs):
        if poison.complaint_number in notification_key:
            raise RuntimeError("cannot store this notice")  # inside the batch's transaction
        return await original(self, connection, notification_key, *args, **kwargs)

    monkeypatch.setattr(Outbox, "_store_if_unchanged", failing_on_poison)
    await publish(nats_server.url, *events)  # all waiting: the notifier's first fetch takes them together
    service = await start_notifier(max_deliveries=2)

    await wait_until(lambda: len(smtp_sink.messages) == 14, timeout=30, what="14 acknowledgments")
    [dead] = await read_stream(nats_server.url, f"{streams.SUBJECT_DEAD_LETTER}.>", 1, timeout=30)
    letter = DeadLettered.model_validate_json(dead)
    assert letter.consumer == streams.CONSUMER_NOTIFIER_REGISTRY and poison.complaint_number in letter.payload
    assert service.handlers.outbox.group.fallbacks >= 1

    # The whole batch again, under new JetStream ids: the outbox alone stands between it and second mails.
    for event in events:
        if event is not poison:
            await publish_duplicate(nats_server.url, event)
    await asyncio.sleep(3)
    recipients = sorted(str(mail["To"]) for mail in smtp_sink.messages)
    assert recipients == sorted(f"Citizen {index} <citizen{index}@example.org>" for index in range(1, 16)
                                if index != 7)


async def test_waiting_events_are_recorded_together(nats_server, smtp_sink, start_notifier):
    await publish(nats_server.url, *citizens(24))
    service = await start_notifier()
    await wait_until(lambda: len(smtp_sink.messages) == 24, timeout=30, what="24 acknowledgments")
    group = service.handlers.outbox.group
    assert group.fallbacks == 0 and group.works_together >= 12
    assert len(await service.handlers.outbox.notices()) == 24


async def test_notices_recorded_together_clear_their_files_at_risk(database_url):
    """The deadlines a batch's notices settle (an acknowledgment: the acknowledgment deadline) leave the handlers'
    files at risk, in one statement for the batch; a risk about another deadline, or another file, stays."""
    from datetime import date, datetime, timezone

    from services.notifier.outbox import SettledRisk
    from shared.database import create_engine, upgrade_to_head
    from shared.messaging import _BATCHED_DELIVERY
    from services.notifier.wiring import MIGRATIONS

    engine = create_engine(database_url)
    now = datetime.now(timezone.utc)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        outbox = Outbox(engine)
        for number, kind in [("MED-2026-00001", "acknowledgment"), ("MED-2026-00003", "acknowledgment"),
                             ("MED-2026-00001", "answer"), ("MED-2026-00099", "acknowledgment")]:
            await outbox.record_risk({"complaint_number": number, "deadline_kind": kind, "due": date(2026, 12, 1),
                                      "state": "missed", "handler_email": "luc@ombudsdesk.localhost",
                                      "handler_name": "Luc", "language": "fr", "subject_line": "x",
                                      "updated_at": now, "cleared_at": None})

        def compose(number: str):
            return lambda _facts: {
                "complaint_number": number, "notice_kind": "acknowledgment", "channel": "email",
                "recipient": f"{number.lower()}@example.org", "recipient_name": "", "postal_address": "",
                "language": "fr", "subject": "s", "body_text": "b", "body_html": "", "message_id": f"<{number}@x>",
                "references": "", "status": "pending", "attempts": 0, "next_attempt_at": now, "give_up_at": now,
                "created_at": now, "outcome_published": False}

        token = _BATCHED_DELIVERY.set(True)
        try:
            stored = await asyncio.gather(*(
                outbox.record(f"acknowledgment:{number}", f"{number.lower()}@example.org", compose(number),
                              settles=SettledRisk(number, "acknowledgment", now))
                for number in ("MED-2026-00001", "MED-2026-00002", "MED-2026-00003")))
        finally:
            _BATCHED_DELIVERY.reset(token)
        assert stored == [True, True, True]
        assert (outbox.group.batches, outbox.group.works_together, outbox.group.fallbacks) == (1, 3, 0)
        open_risks = {(risk.complaint_number, risk.deadline_kind) for risk in await outbox.open_risks()}
        assert open_risks == {("MED-2026-00001", "answer"), ("MED-2026-00099", "acknowledgment")}
    finally:
        await engine.dispose()


async def test_a_redelivered_notice_is_found_recorded_before_its_template_is_blamed(database_url):
    """The first composition runs before the outbox is read (issue 12): a notice recorded earlier, whose template
    has broken since, comes again (a redelivery) — it is found recorded, not failed on the template."""
    from datetime import datetime, timezone

    from jinja2 import TemplateError

    from shared.database import create_engine, upgrade_to_head
    from services.notifier.wiring import MIGRATIONS

    engine = create_engine(database_url)
    now = datetime.now(timezone.utc)
    values = {"complaint_number": "MED-2026-00001", "notice_kind": "acknowledgment", "channel": "email",
              "recipient": "jeanne@example.org", "recipient_name": "", "postal_address": "", "language": "fr",
              "subject": "s", "body_text": "b", "body_html": "", "message_id": "<m@x>", "references": "",
              "status": "pending", "attempts": 0, "next_attempt_at": now, "give_up_at": now, "created_at": now,
              "outcome_published": False}

    def broken(_facts):
        raise TemplateError("the template broke since")

    try:
        await upgrade_to_head(engine, MIGRATIONS)
        outbox = Outbox(engine)
        assert await outbox.record("acknowledgment:MED-2026-00001", "jeanne@example.org", lambda _facts: values)
        assert await outbox.record("acknowledgment:MED-2026-00001", "jeanne@example.org", broken) is False
        with pytest.raises(TemplateError):  # a new notice still fails on its template, as before
            await outbox.record("acknowledgment:MED-2026-00002", "jeanne@example.org", broken)
    finally:
        await engine.dispose()
