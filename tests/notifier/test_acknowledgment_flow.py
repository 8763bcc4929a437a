"""Acknowledgments through real NATS, a real database (SQLite and PostgreSQL) and a real SMTP server."""

from __future__ import annotations

from shared import streams
from shared.events import NotificationSent, Party
from services.notifier.wiring import NotifierService
from tests.notifier.support import (
    SmtpSink,
    consumer_settled,
    eventually,
    publish,
    publish_duplicate,
    read_stream,
    registered_event,
    stream_messages,
    wait_until,
)


async def test_acknowledgment_sent_once_even_when_event_delivered_twice(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    event = registered_event()
    await publish(nats_server.url, event)
    await publish_duplicate(nats_server.url, event)
    assert await stream_messages(nats_server.url, streams.STREAM_REGISTRY) == 2  # JetStream kept both
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the acknowledgment")
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
    sent = NotificationSent.model_validate_json(raw)

    [mail] = smtp_sink.messages
    assert mail["To"] == "Jeanne Dupont <jeanne.dupont@example.org>"
    assert "[MED-2026-00001]" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "MED-2026-00001" in text
    assert "24 novembre 2026" in text  # date received
    assert "8 janvier 2027" in text  # answer due
    assert "8 janvier 2027" in mail.get_body(("html",)).get_content()
    assert mail["Message-ID"] == sent.message_id
    assert sent.message_id.endswith("@notices.ombudsdesk.test>")
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["In-Reply-To"] == "<citizen-1@example.org>"
    assert mail["References"] == "<citizen-0@example.org> <citizen-1@example.org>"
    assert sent.complaint_number == "MED-2026-00001" and sent.notice_kind == "acknowledgment"

    await eventually(
        lambda: consumer_settled(nats_server.url, streams.STREAM_REGISTRY, streams.CONSUMER_NOTIFIER_REGISTRY),
        what="both deliveries acknowledged",
    )
    assert len(smtp_sink.messages) == 1
    notices = await running_notifier.outbox.notices("MED-2026-00001")
    assert [notice.status for notice in notices] == ["sent"]


async def test_never_answers_automated_messages_or_missing_addresses(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    await publish(
        nats_server.url,
        registered_event("MED-2026-00002", automated=True, automated_reason="Auto-Submitted: auto-replied"),
        registered_event("MED-2026-00003", complainant=Party(name="Sans adresse")),
        registered_event("MED-2026-00004", complainant=Party(name="Robot", email="no-reply@example.org")),
        registered_event("MED-2026-00005"),
    )
    outbox = running_notifier.outbox

    async def all_settled() -> bool:
        notices = await outbox.notices()
        return len(notices) == 4 and all(notice.status not in ("pending", "sending") for notice in notices)

    await eventually(all_settled, what="four notices recorded and settled")
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the one legitimate acknowledgment")
    statuses = {notice.complaint_number: (notice.status, notice.status_reason) for notice in await outbox.notices()}
    assert statuses["MED-2026-00002"][0] == "suppressed" and "automated" in statuses["MED-2026-00002"][1]
    assert statuses["MED-2026-00003"][0] == "suppressed"
    assert statuses["MED-2026-00004"] == ("suppressed", "machine_address")
    assert statuses["MED-2026-00005"][0] == "sent"
    assert [mail["Subject"] for mail in smtp_sink.messages] == [
        "[MED-2026-00005] Accusé de réception de votre réclamation"
    ]


async def test_hostile_name_cannot_add_recipients_or_headers(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    hostile = Party(name="Jeanne\r\nBcc: victim@example.org", email="jeanne.dupont@example.org")
    await publish(nats_server.url, registered_event(complainant=hostile,
                                                    subject_line="=?utf-8?q?x=0D=0ABcc=3A_victim@example.org?="))
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the acknowledgment")
    [mail] = smtp_sink.messages
    assert smtp_sink.handler.envelopes == [("plaintes@ombudsdesk.localhost", ["jeanne.dupont@example.org"])]
    assert mail["Bcc"] is None
    assert [address.addr_spec for address in mail["To"].addresses] == ["jeanne.dupont@example.org"]
