"""What to send for each event (pure): notice kinds, their keys, recipients, languages and template variables.

The notification key is the notice's identity across redeliveries and restarts: one acknowledgment per complaint,
one notice per registry request key, one warning per deadline alert and recipient.

A draft also says how its kind is rate-limited per recipient (`LimitWindow`: follow-up confirmations per calendar
day, acknowledgments per 24 hours, so intake cannot be used to mail-bomb a third party), why it must not go out at
all though a person wrote (`acknowledgment_suppressed`, decided at intake), and which of its variables come from
configuration rather than from a sender (`trusted_variables`: only their web addresses may become links).

A staff message (`staff_message`) is free text staff write to the citizen: it is bounded (characters, lines),
its line breaks are normalised and its control characters dropped; the frame around it is the template's, and
the HTML part escapes it like any other text (`rendering`). The language staff chose travels in the context.

Issue 15: the acknowledgment's template follows the kind of what was received (`ComplaintRegistered.kind`): a
compliment or a suggestion is thanked without the complaint procedure's deadlines and legal notices, a question gets
an answer-oriented receipt; the notice's kind stays `acknowledgment` (limits, the registry's bookkeeping). The DPO's
notice of a data-protection complaint (`dpo_notification`) is a staff notice in the staff language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.events import ComplaintRegistered, DeadlineAlert, NoticeRequested, SenderVerdict, clean_staff_text
from shared.messaging import PermanentError
from services.notifier.quota import Quota
from services.notifier.rendering import pick_language, template_name


class NoticeKind(StrEnum):
    ACKNOWLEDGMENT = "acknowledgment"
    INADMISSIBLE = "inadmissible"
    REDIRECTED = "redirected"
    EXTENSION = "extension"
    FOLLOW_UP_RECEIVED = "follow_up_received"
    FINAL_ANSWER = "final_answer"
    DEADLINE_APPROACHING = "deadline_approaching"
    DEADLINE_MISSED = "deadline_missed"
    DEADLINE_DIGEST = "deadline_digest"
    STAFF_MESSAGE = "staff_message"
    # To the DPO when a data-protection complaint is registered (issue 15): its number, nothing of its content.
    DPO_NOTIFICATION = "dpo_notification"
    # To the administration concerned (issue 15): a request for its position, and the reminder before its deadline.
    POSITION_REQUEST = "position_request"
    POSITION_REMINDER = "position_reminder"
    # To the citizen (issue 15): what is missing, the reminder, and the closing when no answer came by the date.
    INFORMATION_REQUEST = "information_request"
    INFORMATION_REMINDER = "information_reminder"
    CLOSED_NO_ANSWER = "closed_no_answer"
    # To the citizen (issue 17): their personal link to the file, sent again; the satisfaction survey's invitation.
    CITIZEN_LINK = "citizen_link"
    SURVEY_INVITATION = "survey_invitation"


STAFF_KINDS = frozenset({NoticeKind.DEADLINE_APPROACHING, NoticeKind.DEADLINE_MISSED, NoticeKind.DEADLINE_DIGEST})
# Staff notices the registry requests (issue 15), in the staff language when the context names none.
STAFF_KINDS = STAFF_KINDS | {NoticeKind.DPO_NOTIFICATION}
# A notice of this kind settles the deadline of that kind: the file leaves the handler's digest.
SETTLES_DEADLINE = {NoticeKind.ACKNOWLEDGMENT: "acknowledgment", NoticeKind.FINAL_ANSWER: "answer",
                    # the office's last word on a file closed for lack of the citizen's answer (issue 15)
                    NoticeKind.CLOSED_NO_ANSWER: "answer"}


class LimitWindow(StrEnum):
    """Over which period the notices of one kind to one address are counted against their limit."""

    LOCAL_DAY = "local_day"  # the calendar day in the service's time zone (follow-up confirmations)
    LAST_24_HOURS = "last_24_hours"  # any 24 hours, counted back from now (acknowledgments)


class _Context(BaseModel):
    """The context of a requested notice. Names follow the registry's `NoticeRequested.context` (first alias) and
    this service's own template vocabulary (field name); `None` counts as absent."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # The language staff chose for this notice (the registry sends the complainant's when staff chose none).
    language: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data


class InadmissibleContext(_Context):
    reasons: list[str] = []
    advice: str = Field(default="", validation_alias=AliasChoices("explanation", "advice"))

    @model_validator(mode="after")
    def _some_reason(self) -> "InadmissibleContext":
        if not [reason for reason in self.reasons if reason.strip()] and not self.advice.strip():
            raise ValueError("an inadmissibility notice needs its reasons")
        return self


