"""The stable identity of a received message (pure).

The same message received twice — an SMTP retry after a lost 250, the same mail by SMTP and by IMAP, an IMAP
re-fetch — must get the same key, so that JetStream's `Nats-Msg-Id` window and intake's durable seen-set drop the
second copy. The key derives from the normalised Message-ID (RFC 5322 3.6.4) when there is one, otherwise from the
sha256 of the raw bytes with line endings normalised (an SMTP copy has CRLF, a copy saved by IMAP may not).

The Message-ID is qualified by the From, Date and Subject headers and by a digest of the body: copies of one
message carry them unchanged (relays and IMAP servers only prepend trace headers, and may change line endings), but
broken mailers and web forms do reuse one Message-ID for different mails — even within the same second, with the
same Subject — and merging two citizens' complaints into one would lose a complaint.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime

# A header block larger than this is not worth reading for a Message-ID (flanker's torture tests have 200 KB headers).
HEADER_SCAN_LIMIT = 512 * 1024

_ID_PATTERN = re.compile(r"<([^<>\s]+)>")


def normalise_message_id(value: str | None) -> str | None:
    """`<Abc@Example.ORG>` and ` abc@example.org ` are one id; the domain part is case-insensitive (RFC 5322)."""
    if not value:
        return None
    text = str(value).strip()
    match = _ID_PATTERN.search(text)
    candidate = match.group(1) if match else text.strip("<> \t\r\n")
    if not candidate or any(ch.isspace() for ch in candidate):
        return None
    local, at, domain = candidate.rpartition("@")
    if not at:
        return candidate
    return f"{local}@{domain.lower()}"


def message_ids(value: str | None) -> tuple[str, ...]:
    """Every id of a References / In-Reply-To header, normalised, in order, without repeats."""
    if not value:
        return ()
    # A dict, not a list: a header of 60,000 ids must not cost 60,000² comparisons (review of issue 3).
    found: dict[str, None] = {}
    for raw in _ID_PATTERN.findall(str(value)):
        normalised = normalise_message_id(raw)
        if normalised:
            found[normalised] = None
    return tuple(found)


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message (up to the first empty line), bounded in size."""
    head = raw[:HEADER_SCAN_LIMIT]
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = head.find(separator)
        if index >= 0:
            return head[: index + len(separator)]
    return head


_FIELD_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


def repair_header_block(raw: bytes) -> bytes:
    """Indent header lines that lost their folding whitespace, so the headers after them are not taken as body.

    Some gateways break long headers (X-Brightmail-Tracker, DKIM) onto lines that do not start with whitespace
    (RFC 5322 2.2.3 requires it); a strict parser then ends the header section there and loses From and Subject.
    A line is re-indented only when a well-formed field follows it in the same header block.
    """
    head = header_block(raw)
    if len(head) == len(raw[:HEADER_SCAN_LIMIT]) and not head.endswith((b"\n\n", b"\r\n\r\n")):
        return raw  # no header/body separator at all: nothing safe to repair
    lines = head.split(b"\n")
    last_field = max((index for index, line in enumerate(lines) if _FIELD_LINE.match(line)), default=-1)
    repaired = list(lines)
    changed = False
    for index, line in enumerate(lines[:last_field]):
        if index == 0 and line.startswith(b"From "):
            continue  # the mbox envelope line, which the parser knows
        if line.strip(b"\r") and line[:1] not in (b" ", b"\t") and not _FIELD_LINE.match(line):
            repaired[index] = b"\t" + line
            changed = True
    return b"\n".join(repaired) + raw[len(head):] if changed else raw


