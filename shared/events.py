"""The event contract between intake, registry and notifier.

Every event is a frozen pydantic model carrying an event id, the time it occurred and a schema version. A consumer
ignores fields it does not know (a newer producer may add some), but a field that changes meaning gets a new
schema version. These models are the only thing the services share about each other.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared import streams


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Channel(StrEnum):
    EMAIL = "email"
    LETTER = "letter"
    WEB_FORM = "web_form"
    IN_PERSON = "in_person"
    PHONE = "phone"


class Contract(BaseModel):
    """Base of every value object in an event: immutable, tolerant of unknown fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Party(Contract):
    """Somebody who writes to us or whom we write to."""

    name: str = ""
    email: str | None = None
    postal_address: str | None = None
    language: str | None = None


class SenderVerdict(StrEnum):
    """Who wrote this message, as far as evidence goes (docs/security.md).

    `verified`: a trusted authentication server (RFC 8601 `Authentication-Results` from an authserv-id named in
    `OMBUDSDESK_AUTHSERV_IDS`, or intake's own check) recorded DMARC pass, or a DKIM pass aligned with the From
    domain. `failed`: it recorded DMARC fail. `unverified`: no trusted evidence either way (the sender's word only).
    """

    VERIFIED = "verified"
    FAILED = "failed"
    UNVERIFIED = "unverified"


class Provenance(Contract):
    """What the channel itself saw of where a message came from: evidence the sender did not write."""

    peer_ip: str | None = Field(default=None, description="IP address of the SMTP client that delivered it")
    peer_helo: str | None = Field(default=None, description="Name the SMTP client gave in HELO/EHLO (its claim)")
    authenticated_as: str | None = Field(
        default=None, description="SMTP AUTH (RFC 4954) login of the submission session, over TLS")
    staff_mailbox: bool = Field(default=False, description="Fetched from an IMAP mailbox configured as staff's")
    delivered_by_relay: bool | None = Field(
        default=None, description="SMTP: the client is a trusted relay (the organisation's MX), whose "
        "Authentication-Results count; False: a direct client, whose own are ignored; None: not an SMTP delivery")
    client_over_rate_limit: bool = Field(
        default=False, description="The SMTP client sent more than its hourly share: no automatic acknowledgment")


class RuleHit(Contract):
    """One named rule of intake's understanding that hit (issue 11): which, what it decided, and why."""

    rule: str = Field(description="The rule's name, e.g. vacation-subject, multipart-report, staff-forward")
    outcome: str = Field(description="What it decided: automated, bounce, report, forward, acknowledgment-suppressed...")
    why: str = Field(default="", description="Technical detail in English (a header's value, the pattern's words)")


class AttachmentRef(Contract):
    """An attachment kept in the JetStream object store (never on a disk other services cannot reach)."""

    filename: str
    content_type: str
    size: int
    sha256: str
    object_name: str


class Event(Contract):
    """Common envelope of every event."""

    subject: ClassVar[str]
    schema_version: int = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=utc_now)

    def dedup_id(self) -> str:
        """The `Nats-Msg-Id` header: JetStream drops a second publish with the same id within the window."""
        return str(self.event_id)

    def publish_subject(self) -> str:
        """The subject this event is published on."""
        return self.subject


