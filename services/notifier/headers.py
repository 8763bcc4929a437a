"""Safe header values and our own Message-IDs (pure).

Anything a citizen typed (a display name, a subject) ends up in a header of a mail we send. A CR or LF there would
let them add headers or recipients (header injection, CWE-93); an RFC 2047 encoded word can smuggle the same bytes
past a naive check, so encoded words are decoded first and the decoded text is cleaned (RFC 5322 2.2, RFC 2047 5).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from email.header import decode_header, make_header
from email.errors import HeaderParseError

MAX_HEADER_TEXT = 200
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# An addr-spec we are willing to write to: one mailbox, no display part, no route, no comment, no quoting tricks.
_ADDR_SPEC = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")


class UnsafeAddress(ValueError):
    """An address we refuse to put in a header."""


def _decode_encoded_words(value: str) -> str:
    if not _ENCODED_WORD.search(value):
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return _ENCODED_WORD.sub(" ", value)


def clean_header_text(value: str | None, limit: int = MAX_HEADER_TEXT) -> str:
    """One line of plain text: encoded words decoded, every control or line/paragraph separator turned into a space."""
    if not value:
        return ""
    text = _decode_encoded_words(str(value))
    # `str.isprintable` is False exactly when some character is of category C or Z other than the ASCII space.
    if not text.isprintable():
        text = "".join(" " if unicodedata.category(char)[0] in ("C", "Z") and char != " " else char for char in text)
    text = " ".join(text.split())
    return text[:limit].strip()


def clean_address(value: str | None) -> str:
    """A bare, lower-cased-domain addr-spec, or UnsafeAddress."""
    candidate = (value or "").strip()
    if candidate.startswith("<") and candidate.endswith(">"):
        candidate = candidate[1:-1]
    if not _ADDR_SPEC.match(candidate) or len(candidate) > 254:
        raise UnsafeAddress(f"not a single plain address: {candidate[:80]!r}")
    local, _, domain = candidate.rpartition("@")
    return f"{local}@{domain.lower()}"


def new_message_id(domain: str) -> str:
    """A fresh Message-ID for a notice, drawn once when the notice is recorded and stored with it, so a notice sent
    again after a crash keeps its identity (RFC 5322 3.6.4). Random (128 bits), not derived from the case number:
    a bounce quoting it proves it answers our mail, and nobody can forge a bounce for a notice they never saw
    (issue 5)."""
    return f"<{secrets.token_hex(16)}.notice@{domain}>"


def clean_message_id(value: str | None) -> str | None:
    """A msg-id fit for In-Reply-To / References, or None."""
    if not value:
        return None
    candidate = clean_header_text(value, 998).strip()
    if not candidate.startswith("<"):
        candidate = f"<{candidate}>"
    return candidate if _MESSAGE_ID.match(candidate) else None
