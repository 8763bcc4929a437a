"""Keeping big base64 bodies out of the email parser (pure), so a 25 MB attachment costs about its own size.

Python's email parser holds a part's body as a list of line strings, then as one string, then decodes it: a 34 MB
base64 body briefly weighs several times its size. Before parsing, every long run of base64 lines (the body of a
large attachment) is cut out of the message and replaced by a short token line; the parser sees a small skeleton,
and the MIME walker decodes each token's run straight from the raw buffer (binascii over a memoryview, no copy of
the encoded text). Messages under `HOLLOW_ABOVE_BYTES` are parsed as they are.

The tokens are drawn at random for each message (`secrets.token_hex`): a sender cannot write one into a mail to make
us paste a run somewhere else, or paste the same run a thousand times (an expansion bomb). Whatever happens, the size
a restore or a decode would produce is worked out from the runs' lengths and checked against the caller's limit
*before* anything is expanded (`ExpansionTooLarge`).
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field

HOLLOW_ABOVE_BYTES = 1024 * 1024
# At least ~1,000 lines of 60+ base64 characters, i.e. a run of ~60 KB or more.
# The run takes the last, shorter line of the body too, so a part's whole body becomes exactly one token.
# Anchored at line starts, possessive quantifiers: linear time even on flanker's 200 KB one-line headers.
_BASE64_RUN = re.compile(
    rb"(?m)^(?:[A-Za-z0-9+/]{60,}+={0,2}+\r?\n){1000,}+(?:[A-Za-z0-9+/]{1,59}+={0,2}+\r?\n)?"
)
TOKEN_PREFIX = "OMBUDSDESKLARGEPART"
# 128 random bits per message: guessing one is out of the question.
TOKEN_RANDOM_BYTES = 16


class ExpansionTooLarge(ValueError):
    """Putting the cut-out runs back (or decoding one) would produce more than the caller's limit allows."""


def new_token_stem() -> str:
    """The random part shared by every token of one message."""
    return f"{TOKEN_PREFIX}{secrets.token_hex(TOKEN_RANDOM_BYTES).upper()}N"


@dataclass
class LargeParts:
    """The raw message and where each token's run lies in it."""

    raw: memoryview | None = None
    runs: dict[str, tuple[int, int]] = field(default_factory=dict)
    stem: str = ""

    def token_in(self, payload: str) -> str | None:
        if not self.runs or not self.stem or self.stem not in payload:
            return None
        return next((token for token in self.runs if token in payload), None)

    def encoded(self, token: str) -> bytes:
        start, end = self.runs[token]
        assert self.raw is not None
        return bytes(self.raw[start:end])

    def _run_length(self, token: str) -> int:
        start, end = self.runs[token]
        return end - start

    def decode_base64(self, payload: str, token: str, limit: int | None = None) -> bytes:
        """The decoded body of a base64 part whose payload holds `token` (decoded from the raw buffer, no copy).

        Base64 decodes to at most 3/4 of its length (RFC 4648 4), so that bound is checked before decoding."""
        assert self.raw is not None
        if payload.strip() == token:
            start, end = self.runs[token]
            _check(((end - start) * 3) // 4, limit)
            return binascii.a2b_base64(self.raw[start:end])
        restored = self.restore(payload.encode("ascii", "replace"), None if limit is None else (limit * 4) // 3 + 4)
        return binascii.a2b_base64(restored)

    def expanded_size(self, data: bytes) -> int:
        """The length `restore(data)` would have, computed from the counts of each token (nothing is copied)."""
        size = len(data)
        for token in self.runs:
            occurrences = data.count(token.encode())
            if occurrences:
                size += occurrences * (self._run_length(token) - len(token))
        return size

    def restore(self, data: bytes, limit: int | None = None) -> bytes:
        """Put the cut-out runs back into bytes produced from the skeleton (an embedded message re-serialised);
        `ExpansionTooLarge` before any copy when the result would exceed `limit` bytes."""
        if not self.runs or self.stem.encode() not in data:
            return data
        _check(self.expanded_size(data), limit)
        for token in self.runs:
            if token.encode() in data:
                data = data.replace(token.encode() + b"\r\n", self.encoded(token))
                data = data.replace(token.encode() + b"\n", self.encoded(token))
                data = data.replace(token.encode(), self.encoded(token))
        return data


def _check(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise ExpansionTooLarge(f"decoded content larger than {max(limit, 0)} bytes")


def hollow_out(raw: bytes) -> tuple[bytes, LargeParts]:
    if len(raw) < HOLLOW_ABOVE_BYTES:
        return raw, LargeParts()
    pieces: list[bytes] = []
    stem = new_token_stem()
    parts = LargeParts(raw=memoryview(raw), stem=stem)
    last = 0
    view = memoryview(raw)
    for number, match in enumerate(_BASE64_RUN.finditer(raw)):
        token = f"{stem}{number}X"
        pieces.append(bytes(view[last : match.start()]))
        pieces.append(token.encode() + b"\r\n")
        parts.runs[token] = (match.start(), match.end())
        last = match.end()
    if not parts.runs:
        return raw, LargeParts()
    pieces.append(bytes(view[last:]))
    return b"".join(pieces), parts
