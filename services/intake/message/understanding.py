"""From raw bytes to what the message means (pure, no I/O): who wrote, when, about what, in which language,
what it refers to, what is new in it, and what kind of message it is.

The kind (a bounce, a machine's mail, a staff forward, a mail that refuses automatic answers) is decided by the
chain of named rules in `rules/`; their hits are kept in `Understanding.rules` and travel with the message.

`understand(raw, context)` never returns a half result: it returns an `Understanding` or raises (a parser error,
`MimeLimitExceeded`), and the pipeline quarantines the raw message with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

from services.intake.message.addresses import address_list, display_name, mailboxes, principal
from services.intake.message.authentication import MAX_HEADERS, Verdict, verdict_from_headers, verify_dkim
from services.intake.message.bounces import BounceReport
from services.intake.message.charsets import decode_header_value, header_text
from services.intake.message.context import ParseContext, Person, is_staff
from services.intake.message.language import detect_language
from services.intake.message.large_parts import hollow_out
from services.intake.message.message_key import message_ids, normalise_message_id, repair_header_block
from services.intake.message.mime import Attachment, MimeContent, extract_content
from services.intake.message.references import case_numbers, ours
from services.intake.message.reply_text import new_text as separate_new_text
from services.intake.message.reports import DISPOSITION_NOTIFICATION
from services.intake.message.rules import CHAIN, Facts, Outcome, run_chain
from shared.events import RuleHit, SenderVerdict

__all__ = ["ParseContext", "Person", "Understanding", "understand"]


@dataclass(frozen=True)
class Understanding:
    sender: Person
    recipients: tuple[str, ...]
    subject: str
    text: str
    sent_at: datetime | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    our_references: tuple[str, ...]
    case_numbers: tuple[str, ...]
    language: str | None
    language_confidence: float
    attachments: tuple[Attachment, ...]
    automated_reason: str | None
    defects: tuple[str, ...]
    forwarded_by: Person | None = None
    bounce: BounceReport | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    sender_verdict: SenderVerdict = SenderVerdict.UNVERIFIED
    sender_evidence: str = ""
    identity_notes: tuple[str, ...] = ()
    forward_verified: bool = False
    needs_confirmation: str | None = None
    acknowledgment_suppressed: str | None = None
    disposition_of: str | None = None
    disposition: str | None = None
    # The named rules that hit, in chain order (rules/), and the text without quoted history, signature and
    # footer (None: nothing to separate, `text` is all new).
    rules: tuple[RuleHit, ...] = ()
    new_text: str | None = None


def parse_bytes(raw: bytes) -> Message:
    # compat32 keeps every header as the raw string it was (the modern policy raises on some malformed headers).
    return BytesParser(policy=compat32).parsebytes(raw)


# Clients that write raw 8-bit headers use their own legacy charset, which their body parts usually declare; a
# Japanese body declared iso-2022-jp often comes with Shift_JIS headers. Multibyte charsets go first: they fail on
# the wrong bytes, whereas any single-byte charset "decodes" anything.
_RELATED_CHARSETS = {
    "iso-2022-jp": ("shift_jis", "cp932", "euc-jp"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "big5": ("big5hkscs",),
    "ks_c_5601-1987": ("cp949",),
    "euc-kr": ("cp949",),
}
_SINGLE_BYTE = re.compile(r"^(iso-?8859|windows-|cp\d|koi8|latin|mac)", re.IGNORECASE)


def header_charsets(message: Message) -> tuple[str, ...]:
    """Charsets to try for undeclared 8-bit headers, most discriminating first."""
    found: list[str] = []
    for index, part in enumerate(message.walk()):
        if index > 50:
            break
        charset = part.get_content_charset()
        if charset and charset not in {"us-ascii", "ascii", "utf-8"}:
            for candidate in (charset, *_RELATED_CHARSETS.get(charset, ())):
                if candidate not in found:
                    found.append(candidate)
    return tuple(sorted(found, key=lambda charset: bool(_SINGLE_BYTE.match(charset))))


# Identity anomalies (codes, recorded in `identity_notes`) that leave a message `unverified` whatever a trusted
# server said about its From domain: the domain checked may not be the author the message shows.
UNVERIFYING_NOTES = ("several_from_headers", "several_from_addresses", "sender_differs", "no_from_address")
MAX_FROM_HEADERS = 10


def find_sender(message: Message, defects: list[str], charsets: tuple[str, ...], notes: list[str]) -> Person:
    """The author (RFC 5322 3.6.2): the first From header with an address (some spam carries a junk one first),
    else the mbox envelope line. Addresses are parsed from the raw header before any decoding (`addresses`).
    Anomalies go to `notes` as codes: several From fields or addresses, a Sender that differs, no From address."""
    values = message.get_all("From") or []
    if len(values) > 1:
        notes.append(f"several_from_headers: {len(values)}")
    found = [mailboxes(value, defects, "from", charsets) for value in values[:MAX_FROM_HEADERS]]
    every = list(dict.fromkeys(mailbox.email for header in found for mailbox in header))
    if len(every) > 1:
        notes.append("several_from_addresses: " + ", ".join(every[:5]))
    author = next((principal(header) for header in found if header), None)
    if author is None:
        notes.append("no_from_address")
        unixfrom = message.get_unixfrom() or ""
        parts = unixfrom.split()
        if len(parts) > 1 and "@" in parts[1]:
            defects.append("no From address: mbox envelope line used")
            return Person(email=parts[1].strip("<>").lower())
        if not values:
            return Person()
        name = display_name(header_text(values[0], defects, "from", charsets), defects, "from", charsets)
        return Person(name=name[:MAX_NAME_CHARS])
    sender = Person(name=author.name, email=author.email)
    if "@" in sender.name and sender.email not in sender.name.lower():
        notes.append("display_name_shows_another_address")
    if "=?" in sender.email:  # RFC 2047 5: never in an addr-spec; kept literal, never decoded into another address
        notes.append("encoded_word_in_address")
    senders = message.get_all("Sender") or []
    if len(senders) > 1:
        notes.append(f"sender_differs: {len(senders)} Sender headers")
    elif senders:
        named = principal(mailboxes(senders[0], defects, "sender", charsets))
        if named is not None and named.email != sender.email:
            notes.append(f"sender_differs: {named.email}")
    return sender


def header_map(message: Message, defects: list[str], charsets: tuple[str, ...] = ()) -> dict[str, str]:
    """First occurrence of each header, lower-case names, decoded values."""
    headers: dict[str, str] = {}
    for name, value in message.items():
        key = str(name).strip().lower()
        if key not in headers:
            headers[key] = decode_header_value(value, defects, key, charsets)
    return headers


def all_addresses(values: list[object], defects: list[str], charsets: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every address of raw To/Cc values, parsed before decoding (`addresses`), lower-case, each once."""
    return address_list(values, defects, "recipients", charsets)


def parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# Bounds on what a message's headers put into its event, which must fit one NATS message (1 MB by default): a 2 MB
# Subject or 60,000 References would otherwise make an event NATS refuses, and the sender would retry for ever. The
# raw original keeps everything; each cut is recorded in `defects`.
MAX_SUBJECT_CHARS = 2_000
MAX_NAME_CHARS = 200
# RFC 5322 2.1.1: a line (so an id) is at most 998 characters.
MAX_ID_CHARS = 998
MAX_REFERENCES = 100
MAX_RECIPIENTS = 100
MAX_CASE_NUMBERS = 50
MAX_DEFECTS = 100


def _cap_text(value: str, limit: int, what: str, defects: list[str]) -> str:
    if len(value) <= limit:
        return value
    defects.append(f"{what} cut to {limit} characters (the raw original keeps it whole)")
    return value[:limit]


def _cap_id(value: str | None, what: str, defects: list[str]) -> str | None:
    if value is None or len(value) <= MAX_ID_CHARS:
        return value
    defects.append(f"{what} longer than {MAX_ID_CHARS} characters ignored")
    return None


def cap_references(references: tuple[str, ...], defects: list[str]) -> tuple[str, ...]:
    """At most `MAX_REFERENCES` ids, none absurdly long: the first (the thread's root, RFC 5322 3.6.4) and the most
    recent ones, which are those a reply to our mail names."""
    usable = tuple(reference for reference in references if len(reference) <= MAX_ID_CHARS)
    if len(usable) < len(references):
        defects.append(f"references longer than {MAX_ID_CHARS} characters ignored")
    if len(usable) <= MAX_REFERENCES:
        return usable
    defects.append(f"references cut to {MAX_REFERENCES} of {len(usable)} (the root and the most recent)")
    return (usable[0], *usable[-(MAX_REFERENCES - 1):])


def cap_items(items: tuple[str, ...], limit: int, what: str, defects: list[str]) -> tuple[str, ...]:
    if len(items) <= limit:
        return items
    defects.append(f"{what} cut to {limit} of {len(items)}")
    return items[:limit]