class MessageReceived(Event):
    """Intake took a message in and stored its raw original durably."""

    subject: ClassVar[str] = streams.SUBJECT_MESSAGE_RECEIVED
    event_type: Literal["message.received"] = "message.received"

    message_key: str = Field(description="Stable identity of the message, the same across SMTP retries and IMAP")
    channel: Channel = Channel.EMAIL
    received_at: datetime
    raw_object: str | None = Field(default=None, description="Object-store name of the raw original")
    sender: Party
    forwarded_by: Party | None = None
    recipients: tuple[str, ...] = ()
    subject_line: str = ""
    text: str = ""
    language: str | None = None
    language_confidence: float = 0.0
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    candidate_case_numbers: tuple[str, ...] = ()
    attachments: tuple[AttachmentRef, ...] = ()
    automated: bool = Field(default=False, description="An auto-reply, bounce, list or our own mail: never answer")
    automated_reason: str | None = None
    defects: tuple[str, ...] = ()
    letter_received_on: date | None = Field(default=None, description="Legal receipt date of a scanned letter")
    sent_at: datetime | None = Field(default=None, description="Date header of the complainant's mail (original's)")
    our_references: tuple[str, ...] = Field(default=(), description="In-Reply-To/References ids in our domain")
    source: str = Field(default="", description="Where intake took it from: smtp, imap:<mailbox>, letters:<file>")
    letter_postmarked_on: date | None = Field(default=None, description="Postmark date of a scanned letter")
    letter_pages: int | None = Field(default=None, description="Number of pages of a scanned letter")
    letter_archive_reference: str | None = Field(default=None, description="Where the paper original is filed")
    letter_scanned_by: str | None = Field(default=None, description="Staff member who took in and scanned the letter")
    # Trust at the door (issue 10, docs/security.md): what is known of the author, and on which evidence.
    sender_verdict: SenderVerdict = SenderVerdict.UNVERIFIED
    sender_evidence: str = Field(default="", description="Why the verdict: the trusted result it rests on, or none")
    identity_notes: tuple[str, ...] = Field(
        default=(), description="Identity anomalies recorded: several From addresses, a Sender that differs, ...")
    forward_verified: bool = Field(
        default=False, description="forwarded_by is proven staff (verified staff domain, staff login or mailbox)")
    provenance: Provenance = Provenance()
    needs_confirmation: str | None = Field(
        default=None, description="Reason code: the registry holds it for staff to confirm, never registers it alone "
        "(staff_forward_not_verified, letter_date_too_old, ...)")
    acknowledgment_suppressed: str | None = Field(
        default=None, description="Why no automatic acknowledgment goes out, though a person wrote it "
        "(X-Auto-Response-Suppress, a rate limit)")
    disposition_of: str | None = Field(
        default=None, description="Original-Message-ID a read receipt (RFC 8098 MDN) is about")
    disposition: str | None = Field(
        default=None, description="Its disposition-type (RFC 8098 3.2.6: displayed, deleted, dispatched, processed)")
    # Facts screening weighs for admissibility, when the channel states them (a scanned letter's metadata):
    # None is unknown, and the registry's screening then looks for them in the text.
    facts_date: date | None = Field(default=None, description="Date of the facts complained about")
    last_step_date: date | None = Field(default=None, description="Date of the citizen's last step since the facts")
    first_line_contacted: bool | None = Field(
        default=None, description="Whether the service concerned was contacted first (first-line complaint)")
    rules: tuple[RuleHit, ...] = Field(default=(), description="The named rules of intake that hit, in order")
    new_text: str | None = Field(
        default=None, description="The text the sender wrote this time, without quoted history or signature "
        "(None: not separated; `text` always holds the whole)")
    citizen_link_proof: str | None = Field(
        default=None, max_length=200, description="Sent through the citizen's personal link (issue 17): "
        "`<selector>.<HMAC>` (`citizen_message_proof`), checked by the registry; set only by intake's public pages")

    def dedup_id(self) -> str:
        return f"received:{self.message_key}"


class DeliveryFailed(Event):
    """A delivery status notification told us one of our mails did not arrive."""

    subject: ClassVar[str] = streams.SUBJECT_DELIVERY_FAILED
    event_type: Literal["delivery.failed"] = "delivery.failed"

    message_key: str
    original_message_id: str | None = None
    failed_recipient: str | None = None
    status: str | None = None
    diagnostic: str | None = None

    def dedup_id(self) -> str:
        return f"delivery-failed:{self.message_key}"