class RedirectedContext(_Context):
    competent_name: str = Field(min_length=1)
    competent_contact: str = ""
    explanation: str = ""
    transmitted: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_directory_entry(cls, data: Any) -> Any:
        """The registry sends the directory entry: {"id", "name", "address", "phone", "email", "website"}."""
        if not isinstance(data, dict) or not isinstance(data.get("ombudsman"), dict):
            return data
        entry = data["ombudsman"]
        contact = "\n".join(str(entry[key]) for key in ("address", "phone", "email", "website") if entry.get(key))
        return {"competent_name": entry.get("name") or entry.get("id") or "", "competent_contact": contact, **data}


class ExtensionContext(_Context):
    new_due: date = Field(validation_alias=AliasChoices("answer_due", "new_due"))
    reason: str = Field(default="", validation_alias=AliasChoices("explanation", "reason"))


class FollowUpContext(_Context):
    received_on: date | None = None


class FinalAnswerContext(_Context):
    answer_text: str = Field(validation_alias=AliasChoices("answer", "answer_text"))
    answered_by: str = ""

    @model_validator(mode="after")
    def _not_blank(self) -> "FinalAnswerContext":
        if not self.answer_text.strip():
            raise ValueError("a final answer needs its text")
        return self


class StaffMessageContext(_Context):
    message_text: str = Field(validation_alias=AliasChoices("text", "message_text"))

    @field_validator("message_text")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return clean_staff_text(value)


class PositionRequestContext(_Context):
    """A request for the administration's position, or its reminder (issue 15): staff's questions (bounded and
    cleaned like a staff message), the date of the request and the administration's answer deadline."""

    administration_name: str = Field(default="", max_length=300)
    contact_person: str = Field(default="", max_length=300)
    questions: str
    requested_on: date
    due: date

    @field_validator("questions")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return clean_staff_text(value)


# What a request for information may ask (issue 15): the registry's `information_requests.MissingItem` codes; the
# templates say each in the citizen's words (`<lang>/_information.j2`).
MissingItem = Literal["first_line_contact", "facts_date", "last_step_date", "identity", "postal_address"]


class InformationRequestContext(_Context):
    """A request for information to the citizen, or its reminder (issue 15): what is missing, staff's text (bounded
    and cleaned like a staff message; may be empty when the list says it all), the reply date."""

    missing: list[MissingItem] = []
    message_text: str = Field(default="", validation_alias=AliasChoices("text", "message_text"))
    due: date = Field(validation_alias=AliasChoices("reply_by", "due"))
    requested_on: date | None = None

    @field_validator("message_text")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return clean_staff_text(value) if value.strip() else ""

    @model_validator(mode="after")
    def _something_asked(self) -> "InformationRequestContext":
        if not self.missing and not self.message_text:
            raise ValueError("a request for information says what is missing")
        return self


class ClosedNoAnswerContext(_Context):
    """The closing for lack of answer (issue 15): what had been asked, the reply date that passed, and until when a
    reply still reopens the file (the registry's reopening window)."""

    missing: list[MissingItem] = []
    due: date = Field(validation_alias=AliasChoices("reply_by", "due"))
    requested_on: date | None = None
    reopen_until: date | None = None


class DpoNotificationContext(_Context):
    """The DPO's notice of a data-protection complaint (issue 15): the file's dates, nothing a citizen wrote."""

    received_on: date = Field(validation_alias=AliasChoices("legal_start", "received_on"))
    answer_due: date | None = None


class SealedLinkContext(_Context):
    """A personal or survey link (issue 17), sealed by the registry (`shared.sealing`): opened by the handler
    (`citizen_link.opened`) into `link_url` before rendering; the sealed form never reaches a template."""

    sealed_link: str = Field(min_length=1, max_length=2000)


# The context each notice requested by the registry must carry (documented in docs/notifier.md).
REQUEST_CONTEXTS: dict[str, type[_Context]] = {
    NoticeKind.INADMISSIBLE: InadmissibleContext,
    NoticeKind.REDIRECTED: RedirectedContext,
    NoticeKind.EXTENSION: ExtensionContext,
    NoticeKind.FOLLOW_UP_RECEIVED: FollowUpContext,
    NoticeKind.FINAL_ANSWER: FinalAnswerContext,
    NoticeKind.STAFF_MESSAGE: StaffMessageContext,
    NoticeKind.DPO_NOTIFICATION: DpoNotificationContext,
    NoticeKind.POSITION_REQUEST: PositionRequestContext,
    NoticeKind.POSITION_REMINDER: PositionRequestContext,
    NoticeKind.INFORMATION_REQUEST: InformationRequestContext,
    NoticeKind.INFORMATION_REMINDER: InformationRequestContext,
    NoticeKind.CLOSED_NO_ANSWER: ClosedNoAnswerContext,
    NoticeKind.CITIZEN_LINK: SealedLinkContext,
    NoticeKind.SURVEY_INVITATION: SealedLinkContext,
}


