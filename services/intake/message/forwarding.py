"""A citizen's mail forwarded by staff (pure): find the original sender, date, subject and text.

Complaints reach the wrong desk and are forwarded, either attached (message/rfc822) or inline under a marker —
"Forwarded message", "Original Message", "Message d'origine", "Message transféré", "Doorgestuurd bericht",
"Oorspronkelijk bericht", "Weitergeleitete Nachricht", "Ursprüngliche Nachricht", Apple's "Begin forwarded message"
— or under Outlook's bare header block (From:/De :/Van:/Von: then Sent:/Envoyé :/Verzonden:/Gesendet:). The
complainant is the original sender with the original date; the caller records the forwarding staff member.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from email.message import Message
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from services.intake.message.addresses import MAX_MAILBOX_HEADER_CHARS, display_name, mailboxes, principal
from services.intake.message.charsets import decode_header_value, header_text
from services.intake.message.mime import MimeContent, MimeLimits, extract_content
from services.intake.message.regex_bounds import LINE_CHARS, bounded_line


@dataclass(frozen=True)
class Address:
    name: str = ""
    email: str | None = None


@dataclass(frozen=True)
class ForwardedOriginal:
    sender: Address
    sent_at: datetime | None
    subject: str
    text: str


# Every pattern below runs on lines cut by regex_bounds and cannot backtrack over a run of characters: runs are
# matched possessively (`*+`, `++`) by classes that exclude what follows them, so that a line of 40,000 dashes or
# letters costs one pass, not one pass per position (the old `[\s>*_-]*-+` took 17 s on 20,000 dashes).
_MARKER = re.compile(
    r"^[\s>*_]*+(?:"
    r"-[\s>*_-]*+(?:forwarded message|original message|message d'origine|message transf[ée]r[ée]"
    r"|doorgestuurd bericht|oorspronkelijk bericht|weitergeleitete nachricht|urspr[üu]ngliche nachricht"
    r"|originalnachricht|mensaje original|messaggio originale)[\s*_-]*+"
    r"|[\s>*_-]*+(?:begin forwarded message|d[ée]but du message r[ée]exp[ée]di[ée]|begin doorgestuurd bericht"
    r"|anfang der weitergeleiteten nachricht)[ \t]*+:"
    r")[ \t]*+$",
    re.IGNORECASE,
)
# "Key: value", the key a few words at most ("Envoyé le", "À"); the key class excludes ":", so it stops there.
_HEADER_LINE = re.compile(r"^[\s>*]*+([A-Za-zÀ-ÿ][\w .'À-ÿ-]{0,24}+)[ \t]*+:[ \t]*+(.*)$")
_KEYS = {
    "from": "from", "de": "from", "van": "from", "von": "from", "expéditeur": "from", "expediteur": "from",
    "absender": "from", "afzender": "from",
    "date": "date", "sent": "date", "envoyé": "date", "envoye": "date", "verzonden": "date", "gesendet": "date",
    "datum": "date", "envoyé le": "date", "verstuurd": "date",
    "subject": "subject", "objet": "subject", "onderwerp": "subject", "betreff": "subject", "sujet": "subject",
    "to": "to", "à": "to", "a": "to", "aan": "to", "an": "to", "cc": "cc", "kopie": "cc",
}
# Linear time on long runs of word characters (a match can only start at the beginning of a run).
_LOOSE_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+")
# "[" is excluded too: on "[mailto:" repeated without "]", each attempt stops at the next "[" (linear).
_BRACKETED_MAILTO = re.compile(r"\[mailto:([^\[\]]++)\]", re.IGNORECASE)
_MONTHS = {
    "jan": 1, "janv": 1, "janvier": 1, "januari": 1, "januar": 1, "january": 1, "jän": 1,
    "feb": 2, "fév": 2, "fev": 2, "févr": 2, "février": 2, "februari": 2, "februar": 2, "february": 2,
    "mar": 3, "mars": 3, "maart": 3, "mär": 3, "märz": 3, "march": 3, "mrt": 3,
    "apr": 4, "avr": 4, "avril": 4, "april": 4,
    "may": 5, "mai": 5, "mei": 5,
    "jun": 6, "juin": 6, "juni": 6, "june": 6,
    "jul": 7, "juil": 7, "juillet": 7, "juli": 7, "july": 7,
    "aug": 8, "aoû": 8, "aout": 8, "août": 8, "augustus": 8, "august": 8,
    "sep": 9, "sept": 9, "septembre": 9, "september": 9,
    "oct": 10, "okt": 10, "octobre": 10, "oktober": 10, "october": 10,
    "nov": 11, "novembre": 11, "november": 11,
    "dec": 12, "déc": 12, "dez": 12, "décembre": 12, "decembre": 12, "december": 12, "dezember": 12,
}
_RFC5322_DATE = re.compile(r"^\s*+([A-Za-z]{3},\s*+)?\d{1,2}\s++[A-Za-z]{3}\s++\d{2,4}\s++\d{1,2}:\d{2}")
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})\.?\s++([A-Za-zÀ-ÿ]++)\.?,?\s++(\d{4})(?:\D{1,6}(\d{1,2})[:h.](\d{2}))?")
# The month word starts only at the beginning of a run of letters: `[A-Za-z]+` searched from every position of a
# 40,000-letter run rescanned the run each time (17 s).
_MONTH_DAY_YEAR = re.compile(
    r"(?<![A-Za-zÀ-ÿ])([A-Za-zÀ-ÿ]++)\.?\s++(\d{1,2}),?\s++(\d{4})(?:\D{1,6}(\d{1,2}):(\d{2})[ \t]*+([AaPp][Mm])?)?"
)
# A date as a mail client prints it is a few dozen characters; more is not read.
_DATE_CHARS = 200
# A quoted header block is a handful of lines; a longer run of "Key: value" lines is not one.
_HEADER_BLOCK_LINES = 60
_NUMERIC = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:\D{1,6}(\d{1,2})[:h](\d{2}))?")
# A time a mail client printed in a quoted header has no offset: it is the wall clock of whoever forwarded it, in
# Belgium (the services' zone), not UTC. "10:15" on 2 November is 09:15 UTC. A zone written after it wins
# ("10:15:00 CET", Apple Mail); these abbreviations have one meaning each, whatever the season.
WALL_CLOCK_ZONE = ZoneInfo("Europe/Brussels")
_ZONE_AFTER = re.compile(r"(?::\d{2})?[ \t]*+(UTC|GMT|CEST|CET|MESZ|MEZ)\b", re.IGNORECASE)
_ZONE_MINUTES = {"utc": 0, "gmt": 0, "cet": 60, "mez": 60, "cest": 120, "mesz": 120}


def _written_zone(value: str, end: int) -> tzinfo:
    """The zone written right after a printed time, else the wall clock's (`WALL_CLOCK_ZONE`)."""
    written = _ZONE_AFTER.match(value, end)
    if written is None:
        return WALL_CLOCK_ZONE
    return timezone(timedelta(minutes=_ZONE_MINUTES[written.group(1).lower()]))