class ComplaintRegistered(Event):
    """The registry gave a message a complaint number."""

    subject: ClassVar[str] = streams.SUBJECT_COMPLAINT_REGISTERED
    event_type: Literal["complaint.registered"] = "complaint.registered"

    complaint_number: str
    message_key: str
    channel: Channel
    received_at: datetime
    legal_start: date
    complainant: Party
    subject_line: str = ""
    kind: str = "complaint"
    acknowledgment_due: date
    answer_due: date
    reply_to_message_id: str | None = None
    references: tuple[str, ...] = ()
    automated: bool = False
    automated_reason: str | None = None
    language: str | None = None
    handler: Party | None = None
    service_concerned: str | None = None
    sender_verdict: SenderVerdict = SenderVerdict.UNVERIFIED
    acknowledgment_suppressed: str | None = Field(
        default=None, description="Why the notifier must not send the acknowledgment (see MessageReceived)")
    citizen_link: str | None = Field(
        default=None, description="The citizen's personal link (issue 17), sealed for the notifier (Fernet)")

    def dedup_id(self) -> str:
        return f"registered:{self.complaint_number}"


class ComplaintChanged(Event):
    """Any change to a complaint's file, for the audit trail: who, when, why, what."""

    subject: ClassVar[str] = streams.SUBJECT_COMPLAINT_CHANGED
    event_type: Literal["complaint.changed"] = "complaint.changed"

    complaint_number: str
    change: str = Field(description="status, assignment, screening, outcome, extension, pause, resume, ...")
    actor: str
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    change_id: str = Field(description="Unique id of the change in the register (dedupes republishing)")

    def dedup_id(self) -> str:
        return f"changed:{self.complaint_number}:{self.change_id}"


class NoticeRequested(Event):
    """The registry asks for a notice to a citizen other than the acknowledgment (issue 5: other notices)."""

    subject: ClassVar[str] = streams.SUBJECT_NOTICE_REQUESTED
    event_type: Literal["notice.requested"] = "notice.requested"

    request_key: str = Field(description="Unique per notice: the notifier sends each key at most once")
    complaint_number: str
    notice_kind: str = Field(description="inadmissible, redirected, extension, follow_up_received, final_answer")
    recipient: Party
    context: dict[str, Any] = Field(default_factory=dict)
    reply_to_message_id: str | None = None
    references: tuple[str, ...] = ()

    def dedup_id(self) -> str:
        return f"notice:{self.request_key}"


class DeadlineAlert(Event):
    """Base of the deadline watcher's events; each is published once per complaint, deadline and lead time."""

    complaint_number: str
    deadline_kind: str = Field(description="acknowledgment or answer")
    due: date
    handler: Party | None = None
    service_concerned: str | None = None
    subject_line: str = ""
    lead_days: int = 0

    def dedup_id(self) -> str:
        return f"{self.event_type}:{self.complaint_number}:{self.deadline_kind}:{self.due}:{self.lead_days}"


class DeadlineApproaching(DeadlineAlert):
    subject: ClassVar[str] = streams.SUBJECT_DEADLINE_APPROACHING
    event_type: Literal["deadline.approaching"] = "deadline.approaching"


class DeadlineMissed(DeadlineAlert):
    subject: ClassVar[str] = streams.SUBJECT_DEADLINE_MISSED
    event_type: Literal["deadline.missed"] = "deadline.missed"


class MessageAppended(Event):
    """The registry attached a follow-up message to an existing complaint."""

    subject: ClassVar[str] = streams.SUBJECT_MESSAGE_APPENDED
    event_type: Literal["message.appended"] = "message.appended"

    complaint_number: str
    message_key: str
    sender: Party
    received_at: datetime
    subject_line: str = ""
    reply_to_message_id: str | None = None
    automated: bool = False

    def dedup_id(self) -> str:
        return f"appended:{self.complaint_number}:{self.message_key}"


class NotificationSent(Event):
    """The notifier handed a notice to the mail relay."""

    subject: ClassVar[str] = streams.SUBJECT_NOTIFICATION_SENT
    event_type: Literal["notification.sent"] = "notification.sent"

    notification_key: str
    complaint_number: str
    notice_kind: str
    recipient: str
    message_id: str
    subject_line: str = Field(default="", description="Subject of the mail sent, for the case's thread")

    def dedup_id(self) -> str:
        return f"sent:{self.notification_key}"