def _cap_person(person: Person, what: str, defects: list[str]) -> Person:
    name = _cap_text(person.name, MAX_NAME_CHARS, f"{what} name", defects)
    email = person.email
    if email is not None and len(email) > MAX_ID_CHARS:
        defects.append(f"{what} address longer than {MAX_ID_CHARS} characters ignored")
        email = None
    return person if (name, email) == (person.name, person.email) else Person(name=name, email=email)


def sender_verdict(
    raw: bytes, message: Message, from_domain: str | None, notes: list[str], context: ParseContext,
    defects: list[str],
) -> Verdict:
    """Who wrote it, on which evidence (`authentication`): the topmost trusted Authentication-Results, else intake's
    own DKIM check when configured; never `verified` with an identity anomaly in `notes` (several From, a Sender
    that differs), since the domain checked may then not be the author's the message shows."""
    values = [header_text(value, defects, "authentication-results")
              for value in (message.get_all("Authentication-Results") or [])[:MAX_HEADERS]]
    if context.provenance.delivered_by_relay is False and values:
        # Delivered straight to us by a client that is not the organisation's MX: whatever Authentication-Results
        # it carries, it wrote itself (a trusted MX would have stripped forged ones, RFC 8601 5).
        verdict = Verdict(SenderVerdict.UNVERIFIED,
                          "Authentication-Results ignored: not delivered by a trusted relay (smtp_relay_clients)")
    else:
        verdict = verdict_from_headers(values, from_domain, context.trusted_authserv_ids)
    if verdict.verdict is SenderVerdict.UNVERIFIED and context.dkim_txt_lookup is not None and from_domain:
        own = verify_dkim(raw, from_domain, context.dkim_txt_lookup)
        verdict = own if own.verdict is SenderVerdict.VERIFIED else Verdict(
            verdict.verdict, f"{verdict.evidence}; {own.evidence}")
    anomalies = [note.partition(":")[0] for note in notes if note.partition(":")[0] in UNVERIFYING_NOTES]
    if verdict.verdict is SenderVerdict.VERIFIED and anomalies:
        verdict = Verdict(SenderVerdict.UNVERIFIED,
                          f"{verdict.evidence}; not verified: {', '.join(dict.fromkeys(anomalies))}")
    return verdict


def forward_authenticated(forwarder: Person, verdict: SenderVerdict, context: ParseContext) -> bool:
    """Whether a staff forward is proven to come from staff (docs/security.md): its From is a staff address or domain
    and verified; or it came over the submission port under SMTP AUTH (RFC 4954) as a staff account (an address of
    `staff_logins`); or from an IMAP mailbox configured as staff's."""
    if verdict is SenderVerdict.VERIFIED and is_staff(forwarder, context):
        return True
    # Only logins named as staff's: a copier's account (its password often stored on the device) is not staff,
    # whatever its name looks like.
    login = (context.provenance.authenticated_as or "").strip().lower()
    if login and login in context.staff_logins:
        return True
    return context.provenance.staff_mailbox


