"""From raw bytes to what the message means (pure, no I/O): who wrote, when, about what, in which language,
what it refers to, whether a machine wrote it, whether it is a bounce.

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
from email.utils import getaddresses, parsedate_to_datetime

from services.intake.automation import detect_automated
from services.intake.bounces import BounceReport, parse_bounce
from services.intake.charsets import decode_header_value
from services.intake.forwarding import ForwardedOriginal, find_forwarded_original
from services.intake.language import detect_language
from services.intake.large_parts import hollow_out
from services.intake.message_key import message_ids, normalise_message_id, repair_header_block
from services.intake.mime import Attachment, MimeContent, MimeLimits, extract_content
from services.intake.references import case_numbers, ours


@dataclass(frozen=True)
class ParseContext:
    """What the parser needs to know about us, taken from the settings."""

    own_domain: str = "ombudsdesk.localhost"
    case_number_prefix: str = "MED"
    case_number_width: int = 5
    staff_addresses: frozenset[str] = frozenset()
    staff_domains: frozenset[str] = frozenset()
    limits: MimeLimits = MimeLimits()
    max_text_chars: int = 200_000
    envelope_sender: str | None = None


@dataclass(frozen=True)
class Person:
    name: str = ""
    email: str | None = None


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


def find_sender(message: Message, defects: list[str], charsets: tuple[str, ...]) -> Person:
    """The first From header with an address (some spam carries a junk one first), else the mbox envelope line."""
    values = message.get_all("From") or []
    for value in values:
        person = first_address(decode_header_value(value, defects, "from", charsets))
        if person.email:
            return person
    unixfrom = message.get_unixfrom() or ""
    parts = unixfrom.split()
    if len(parts) > 1 and "@" in parts[1]:
        defects.append("no From address: mbox envelope line used")
        return Person(email=parts[1].strip("<>").lower())
    return first_address(decode_header_value(values[0], defects, "from")) if values else Person()


def header_map(message: Message, defects: list[str], charsets: tuple[str, ...] = ()) -> dict[str, str]:
    """First occurrence of each header, lower-case names, decoded values."""
    headers: dict[str, str] = {}
    for name, value in message.items():
        key = str(name).strip().lower()
        if key not in headers:
            headers[key] = decode_header_value(value, defects, key, charsets)
    return headers


def first_address(value: str) -> Person:
    try:
        pairs = getaddresses([value])
    except Exception:  # noqa: BLE001 - an unparseable address header yields no address
        return Person(name=value.strip()[:200])
    for name, address in pairs:
        address = address.strip()
        if "@" in address:
            return Person(name=name.strip().strip('"'), email=address.lower())
    return Person(name=value.strip()[:200]) if value.strip() else Person()


def all_addresses(values: list[str]) -> tuple[str, ...]:
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        return ()
    return tuple(dict.fromkeys(address.strip().lower() for _, address in pairs if "@" in address))


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


def _is_staff(person: Person, context: ParseContext) -> bool:
    if not person.email:
        return False
    domain = person.email.rpartition("@")[2]
    return person.email in context.staff_addresses or domain in context.staff_domains


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

    sender = find_sender(message, defects, charsets)
    if sender.email is None and context.envelope_sender and "@" in context.envelope_sender:
        defects.append("no From address: envelope sender used")
        sender = Person(name=sender.name, email=context.envelope_sender.strip("<>").lower())
    subject = headers.get("subject", "")
    sent_at = parse_date(headers.get("date", ""))
    message_id = normalise_message_id(headers.get("message-id"))
    in_reply_to_ids = message_ids(headers.get("in-reply-to"))
    references = message_ids(headers.get("references"))
    for reply_id in in_reply_to_ids:
        if reply_id not in references:
            references = (*references, reply_id)

    bounce = parse_bounce(message, headers, content, sender.email)
    forwarded_by: Person | None = None
    if bounce is None and _is_staff(sender, context):
        original: ForwardedOriginal | None = find_forwarded_original(content, text)
        if original is not None and original.sender.email and not _is_staff(
            Person(email=original.sender.email), context
        ):
            forwarded_by = sender
            sender = Person(name=original.sender.name, email=original.sender.email)
            sent_at = original.sent_at or sent_at
            subject = original.subject or subject
            text = original.text or text
        else:
            defects.append("mail from staff without an identifiable original sender")

    automated_reason = None
    if bounce is None and forwarded_by is None:
        automated_reason = detect_automated(
            headers, subject, sender.email, message_id, context.own_domain, context.envelope_sender
        )
    if bounce is not None:
        automated_reason = "delivery status notification"

    language, confidence = detect_language(f"{subject}\n{text}")
    # Bounded only now, once forwarding and automation saw the headers as they came (see MAX_SUBJECT_CHARS).
    subject = _cap_text(subject, MAX_SUBJECT_CHARS, "subject", defects)
    sender = _cap_person(sender, "sender", defects)
    if forwarded_by is not None:
        forwarded_by = _cap_person(forwarded_by, "forwarder", defects)
    message_id = _cap_id(message_id, "Message-ID", defects)
    our_references = cap_references(ours(references, context.own_domain), defects)
    references = cap_references(references, defects)
    in_reply_to = _cap_id(in_reply_to_ids[0] if in_reply_to_ids else None, "In-Reply-To", defects)
    recipients = cap_items(all_addresses(message.get_all("To", []) + message.get_all("Cc", [])), MAX_RECIPIENTS,
                           "recipients", defects)
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
    )