class NotificationFailed(Event):
    """The notifier gave up on a notice (permanent refusal or retries exhausted)."""

    subject: ClassVar[str] = streams.SUBJECT_NOTIFICATION_FAILED
    event_type: Literal["notification.failed"] = "notification.failed"

    notification_key: str
    complaint_number: str
    notice_kind: str
    recipient: str
    reason: str

    def dedup_id(self) -> str:
        return f"failed:{self.notification_key}"


class PersonalDataErased(Event):
    """The register erased (or anonymised) the personal data of a file (issue 16: retention or a citizen's request):
    every service now erases its own copies of that file's personal data — intake the raw originals and attachments
    in the object store, its quarantine and spool entries, its letters folders; the notifier the rendered notices in
    its outbox; the privacy job the events in the streams. It names what to erase by identifiers only (the number,
    message keys, object names): it carries no personal data itself, so it may outlive what it erased.
    Idempotent by construction: erasing what is already gone is nothing."""

    subject: ClassVar[str] = streams.SUBJECT_PERSONAL_DATA_ERASED
    event_type: Literal["privacy.erased"] = "privacy.erased"

    complaint_number: str
    erasure_id: str = Field(description="Unique id of this erasure in the register (dedupes republishing)")
    mode: Literal["erased", "anonymised"] = Field(description="erased: nothing of the person is kept; anonymised: "
                                                              "statistics facts kept, identity and texts replaced")
    reason: Literal["retention", "request"] = "retention"
    message_keys: tuple[str, ...] = Field(default=(), description="Keys of every message of the file (intake's)")
    raw_objects: tuple[str, ...] = Field(default=(), description="Object-store names of the raw originals")
    attachment_objects: tuple[str, ...] = Field(default=(), description="Object-store names of the attachments")
    scope: Literal["file", "messages"] = Field(
        default="file", description="file: the whole file's personal data (its complainant); messages: only the "
                                    "listed messages and what went to `recipient_hashes` (a correspondent, a held "
                                    "message) — the rest of the file is someone else's and stays")
    recipient_hashes: tuple[str, ...] = Field(
        default=(), description="With scope messages: sha256 (hex) of the lower-cased addresses whose notices on "
                                "this file are erased (`address_hash`); never an address in clear")

    def dedup_id(self) -> str:
        return f"erased:{self.erasure_id}"

    @staticmethod
    def address_hash(address: str) -> str:
        return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


class DeadLettered(Event):
    """A consumer gave up on an event after its last delivery; the original payload is kept whole for replay."""

    event_type: Literal["dead.lettered"] = "dead.lettered"
    subject: ClassVar[str] = streams.SUBJECT_DEAD_LETTER

    consumer: str
    original_subject: str
    stream_sequence: int
    deliveries: int
    error: str
    payload: str

    def dedup_id(self) -> str:
        return f"dead:{self.consumer}:{self.stream_sequence}"

    def publish_subject(self) -> str:
        return streams.dead_letter_subject(self.consumer)


# --- the text of a staff message (NoticeRequested.context["text"] of a `staff_message`) ----------------------------
# The registry, which takes it from staff, and the notifier, which sends it, both clean and bound it with
# `clean_staff_text`, so that a text one accepts the other never refuses. It fits in a few printed pages; a longer
# text is refused, never cut (it is an official letter).
STAFF_MESSAGE_MAX_CHARS = 20_000
STAFF_MESSAGE_MAX_LINES = 400
# Every line break Python's `splitlines` knows (the HTML part of a notice splits on them) becomes "\n"; other control
# characters (a pasted form feed, a terminal escape) are dropped. Tabs stay.
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def clean_staff_text(text: str) -> str:
    """The text with "\n" line breaks, no control characters, no trailing spaces nor surrounding blank lines;
    `ValueError` (an English sentence, without the text) when it is blank or over a bound."""
    cleaned = _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))
    cleaned = "\n".join(line.rstrip() for line in cleaned.split("\n")).strip("\n")
    if not cleaned.strip():
        raise ValueError("a staff message needs its text")
    if len(cleaned) > STAFF_MESSAGE_MAX_CHARS:
        raise ValueError(f"a staff message has at most {STAFF_MESSAGE_MAX_CHARS} characters")
    if cleaned.count("\n") + 1 > STAFF_MESSAGE_MAX_LINES:
        raise ValueError(f"a staff message has at most {STAFF_MESSAGE_MAX_LINES} lines")
    return cleaned