def understand(raw: bytes, context: ParseContext) -> Understanding:
    skeleton, large = hollow_out(raw)
    repaired = repair_header_block(skeleton)
    message = parse_bytes(repaired)
    defects: list[str] = ["headers: folded lines without whitespace re-joined"] if repaired is not skeleton else []
    charsets = header_charsets(message)
    headers = header_map(message, defects, charsets)
    content: MimeContent = extract_content(message, context.limits, large)
    defects.extend(content.defects)
    text = content.text
    if len(text) > context.max_text_chars:
        defects.append(f"text truncated to {context.max_text_chars} characters")
        text = text[: context.max_text_chars]

    identity_notes: list[str] = []
    sender = find_sender(message, defects, charsets, identity_notes)
    from_domain = sender.email.rpartition("@")[2] if sender.email and "no_from_address" not in identity_notes else None
    if sender.email is None and context.envelope_sender and "@" in context.envelope_sender:
        defects.append("no From address: envelope sender used")
        sender = Person(name=sender.name, email=context.envelope_sender.strip("<>").lower())
    # About this message's own From: on a staff forward, the staff member's mail (`forward_verified` then says
    # whether staff vouch for the original inside; the citizen quoted there is never authenticated by it).
    verdict = sender_verdict(raw, message, from_domain, identity_notes, context, defects)
    subject = headers.get("subject", "")
    sent_at = parse_date(headers.get("date", ""))
    message_id = normalise_message_id(headers.get("message-id"))
    in_reply_to_ids = message_ids(headers.get("in-reply-to"))
    references = message_ids(headers.get("references"))
    for reply_id in in_reply_to_ids:
        if reply_id not in references:
            references = (*references, reply_id)

    facts = Facts(message=message, headers=headers, content=content, text=text, subject=subject, sender=sender,
                  message_id=message_id, context=context)
    rules = run_chain(facts, CHAIN)
    decided = {hit.outcome: hit for hit in reversed(rules)}  # the first hit of each outcome
    bounce = facts.delivery_notice.bounce if Outcome.BOUNCE in decided and facts.delivery_notice else None
    forwarded_by: Person | None = None
    forward_verified = False
    needs_confirmation: str | None = None
    original = facts.forwarded_original if Outcome.FORWARD in decided else None
    if original is not None:
        forwarded_by = sender
        # Extracted even when unproven, so that staff see whom it is about; the registry holds it then.
        forward_verified = forward_authenticated(forwarded_by, verdict.verdict, context)
        if not forward_verified:
            needs_confirmation = "staff_forward_not_verified"
        sender = Person(name=original.sender.name, email=original.sender.email)
        sent_at = original.sent_at or sent_at
        subject = original.subject or subject
        text = original.text or text
    elif bounce is None and facts.report is None and facts.from_staff:
        defects.append("mail from staff without an identifiable original sender")
    # Machines are never answered (issue 10): a bounce, a report, a delivery notice, an auto-reply.
    automated_reason = "delivery status notification" if bounce is not None else (
        decided[Outcome.AUTOMATED].why if Outcome.AUTOMATED in decided else None)
    suppressed = decided.get(Outcome.ACKNOWLEDGMENT_SUPPRESSED)
    # A read receipt (RFC 8098) is about one message: the registry attaches it to that file as an event.
    report = facts.report
    disposition_of = report.original_message_id if report and report.report_type == DISPOSITION_NOTIFICATION else None
    if disposition_of and disposition_of not in references:
        references = (*references, disposition_of)

    fresh = separate_new_text(text) if bounce is None else None
    # The language of the citizen's own words (not a quoted reply, a signature or an English footer); the
    # subject helps only when they say too little.
    language, confidence = detect_language(text if fresh is None else fresh)
    if language is None:
        language, confidence = detect_language(f"{subject}\n{text if fresh is None else fresh}")
    # Bounded only now, once forwarding and automation saw the headers as they came (see MAX_SUBJECT_CHARS).
    subject = _cap_text(subject, MAX_SUBJECT_CHARS, "subject", defects)
    sender = _cap_person(sender, "sender", defects)
    if forwarded_by is not None:
        forwarded_by = _cap_person(forwarded_by, "forwarder", defects)
    message_id = _cap_id(message_id, "Message-ID", defects)
    our_references = cap_references(ours(references, context.own_domain), defects)
    references = cap_references(references, defects)
    in_reply_to = _cap_id(in_reply_to_ids[0] if in_reply_to_ids else None, "In-Reply-To", defects)
    recipients = cap_items(all_addresses(message.get_all("To", []) + message.get_all("Cc", []), defects, charsets),
                           MAX_RECIPIENTS, "recipients", defects)
    recipients = tuple(recipient for recipient in recipients if len(recipient) <= MAX_ID_CHARS)
    found_case_numbers = cap_items(
        case_numbers([subject, text], context.case_number_prefix, context.case_number_width), MAX_CASE_NUMBERS,
        "case numbers", defects)
    unique_defects = tuple(dict.fromkeys(defects))
    if len(unique_defects) > MAX_DEFECTS:
        unique_defects = (*unique_defects[: MAX_DEFECTS - 1],
                          f"{len(unique_defects) - MAX_DEFECTS + 1} more defects not listed")
    return Understanding(
        sender=sender,
        recipients=recipients,
        subject=subject,
        text=text,
        sent_at=sent_at,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        our_references=our_references,
        case_numbers=found_case_numbers,
        language=language,
        language_confidence=confidence,
        attachments=tuple(content.attachments),
        automated_reason=automated_reason,
        defects=tuple(defect[:MAX_SUBJECT_CHARS] for defect in unique_defects),
        forwarded_by=forwarded_by,
        bounce=bounce,
        headers=headers,
        sender_verdict=verdict.verdict,
        sender_evidence=verdict.evidence[:MAX_SUBJECT_CHARS],
        identity_notes=tuple(note[:MAX_SUBJECT_CHARS] for note in dict.fromkeys(identity_notes))[:MAX_DEFECTS],
        forward_verified=forward_verified,
        needs_confirmation=needs_confirmation,
        acknowledgment_suppressed=suppressed.why if suppressed else None,
        disposition_of=disposition_of,
        disposition=report.disposition if disposition_of and report else None,
        rules=tuple(hit.model_copy(update={"why": hit.why[:MAX_SUBJECT_CHARS]}) for hit in rules),
        new_text=fresh,
    )