def parse_loose_date(value: str) -> datetime | None:
    """Dates as mail clients print them in quoted headers, in FR/NL/DE/EN; day-first for numeric forms (Europe)."""
    value = value.strip()[:_DATE_CHARS]
    if not value:
        return None
    if _RFC5322_DATE.match(value):
        try:
            parsed = parsedate_to_datetime(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    for pattern, order in ((_DAY_MONTH_YEAR, "dmy"), (_MONTH_DAY_YEAR, "mdy"), (_NUMERIC, "num")):
        match = pattern.search(value)
        if not match:
            continue
        groups = match.groups()
        try:
            if order == "dmy":
                day, month, year = int(groups[0]), _MONTHS.get(groups[1].lower()), int(groups[2])
            elif order == "mdy":
                month, day, year = _MONTHS.get(groups[0].lower()), int(groups[1]), int(groups[2])
            else:
                day, month, year = int(groups[0]), int(groups[1]), int(groups[2])
            if not month:
                continue
            hour = int(groups[3]) if groups[3] else 0
            minute = int(groups[4]) if groups[4] else 0
            if order == "mdy" and groups[5] and groups[5].lower() == "pm" and hour < 12:
                hour += 12
            return datetime(year, month, day, hour, minute, tzinfo=_written_zone(value, match.end()))
        except (ValueError, TypeError):
            continue
    return None


def _address(value: object, defects: list[str] | None = None) -> Address:
    """The mailbox of a From line, parsed from its raw text before the display name is decoded (`addresses`: an
    encoded word or a quoted address in the name is never the address). Outlook's `Name [mailto:x@y]` counts as
    `Name <x@y>`; failing any RFC 5322 mailbox, the first address-looking word (a header as a mail client printed
    it in a quoted block is often no valid RFC 5322)."""
    defects = [] if defects is None else defects
    text = header_text(value, defects, "forwarded from")[:MAX_MAILBOX_HEADER_CHARS]
    text = _BRACKETED_MAILTO.sub(lambda match: f"<{match.group(1)}>", text)
    mailbox = principal(mailboxes(text, defects, "forwarded from"))
    if mailbox is not None:
        return Address(name=mailbox.name, email=mailbox.email)
    match = _LOOSE_ADDRESS.search(text)
    if match:
        name = display_name(text[: match.start()].strip(" <\"'"), defects, "forwarded from")
        return Address(name=name, email=match.group(0).lower())
    return Address(name=display_name(text, defects, "forwarded from"))


def _from_attached(message: Message) -> ForwardedOriginal:
    defects: list[str] = []
    content = extract_content(message, MimeLimits())
    return ForwardedOriginal(
        # The raw header: the address is read before anything is decoded.
        sender=_address(message.get("From"), defects),
        sent_at=parse_loose_date(decode_header_value(message.get("Date"), defects)),
        subject=decode_header_value(message.get("Subject"), defects),
        text=content.text,
    )


def _header_block(lines: list[str], start: int) -> tuple[dict[str, str], int] | None:
    """Read `Key: value` lines from `start`; returns the fields and the index of the first body line. `lines` are
    cut by regex_bounds, and at most `_HEADER_BLOCK_LINES` are read, so each call is bounded."""
    fields: dict[str, str] = {}
    index = start
    end = min(len(lines), start + _HEADER_BLOCK_LINES)
    while index < end and not lines[index].strip(" >"):
        index += 1
    last_key: str | None = None
    while index < end:
        line = lines[index]
        if not line.strip(" >"):
            break
        match = _HEADER_LINE.match(line)
        key = _KEYS.get(match.group(1).strip().lower()) if match else None
        if key:
            fields[key] = match.group(2).strip()
            last_key = key
        elif last_key and line.startswith((" ", "\t")):
            if len(fields[last_key]) < LINE_CHARS:
                fields[last_key] += " " + line.strip()
        else:
            break
        index += 1
    if "from" not in fields:
        return None
    return fields, index


def _unquote(lines: list[str]) -> list[str]:
    if lines and all(line.startswith(">") or not line.strip() for line in lines):
        return [line[1:].removeprefix(" ") if line.startswith(">") else line for line in lines]
    return lines


def _from_inline(text: str) -> ForwardedOriginal | None:
    lines = text.splitlines()
    # What the patterns see: every line cut (regex_bounds); the original's text keeps its lines whole.
    probes = [bounded_line(line) for line in lines]
    for position, line in enumerate(probes):
        is_marker = bool(_MARKER.match(line))
        is_outlook_block = False
        if not is_marker:
            match = _HEADER_LINE.match(line)
            if match and _KEYS.get(match.group(1).strip().lower()) == "from":
                following = " ".join(probes[position + 1 : position + 4]).lower()
                is_outlook_block = any(f"{word}:" in following.replace(" :", ":") for word in
                                       ("sent", "envoyé", "verzonden", "gesendet", "date", "datum"))
        if not (is_marker or is_outlook_block):
            continue
        block = _header_block(probes, position + 1 if is_marker else position)
        if block is None:
            continue
        fields, body_start = block
        body = "\n".join(_unquote(lines[body_start:])).strip()
        return ForwardedOriginal(
            sender=_address(fields["from"]),
            sent_at=parse_loose_date(fields.get("date", "")),
            subject=fields.get("subject", ""),
            text=body,
        )
    return None


def find_forwarded_original(content: MimeContent, text: str) -> ForwardedOriginal | None:
    """The original the staff member forwarded, attached or inline; None when the mail is not a forward."""
    for embedded in content.embedded:
        original = _from_attached(embedded)
        if original.sender.email:
            return original
    return _from_inline(text)