# --- notice preview (core NATS request/reply, not an event: nothing is stored or published on a stream) -------------
class PreviewProblem(StrEnum):
    """Why a preview has no text: the code before `:` in `NoticePreview.error` (a page translates it)."""

    NOTIFIER_UNAVAILABLE = "notifier_unavailable"  # no notifier answered in time (not running, NATS down)
    TOO_LARGE = "too_large"  # the request is bigger than NoticePreviewRequest.MAX_BYTES
    INVALID_REQUEST = "invalid_request"  # not a NoticePreviewRequest
    UNKNOWN_KIND = "unknown_kind"  # not a notice kind the registry may request
    INVALID_CONTEXT = "invalid_context"  # the context does not fit the kind (missing, blank or too long text...)
    FAILED = "failed"  # the notifier could not render it (a template error)


class NoticePreviewRequest(Contract):
    """What the notifier would send for a `NoticeRequested` with these fields, asked for before it is requested.

    Sent as a core NATS request on `streams.SUBJECT_NOTICE_PREVIEW`; the notifier answers a `NoticePreview` and
    stores, sends and publishes nothing. `language` is the language staff chose (None: the recipient's, as for
    the notice itself); it travels in the notice's `context` as `language` when the notice is requested.
    """

    # A larger request is refused unread (the staff text of a message is bounded far below this).
    MAX_BYTES: ClassVar[int] = 256 * 1024

    schema_version: int = 1
    complaint_number: str
    notice_kind: str = Field(description="A kind NoticeRequested may carry: staff_message, final_answer, ...")
    recipient: Party
    language: str | None = Field(default=None, description="fr, nl, de or en; None: the recipient's language")
    context: dict[str, Any] = Field(default_factory=dict)


class NoticePreview(Contract):
    """The notice as it would go out (subject, plain text, HTML part, language), or why it cannot (`error`)."""

    schema_version: int = 1
    subject: str = ""
    text: str = ""
    html: str = ""
    language: str = ""
    error: str | None = Field(default=None, description="`<PreviewProblem>: <detail in English>`, None when rendered")

    @property
    def problem(self) -> PreviewProblem | None:
        """The error's code, for a page to say it in the reader's language."""
        if self.error is None:
            return None
        code = self.error.split(":", 1)[0].strip()
        return PreviewProblem(code) if code in PreviewProblem._value2member_map_ else PreviewProblem.FAILED

    @classmethod
    def failure(cls, problem: PreviewProblem, detail: str = "") -> NoticePreview:
        return cls(error=f"{problem.value}: {detail}" if detail else problem.value)


# --- the public pages' questions to the registry (core NATS request/reply, issue 17) -------------------------------
class CaseLookupRequest(Contract):
    """The number of the file a message became, asked by intake's confirmation page (`streams.SUBJECT_CASE_LOOKUP`).
    Only the message key is asked and only the number and status are answered: the key is unguessable (the page's
    own submission), and nothing personal travels."""

    MAX_BYTES: ClassVar[int] = 4096

    schema_version: int = 1
    message_key: str = Field(max_length=512)


class CaseLookup(Contract):
    """The answer: the file's number and status, or None for both while the message is not registered (yet), or
    when it went elsewhere (the holding pen, a follow-up of an existing file: `appended` is then True)."""

    schema_version: int = 1
    number: str | None = None
    status: str | None = None
    appended: bool = False