def raw_message_id(raw: bytes) -> str | None:
    """The normalised Message-ID of a raw message, read from its header block only."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(repair_header_block(raw)))
        return normalise_message_id(str(headers.get("Message-ID") or ""))
    except Exception:  # noqa: BLE001 - a header we cannot read simply gives no Message-ID
        return None


def _read_headers(raw: bytes) -> Message | None:
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(header_block(repair_header_block(raw)))
    except Exception:  # noqa: BLE001 - a header block we cannot read gives no identity and no date
        return None


def _identity(headers: Message | None, raw: bytes) -> str | None:
    """The normalised Message-ID qualified by From, Date and Subject as they came (unfolded) and the body's digest,
    or None."""
    if headers is None:
        return None
    try:
        message_id = normalise_message_id(str(headers.get("Message-ID") or ""))
        if not message_id:
            return None
        qualifiers = [" ".join(str(headers.get(name) or "").split()) for name in ("From", "Date", "Subject")]
    except Exception:  # noqa: BLE001 - a header we cannot read simply gives no Message-ID
        return None
    return "\n".join([message_id, *qualifiers, body_digest(raw)])


_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_TRAILING_SPACE = b" \t\r\n"
TRAILING_SPACE_SCAN = 4096


def body_digest(raw: bytes) -> str:
    """sha256 of the body (everything after the first empty line) as its copies all carry it: CRLF read as LF, and
    without the white space at its very end (an SMTP copy ends with CRLF, a copy saved by a mail store may end with
    an extra or no line end). Transport headers are not part of it, so a relay's or an IMAP server's trace headers
    change nothing."""
    end_of_headers = _END_OF_HEADERS.search(raw)
    start = end_of_headers.end() if end_of_headers else len(raw)
    end = len(raw)
    # Copies differ by a line end or two at most; the bound keeps a hostile tail of blanks from costing a loop
    # over megabytes here, on the event loop.
    floor = max(start, end - TRAILING_SPACE_SCAN)
    while end > floor and raw[end - 1] in _TRAILING_SPACE:
        end -= 1
    return content_digest(memoryview(raw)[start:end])


def _date(headers: Message | None) -> datetime | None:
    try:
        value = parsedate_to_datetime(str(headers.get("Date") or "")) if headers is not None else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


def content_digest(raw: bytes | memoryview) -> str:
    """sha256 of the bytes with CRLF read as LF, computed piecewise (no copy of a 34 MB message)."""
    digest = hashlib.sha256()
    view = memoryview(raw)
    step = 1024 * 1024
    carry = b""
    for offset in range(0, len(raw), step):
        piece = carry + bytes(view[offset : offset + step])
        # A CR at the end of a piece may be the first half of a CRLF: decide with the next piece.
        carry = b"\r" if piece.endswith(b"\r") else b""
        digest.update((piece[:-1] if carry else piece).replace(b"\r\n", b"\n"))
    digest.update(carry)
    return digest.hexdigest()


@dataclass(frozen=True)
class MessageIdentity:
    key: str
    date: datetime | None  # the message's own Date header, when readable


def identify(raw: bytes) -> MessageIdentity:
    """The message key (`mid-<sha256 of the qualified Message-ID and body digest>` or `raw-<sha256 of the
    content>`, safe as a KV key and object name) and the message's Date, from one read of the header block."""
    headers = _read_headers(raw)
    identity = _identity(headers, raw)
    if identity:
        key = "mid-" + hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()
    else:
        key = "raw-" + content_digest(without_own_trace(raw))
    return MessageIdentity(key, _date(headers))


# The first line of the Received field intake's SMTP server prepends (trace.py); it holds the time of receipt.
_OWN_TRACE_START = b"Received: from "
_OWN_TRACE_MARK = b"(ombudsdesk intake)"
_OWN_TRACE_SCAN = 1024


def without_own_trace(raw: bytes) -> memoryview:
    """The bytes after intake's own leading Received field, so that an SMTP retry of a mail without a Message-ID
    (the same bytes, received at another time) keeps its key. Any other leading field is kept as it is."""
    view = memoryview(raw)
    if not raw.startswith(_OWN_TRACE_START):
        return view
    head = bytes(view[:_OWN_TRACE_SCAN])
    first_line_end = head.find(b"\n")
    if _OWN_TRACE_MARK not in head[: head.find(b";") if b";" in head else 0] or first_line_end < 0:
        return view
    end = first_line_end + 1
    # The field goes on over its folded lines (RFC 5322 2.2.3: continuation lines start with white space).
    while end < len(head) and head[end:end + 1] in (b" ", b"\t"):
        next_end = head.find(b"\n", end)
        if next_end < 0:
            return view
        end = next_end + 1
    return view[end:]


def message_key(raw: bytes) -> str:
    return identify(raw).key