class UnknownNoticeKind(PermanentError):
    """The registry asked for a notice kind that does not exist or cannot be requested."""


class ContextMismatch(PermanentError):
    """The context of a requested notice does not fit its kind; `problems` names each field and what is wrong."""

    def __init__(self, message: str, problems: str) -> None:
        super().__init__(message)
        self.problems = problems


def _problems(error: ValidationError) -> str:
    """Each field and what is wrong with it, without the value given (a citizen's or staff's text)."""
    return "; ".join(f"{'.'.join(str(part) for part in problem['loc']) or '(context)'}: {problem['msg']}"
                     for problem in error.errors(include_input=False, include_url=False)[:10])


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
    limit_window: LimitWindow | None = None
    # The count it takes part in: an acknowledgment of a verified sender is not counted with unverified ones.
    quota: Quota = Quota.UNVERIFIED
    acknowledgment_suppressed: str | None = None
    trusted_variables: tuple[str, ...] = ()
    # The template when it is a variant of the kind's (`rendering.template_name`: the acknowledgment of a
    # compliment); empty: the kind's own. The kind stays what limits count and the registry is told.
    template: str = ""

    @property
    def for_citizen(self) -> bool:
        return self.kind not in STAFF_KINDS

    @property
    def template_name(self) -> str:
        return self.template or self.kind.value


def acknowledgment_key(complaint_number: str) -> str:
    return f"{NoticeKind.ACKNOWLEDGMENT}:{complaint_number}"


def draft_acknowledgment(event: ComplaintRegistered, default_language: str) -> NoticeDraft:
    person = event.complainant
    handler = event.handler
    return NoticeDraft(
        notification_key=acknowledgment_key(event.complaint_number),
        complaint_number=event.complaint_number,
        kind=NoticeKind.ACKNOWLEDGMENT,
        # A compliment or a suggestion is thanked, a question gets an answer-oriented receipt (issue 15).
        template=template_name(NoticeKind.ACKNOWLEDGMENT, event.kind),
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
        limit_window=LimitWindow.LAST_24_HOURS,
        # Forged unverified mail "From: victim@..." must not use up the acknowledgments of the verified victim.
        quota=Quota.VERIFIED if event.sender_verdict is SenderVerdict.VERIFIED else Quota.UNVERIFIED,
        acknowledgment_suppressed=(event.acknowledgment_suppressed or "").strip()[:200] or None,
    )


def draft_requested_notice(event: NoticeRequested, default_language: str,
                           staff_language: str | None = None) -> NoticeDraft:
    try:
        kind = NoticeKind(event.notice_kind)
    except ValueError:
        raise UnknownNoticeKind(f"unknown notice kind {event.notice_kind[:80]!r}") from None
    if kind not in REQUEST_CONTEXTS:
        raise UnknownNoticeKind(f"notice kind {kind} cannot be requested")
    try:
        context = REQUEST_CONTEXTS[kind].model_validate(event.context)
    except ValidationError as error:
        raise ContextMismatch(f"notice {event.request_key}: context does not fit {kind}: {error}",
                              _problems(error)) from None
    person = event.recipient
    # A staff notice falls back to the staff language, a citizen's to the default one.
    fallback = staff_language if staff_language and kind in STAFF_KINDS else default_language
    return NoticeDraft(
        notification_key=f"notice:{event.request_key}",
        complaint_number=event.complaint_number,
        kind=kind,
        # The language staff chose, else the recipient's; an unknown one falls back as the recipient's would.
        language=pick_language(context.language, pick_language(person.language, fallback)),
        variables={"subject_line": "", **context.model_dump(exclude={"language"})},
        recipient_email=person.email,
        recipient_name=person.name,
        postal_address=person.postal_address,
        in_reply_to=event.reply_to_message_id,
        references=event.references,
        limit_window=LimitWindow.LOCAL_DAY if kind is NoticeKind.FOLLOW_UP_RECEIVED else None,
        # The competent ombudsman's contact comes from the registry's directory (configuration), never a sender.
        trusted_variables=("competent_contact",) if kind is NoticeKind.REDIRECTED else (),
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