# --- orientation: who is competent for a problem, asked before the public form (core NATS request/reply, issue 17) --
class OrientationOutcome(StrEnum):
    """What the directory and the screening keywords say of a problem described in a few words or by a theme."""

    COMPETENT = "competent"  # this service, and no other ombudsman matches better
    UNCLEAR = "unclear"  # this service matches, but another ombudsman matches better: the citizen chooses
    OTHER = "other"  # another ombudsman matches and this service does not
    UNKNOWN = "unknown"  # nobody in the directory matches (or the directory has no entry of ours)


class OrientationRequest(Contract):
    """Who is competent for this problem, asked by intake's orientation page (`streams.SUBJECT_ORIENTATION`).

    Only the citizen's short description and a theme's id are asked, never who they are; the page bounds the
    description and the registry neither stores nor logs it. A longer request is refused unread."""

    MAX_BYTES: ClassVar[int] = 8192
    MAX_DESCRIPTION: ClassVar[int] = 1000

    schema_version: int = 1
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    theme: str | None = Field(default=None, max_length=100, description="The id of a theme of the screening rules")


class OrientationContact(Contract):
    """An ombudsman of the directory as a citizen reaches it: names by language, contact details, and whether they
    were checked (`verified`, issue 15: the page asks the citizen to confirm unverified ones on the website)."""

    id: str
    names: dict[str, str] = Field(default_factory=dict, description="By language: fr, nl, de, en (some only fr/en)")
    website: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""
    verified: bool = False


class OrientationTheme(Contract):
    """A theme of the screening rules the citizen may pick, with its labels by language."""

    id: str
    labels: dict[str, str] = Field(default_factory=dict)


class Orientation(Contract):
    """The answer: the outcome, the other ombudsmen proposed (best first), the theme and the service concerned
    recognised (for the form), and the themes a citizen may pick (every answer carries them)."""

    schema_version: int = 1
    outcome: OrientationOutcome = OrientationOutcome.UNKNOWN
    ombudsmen: tuple[OrientationContact, ...] = ()
    theme: str | None = None
    service: dict[str, str] = Field(default_factory=dict, description="The service concerned's labels by language")
    themes: tuple[OrientationTheme, ...] = ()


# --- the citizen's view of their file and the satisfaction survey (core NATS request/reply, issue 17) ---------------
# A personal link's token: a selector (16 hex characters, 64 bits: finds the row) then a verifier (32 base64url
# characters, 192 bits of randomness: proves the link). The register keeps the selector and the SHA-256 of the
# verifier, never the token; the token travels only in core NATS requests (never on a stream) and, sealed, to the
# notifier that mails it (`services/registry/public/citizen_access.py`).
CITIZEN_SELECTOR_CHARS = 16
CITIZEN_VERIFIER_CHARS = 32
CITIZEN_TOKEN_CHARS = CITIZEN_SELECTOR_CHARS + CITIZEN_VERIFIER_CHARS
_CITIZEN_TOKEN = re.compile(r"[0-9a-f]{16}[A-Za-z0-9_-]{32}")


def citizen_token_parts(token: str) -> tuple[str, str] | None:
    """(selector, verifier) of a well-formed token; None for anything else (checked before any lookup)."""
    if not isinstance(token, str) or len(token) != CITIZEN_TOKEN_CHARS or not _CITIZEN_TOKEN.fullmatch(token):
        return None
    return token[:CITIZEN_SELECTOR_CHARS], token[CITIZEN_SELECTOR_CHARS:]


def citizen_verifier_hash(verifier: str) -> str:
    """What the register stores of a token's verifier (hex SHA-256: the verifier is random, no salt is needed)."""
    return hashlib.sha256(verifier.encode("ascii")).hexdigest()


def citizen_message_proof(token: str, message_key: str) -> str | None:
    """`MessageReceived.citizen_link_proof` of a message sent through the personal link `token`: its selector and
    HMAC-SHA256(key = the verifier's hash, the message key). The registry recomputes it from the hash it stores; no
    mail can carry it (intake's mail path never sets the field), and nobody without the token (or the register's
    rows) can make one, nor reuse one for another message."""
    parts = citizen_token_parts(token)
    if parts is None:
        return None
    selector, verifier = parts
    return f"{selector}.{citizen_proof_mac(citizen_verifier_hash(verifier), message_key)}"


