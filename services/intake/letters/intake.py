"""A validated scanned letter into its durable event, through the intake pipeline's stores (drop folder and
scan-to-email both come here).

Same order of idempotent writes as an email: metadata record (the "raw original" of a letter) → PDF in the
attachments bucket → `MessageReceived(channel=LETTER)` with `Nats-Msg-Id` = the letter's key → seen-set. The key is
the scan's sha256, so the same PDF dropped twice, or redone after a crash before its files were moved, gives one event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, time, timezone

import structlog

from services.intake.letters.metadata import LetterMetadata, letter_message_key
from services.intake.message.mime import Attachment
from services.intake.pipeline import AcceptOutcome, AcceptStatus, IntakePipeline
from shared import streams
from shared.events import AttachmentRef, Channel, MessageReceived, Party
from shared.messaging import publish_event

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
        source=source,
        needs_confirmation=needs_confirmation,
    )


async def accept_letter(
    pipeline: IntakePipeline,
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
    with structlog.contextvars.bound_contextvars(message_key=key, source=source):
        if await pipeline.seen.contains(key):
            outcome = AcceptOutcome(AcceptStatus.DUPLICATE, key)
        else:
            record = {"metadata": asdict(metadata), "submitted": dict(submitted_fields or {}), "file": filename,
                      "source": source}
            # The metadata as staff typed it is the letter's "raw original", next to the emails' (audit trail).
            raw_object = f"{key}.json"
            await pipeline.objects.put(streams.BUCKET_RAW_MESSAGES, raw_object,
                                       json.dumps(record, default=str, ensure_ascii=False, indent=2).encode())
            pdf_ref = await pipeline.objects.put_attachment(
                Attachment(filename=filename, content_type="application/pdf", data=pdf)
            )
            event = letter_event(key, metadata, raw_object, source, pdf_ref, needs_confirmation)
            fresh = await publish_event(pipeline.broker, event)
            await pipeline.seen.mark(key, event.dedup_id())
            outcome = AcceptOutcome(AcceptStatus.PROCESSED if fresh else AcceptStatus.DUPLICATE, key, event=event)
        pipeline.counters[outcome.status.value] += 1
        log.info("intake.letter_accepted", status=outcome.status.value, pages=metadata.pages)
        return outcome
