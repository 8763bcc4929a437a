"""The stable identity of a received message (pure).

The same message received twice — an SMTP retry after a lost 250, the same mail by SMTP and by IMAP, an IMAP
re-fetch — must get the same key, so that JetStream's `Nats-Msg-Id` window and intake's durable seen-set drop the
second copy. The key derives from the normalised Message-ID (RFC 5322 3.6.4) when there is one, otherwise from the
sha256 of the raw bytes with line endings normalised (an SMTP copy has CRLF, a copy saved by IMAP may not).

The Message-ID is qualified by the From, Date and Subject headers: copies of one message carry them unchanged
(relays and IMAP servers only prepend trace headers), but broken mailers and web forms do reuse one Message-ID for
different mails, and merging two citizens' complaints into one would lose a complaint.
"""

from __future__ import annotations

import hashlib
import re
from email.parser import BytesHeaderParser
from email.policy import compat32

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
    found: list[str] = []
    for raw in _ID_PATTERN.findall(str(value)):
        normalised = normalise_message_id(raw)
        if normalised and normalised not in found:
            found.append(normalised)
    return tuple(found)


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message (up to the first empty line), bounded in size."""
    head = raw[:HEADER_SCAN_LIMIT]
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = head.find(separator)
        if index >= 0:
            return head[: index + len(separator)]
    return head


def raw_message_id(raw: bytes) -> str | None:
    """The normalised Message-ID of a raw message, read from its header block only."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))
        return normalise_message_id(str(headers.get("Message-ID") or ""))
    except Exception:  # noqa: BLE001 - a header we cannot read simply gives no Message-ID
        return None


def _identity(raw: bytes) -> str | None:
    """The normalised Message-ID qualified by From, Date and Subject as they came (unfolded), or None."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))
        message_id = normalise_message_id(str(headers.get("Message-ID") or ""))
        if not message_id:
            return None
        qualifiers = [" ".join(str(headers.get(name) or "").split()) for name in ("From", "Date", "Subject")]
    except Exception:  # noqa: BLE001 - a header we cannot read simply gives no Message-ID
        return None
    return "\n".join([message_id, *qualifiers])


def content_digest(raw: bytes) -> str:
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


def message_key(raw: bytes) -> str:
    """`mid-<sha256 of the Message-ID>` or `raw-<sha256 of the content>`; safe as a KV key and object name."""
    identity = _identity(raw)
    if identity:
        return "mid-" + hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()
    return "raw-" + content_digest(raw)