def citizen_proof_mac(verifier_hash: str, message_key: str) -> str:
    return hmac.new(bytes.fromhex(verifier_hash), message_key.encode("utf-8"), hashlib.sha256).hexdigest()


class CitizenAccessRequest(Contract):
    """What a citizen's personal link shows, asked by intake's page (`streams.SUBJECT_CITIZEN_FILE`). The client's
    address and user agent are for the registry's audit trail (every access is recorded, issue 17)."""

    MAX_BYTES: ClassVar[int] = 4096

    schema_version: int = 1
    token: str = Field(max_length=CITIZEN_TOKEN_CHARS)
    client_ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    writing: bool = Field(default=False, description="The citizen is sending a message (audited as such)")


class CitizenThreadEntry(Contract):
    """One message of the file as its citizen sees it: theirs (`in`) or a notice sent to them (`out`)."""

    direction: Literal["in", "out"]
    at: datetime
    subject: str = ""
    text: str = ""
    notice_kind: str | None = None
    attachments: tuple[str, ...] = Field(default=(), description="File names only")


class CitizenFile(Contract):
    """The answer: `found` False (unknown, expired, revoked or malformed link: nothing else), else the file's
    number, kind, status, dates and the citizen's own thread, and whether they may still write through the link."""

    schema_version: int = 1
    found: bool = False
    number: str | None = None
    kind: str | None = None
    status: str | None = None
    received_on: date | None = None
    acknowledgment_due: date | None = None
    answer_due: date | None = None
    answer_extended: bool = False
    waiting_for_citizen: bool = False
    answered_on: date | None = None
    closed_on: date | None = None
    language: str | None = None
    messages: tuple[CitizenThreadEntry, ...] = ()
    link_expires_on: date | None = Field(default=None, description="None: not before the file is closed")


class CitizenLinkResendRequest(Contract):
    """"Send me my link again" (`streams.SUBJECT_CITIZEN_RESEND`): a new link goes to the file's address when the
    number and the address match; the answer is the same either way."""

    MAX_BYTES: ClassVar[int] = 4096

    schema_version: int = 1
    number: str = Field(max_length=40)
    email: str = Field(max_length=320)
    client_ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class CitizenLinkResent(Contract):
    schema_version: int = 1
    received: bool = True


SURVEY_QUESTIONS = ("clarity", "delay", "respect", "overall")
SURVEY_COMMENT_MAX_CHARS = 2000


class SurveyAnswers(Contract):
    """A citizen's answers: each question 1 (poor) to 5 (very good), None when skipped; a free comment."""

    clarity: int | None = Field(default=None, ge=1, le=5)
    delay: int | None = Field(default=None, ge=1, le=5)
    respect: int | None = Field(default=None, ge=1, le=5)
    overall: int | None = Field(default=None, ge=1, le=5)
    comment: str = Field(default="", max_length=SURVEY_COMMENT_MAX_CHARS)


class SurveyRequest(Contract):
    """The survey of a survey link (`streams.SUBJECT_SURVEY`): whether it may be answered (`answers` None), or the
    answers, stored by the registry in one transaction with the mark that the link was used."""

    MAX_BYTES: ClassVar[int] = 16384

    schema_version: int = 1
    token: str = Field(max_length=CITIZEN_TOKEN_CHARS)
    answers: SurveyAnswers | None = None


class SurveyState(StrEnum):
    OPEN = "open"  # the link is valid and unused
    RECORDED = "recorded"  # these answers are now stored
    ANSWERED = "answered"  # the link was used before: nothing stored
    UNKNOWN = "unknown"  # no such link, or expired


class SurveyReply(Contract):
    schema_version: int = 1
    state: SurveyState = SurveyState.UNKNOWN
