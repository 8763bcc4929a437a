"""The stable identity of a received message (pure).

The same message received twice — an SMTP retry after a lost 250, the same mail by SMTP and by IMAP, an IMAP
re-fetch — must get the same key, so that JetStream's `Nats-Msg-Id` window and intake's durable seen-set drop the
second copy. The key derives from the normalised Message-ID (RFC 5322 3.6.4) when there is one, otherwise from the
sha256 of the raw bytes with line endings normalised (an SMTP copy has CRLF, a copy saved by IMAP may not).
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
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))
        return normalise_message_id(str(headers.get("Message-ID") or ""))
    except Exception:  # noqa: BLE001 - a header we cannot read simply gives no Message-ID
        return None


def content_digest(raw: bytes) -> str:
    return hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()


def message_key(raw: bytes) -> str:
    """`mid-<sha256 of the Message-ID>` or `raw-<sha256 of the content>`; safe as a KV key and object name."""
    message_id = raw_message_id(raw)
    if message_id:
        return "mid-" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
    return "raw-" + content_digest(raw)
