"""What to send for each event (pure): notice kinds, their keys, recipients, languages and template variables.

The notification key is the notice's identity across redeliveries and restarts: one acknowledgment per complaint,
one notice per registry request key, one warning per deadline alert and recipient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events import ComplaintRegistered, DeadlineAlert, NoticeRequested
from shared.messaging import PermanentError
from services.notifier.rendering import pick_language


class NoticeKind(StrEnum):
    ACKNOWLEDGMENT = "acknowledgment"
    INADMISSIBLE = "inadmissible"
    REDIRECTED = "redirected"
    EXTENSION = "extension"
    FOLLOW_UP_RECEIVED = "follow_up_received"
    FINAL_ANSWER = "final_answer"
    DEADLINE_APPROACHING = "deadline_approaching"
    DEADLINE_MISSED = "deadline_missed"


STAFF_KINDS = frozenset({NoticeKind.DEADLINE_APPROACHING, NoticeKind.DEADLINE_MISSED})


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InadmissibleContext(_Context):
    reasons: list[str] = Field(min_length=1)
    advice: str = ""


class RedirectedContext(_Context):
    competent_name: str = Field(min_length=1)
    competent_contact: str = Field(min_length=1)
    transmitted: bool = False


class ExtensionContext(_Context):
    new_due: date
    reason: str = Field(min_length=1)


class FollowUpContext(_Context):
    received_on: date | None = None


class FinalAnswerContext(_Context):
    answer_text: str = Field(min_length=1)
    answered_by: str = ""


# The context each notice requested by the registry must carry (documented in docs/notifier.md).
REQUEST_CONTEXTS: dict[str, type[_Context]] = {
    NoticeKind.INADMISSIBLE: InadmissibleContext,
    NoticeKind.REDIRECTED: RedirectedContext,
    NoticeKind.EXTENSION: ExtensionContext,
    NoticeKind.FOLLOW_UP_RECEIVED: FollowUpContext,
    NoticeKind.FINAL_ANSWER: FinalAnswerContext,
}


@dataclass(frozen=True)
class NoticeDraft:
    """One notice to one recipient, before the outbox decides how (or whether) it leaves."""

    notification_key: str
    complaint_number: str
    kind: NoticeKind
    language: str
    variables: Mapping[str, Any]
    recipient_email: str | None
    recipient_name: str = ""
    postal_address: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    automated: bool = False
    automated_reason: str | None = None
    rate_limited: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def for_citizen(self) -> bool:
        return self.kind not in STAFF_KINDS


def acknowledgment_key(complaint_number: str) -> str:
    return f"{NoticeKind.ACKNOWLEDGMENT}:{complaint_number}"


def draft_acknowledgment(event: ComplaintRegistered, default_language: str) -> NoticeDraft:
    person = event.complainant
    handler = event.handler
    return NoticeDraft(
        notification_key=acknowledgment_key(event.complaint_number),
        complaint_number=event.complaint_number,
        kind=NoticeKind.ACKNOWLEDGMENT,
        language=pick_language(event.language or person.language, default_language),
        variables={
            "received_on": event.legal_start,
            "answer_due": event.answer_due,
            "handler_name": handler.name if handler and handler.name else "",
            "service_concerned": event.service_concerned or "",
            "subject_line": event.subject_line,
        },
        recipient_email=person.email,
        recipient_name=person.name,
        postal_address=person.postal_address,
        in_reply_to=event.reply_to_message_id,
        references=event.references,
        automated=event.automated,
        automated_reason=event.automated_reason,
    )


def draft_requested_notice(event: NoticeRequested, default_language: str) -> NoticeDraft:
    try:
        kind = NoticeKind(event.notice_kind)
    except ValueError:
        raise PermanentError(f"unknown notice kind {event.notice_kind!r}") from None
    if kind not in REQUEST_CONTEXTS:
        raise PermanentError(f"notice kind {kind} cannot be requested")
    try:
        context = REQUEST_CONTEXTS[kind].model_validate(event.context)
    except ValidationError as error:
        raise PermanentError(f"notice {event.request_key}: context does not fit {kind}: {error}") from None
    person = event.recipient
    return NoticeDraft(
        notification_key=f"notice:{event.request_key}",
        complaint_number=event.complaint_number,
        kind=kind,
        language=pick_language(person.language, default_language),
        variables={"subject_line": "", **context.model_dump()},
        recipient_email=person.email,
        recipient_name=person.name,
        postal_address=person.postal_address,
        in_reply_to=event.reply_to_message_id,
        references=event.references,
        rate_limited=kind is NoticeKind.FOLLOW_UP_RECEIVED,
    )


def draft_deadline_warnings(
    event: DeadlineAlert, supervisor_address: str | None, staff_language: str
) -> list[NoticeDraft]:
    """The handler (when the file has one with an address) and the supervisor each get one warning."""
    kind = NoticeKind.DEADLINE_MISSED if event.event_type == "deadline.missed" else NoticeKind.DEADLINE_APPROACHING
    handler = event.handler
    variables = {
        "deadline_kind": event.deadline_kind,
        "due": event.due,
        "lead_days": event.lead_days,
        "subject_line": event.subject_line,
        "handler_name": handler.name if handler and handler.name else "",
        "service_concerned": event.service_concerned or "",
    }
    recipients: list[tuple[str, str, str]] = []
    if handler and handler.email:
        recipients.append((handler.email, handler.name, pick_language(handler.language, staff_language)))
    if supervisor_address and supervisor_address.lower() not in {email.lower() for email, _, _ in recipients}:
        recipients.append((supervisor_address, "", pick_language(staff_language)))
    return [
        NoticeDraft(
            notification_key=f"{event.dedup_id()}:{email.lower()}",
            complaint_number=event.complaint_number,
            kind=kind,
            language=language,
            variables=variables,
            recipient_email=email,
            recipient_name=name,
        )
        for email, name, language in recipients
    ]
