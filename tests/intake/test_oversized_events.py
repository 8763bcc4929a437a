"""A message whose headers would make an event bigger than one NATS message (1 MB) never blocks: its event is
bounded (subject, references, recipients, names cut, the raw keeps all) or, failing that, it is quarantined with
the reason. Before the fix such a message got 451 for ever and stayed in the sender's queue (review of issue 3)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from shared import streams
from shared.events import MessageReceived, Party
from services.intake.pipeline import DEFAULT_MAX_PAYLOAD, AcceptStatus, EventTooLarge, IntakePipeline, fit_to_payload
from services.intake.message.understanding import ParseContext, understand
from tests.intake.support import COMPLAINTS, asend, citizen_mail, read_object, running_intake, settled, stream_events
from tests.intake.test_quarantine import connected

LIMIT = int(DEFAULT_MAX_PAYLOAD * 0.9)


def head(extra: bytes, body: bytes = b"Bonjour, je conteste la facture.\r\n") -> bytes:
    return (b"From: Jeanne <jeanne@example.org>\r\nTo: " + COMPLAINTS.encode() + b"\r\n"
            b"Date: Tue, 24 Nov 2026 09:15:00 +0100\r\nMessage-ID: <big.1@example.org>\r\n" + extra + b"\r\n" + body)


def two_mb_subject() -> bytes:
    return head(b"Subject: " + b"plainte " * (2 * 1024 * 1024 // 8) + b"\r\n")


def sixty_thousand_references() -> bytes:
    ids = b"\r\n ".join(b"<ref.%d.abcdefgh@mail.example.org>" % index for index in range(60_000))
    return head(b"Subject: suivi\r\nReferences: " + ids + b"\r\nIn-Reply-To: <ref.59999.abcdefgh@mail.example.org>\r\n")


def five_thousand_recipients() -> bytes:
    addresses = b",\r\n ".join(b"Destinataire Numero %d <person.%d@example.org>" % (index, index)
                               for index in range(5_000))
    return head(b"Subject: copie\r\nCc: " + addresses + b"\r\n")


@pytest.mark.parametrize("make", [two_mb_subject, sixty_thousand_references, five_thousand_recipients])
async def test_oversized_headers_give_an_event_within_the_limit_never_451(nats_server, tmp_path, make):
    raw = make()
    async with running_intake(nats_server.url, tmp_path) as intake:
        answer = await asend(intake.smtp_port, raw, sender="jeanne@example.org")  # raises on 451
        await settled(intake)
        assert await intake.pipeline.quarantine.count() == 0
    assert answer == {}
    [data] = await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)
    assert len(data) <= LIMIT
    event = MessageReceived.model_validate_json(data)
    assert any("cut to" in defect for defect in event.defects)
    assert len(event.subject_line) <= 2_000 and len(event.references) <= 100 and len(event.recipients) <= 100
    # The raw original keeps every byte of what was cut, behind the Received line intake prepends (RFC 5321 4.4).
    stored = await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, event.raw_object)
    trace, _, rest = stored.partition(b"\r\n\t")
    assert trace.startswith(b"Received: from ") and b"([127.0.0.1])" in trace
    assert stored.endswith(raw) and len(stored) - len(raw) < 300


def test_understand_keeps_the_thread_root_and_the_latest_references():
    understanding = understand(sixty_thousand_references(), ParseContext())
    assert len(understanding.references) == 100
    assert understanding.references[0] == "ref.0.abcdefgh@mail.example.org"
    assert understanding.references[-1] == "ref.59999.abcdefgh@mail.example.org"
    assert understanding.in_reply_to == "ref.59999.abcdefgh@mail.example.org"


async def test_an_event_that_cannot_fit_is_quarantined_with_the_reason(nats_server, tmp_path):
    def parser_without_bounds(raw, context):  # noqa: ANN001, ANN202 - stands in for a field nobody bounded
        return dataclasses.replace(understand(raw, context), subject="x" * (2 * 1024 * 1024))

    broker, settings = await connected(nats_server.url, tmp_path)
    async with broker:
        pipeline = IntakePipeline(broker, settings, understand_message=parser_without_bounds)
        raw = b"X-Auto-Response-Suppress: All\r\n" + citizen_mail().as_bytes()
        outcome = await pipeline.accept(raw, received_at=datetime.now(timezone.utc),
                                        envelope_sender=None, envelope_recipients=(), source="smtp")
        [record] = await pipeline.quarantine.records()
        pipeline.close()
    assert outcome.status is AcceptStatus.QUARANTINED
    assert "EventTooLarge" in record.reason and "one NATS message" in record.reason
    # What understanding decided before the event was refused is kept for `intake quarantine show`.
    assert [(hit.rule, hit.outcome) for hit in record.rules] == [("x-auto-response-suppress",
                                                                  "acknowledgment-suppressed")]
    assert await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED) == []


def test_fit_to_payload_never_returns_an_event_over_the_limit():
    now = datetime.now(timezone.utc)
    sender = Party(email="a@example.org")
    # Short text, huge other fields: no early return any more.
    huge_subject = MessageReceived(message_key="k", received_at=now, sender=sender, subject_line="s" * 2_000_000)
    with pytest.raises(EventTooLarge):
        fit_to_payload(huge_subject, 900_000)
    # Empty text and too big: a clear error, not an unassigned variable.
    with pytest.raises(EventTooLarge):
        fit_to_payload(huge_subject.model_copy(update={"text": ""}), 900_000)
    # Long text with big other fields: shortened until it fits, whatever the mix of characters.
    mixed = MessageReceived(message_key="k", received_at=now, sender=sender, text="\u0001é" * 400_000,
                            references=tuple(f"id{index}@example.org" for index in range(20_000)))
    fitted = fit_to_payload(mixed, 900_000)
    assert len(fitted.model_dump_json().encode()) <= 900_000 and mixed.text.startswith(fitted.text)
