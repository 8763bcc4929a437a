"""A validated scanned letter into its durable event, through the one way in, `IntakePipeline.accept` (drop folder
and scan-to-email both come here).

A letter differs from a mail only in data: staff have already read it, so it arrives `Prepared` (its key, its event,
its PDF) and its "raw original" is the metadata record as staff typed it (`<key>.json`, the audit trail). The pipeline
then does for it what it does for a mail: duplicate checks, raw original, PDF in the attachments bucket and
`MessageReceived(channel=LETTER)` with `Nats-Msg-Id` = the letter's key, written together, then the seen-set. The key
is the scan's sha256, so the same PDF dropped twice, or redone after a crash before its files were moved, gives one
event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, time, timezone

import structlog

from services.intake.channels.acceptor import MessageAcceptor
from services.intake.letters.metadata import LetterMetadata, letter_message_key
from services.intake.message.mime import Attachment
from services.intake.arrival import AcceptOutcome, Arrival, Prepared
from services.intake.stores import attachment_ref, raw_object_name
from shared.events import AttachmentRef, Channel, MessageReceived, Party

log = structlog.get_logger(__name__)

# A letter's time of day is unknown; noon UTC falls on the same calendar day in every European time zone, so a
# consumer that only looks at `received_at` still finds the legal receipt date (`letter_received_on` is the truth).
LETTER_TIME_OF_DAY = time(12, 0, tzinfo=timezone.utc)


def letter_event(
    key: str, metadata: LetterMetadata, raw_object: str, source: str, pdf_ref: AttachmentRef,
    needs_confirmation: str | None = None,
) -> MessageReceived:
    return MessageReceived(
        message_key=key,
        channel=Channel.LETTER,
        received_at=datetime.combine(metadata.received_on, LETTER_TIME_OF_DAY),
        raw_object=raw_object,
        sender=Party(name=metadata.complainant_name, email=metadata.email, postal_address=metadata.postal_address,
                     language=metadata.language),
        subject_line=metadata.subject,
        text=metadata.notes,
        # Declared by the staff member who read the letter: certain.
        language=metadata.language,
        language_confidence=1.0,
        attachments=(pdf_ref,),
        letter_received_on=metadata.received_on,
        letter_postmarked_on=metadata.postmarked_on,
        letter_pages=metadata.pages,
        letter_archive_reference=metadata.archive_reference,
        letter_scanned_by=metadata.staff_member,
        facts_date=metadata.facts_date,
        last_step_date=metadata.last_step_date,
        first_line_contacted=metadata.first_line_contacted,
        source=source,
        needs_confirmation=needs_confirmation,
    )


async def accept_letter(
    intake: MessageAcceptor,
    pdf: bytes,
    filename: str,
    metadata: LetterMetadata,
    *,
    source: str,
    submitted_fields: Mapping[str, object] | None = None,
    needs_confirmation: str | None = None,
) -> AcceptOutcome:
    """Make the letter durable; returns only once its event is in JetStream, raises on infrastructure failure.
    `needs_confirmation`: a reason code for which the registry holds the letter for staff to confirm."""
    key = letter_message_key(pdf)
    pdf_file = Attachment(filename=filename, content_type="application/pdf", data=pdf)
    raw_object = raw_object_name(key, ".json")
    event = letter_event(key, metadata, raw_object, source, attachment_ref(pdf_file), needs_confirmation)
    record = {"metadata": asdict(metadata), "submitted": dict(submitted_fields or {}), "file": filename,
              "source": source}
    arrival = Arrival.of(channel=Channel.LETTER, received_at=event.received_at, envelope_sender=None,
                         envelope_recipients=(), source=source,
                         prepared=Prepared(key, event, (pdf_file,), raw_suffix=".json"))
    outcome = await intake.accept(json.dumps(record, default=str, ensure_ascii=False, indent=2).encode(),
                                  arrival=arrival)
    log.info("intake.letter_accepted", status=outcome.status.value, pages=metadata.pages, message_key=key)
    return outcome
