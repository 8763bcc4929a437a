"""Keeping big base64 bodies out of the email parser (pure), so a 25 MB attachment costs about its own size.

Python's email parser holds a part's body as a list of line strings, then as one string, then decodes it: a 34 MB
base64 body briefly weighs several times its size. Before parsing, every long run of base64 lines (the body of a
large attachment) is cut out of the message and replaced by a short token line; the parser sees a small skeleton,
and the MIME walker decodes each token's run straight from the raw buffer (binascii over a memoryview, no copy of
the encoded text). Messages under `HOLLOW_ABOVE_BYTES` are parsed as they are.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field

HOLLOW_ABOVE_BYTES = 1024 * 1024
# At least ~1,000 lines of 60+ base64 characters, i.e. a run of ~60 KB or more.
# The run takes the last, shorter line of the body too, so a part's whole body becomes exactly one token.
# Anchored at line starts, possessive quantifiers: linear time even on flanker's 200 KB one-line headers.
_BASE64_RUN = re.compile(
    rb"(?m)^(?:[A-Za-z0-9+/]{60,}+={0,2}+\r?\n){1000,}+(?:[A-Za-z0-9+/]{1,59}+={0,2}+\r?\n)?"
)
_TOKEN = b"OMBUDSDESKLARGEPART%dX"


@dataclass
class LargeParts:
    """The raw message and where each token's run lies in it."""

    raw: memoryview | None = None
    runs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def token_in(self, payload: str) -> str | None:
        if not self.runs or "OMBUDSDESKLARGEPART" not in payload:
            return None
        return next((token for token in self.runs if token in payload), None)

    def encoded(self, token: str) -> bytes:
        start, end = self.runs[token]
        assert self.raw is not None
        return bytes(self.raw[start:end])

    def decode_base64(self, payload: str, token: str) -> bytes:
        """The decoded body of a base64 part whose payload holds `token` (decoded from the raw buffer, no copy)."""
        assert self.raw is not None
        if payload.strip() == token:
            start, end = self.runs[token]
            return binascii.a2b_base64(self.raw[start:end])
        return binascii.a2b_base64(self.restore(payload.encode("ascii", "replace")))

    def restore(self, data: bytes) -> bytes:
        """Put the cut-out runs back into bytes produced from the skeleton (an embedded message re-serialised)."""
        for token in self.runs:
            if token.encode() in data:
                data = data.replace(token.encode() + b"\r\n", self.encoded(token))
                data = data.replace(token.encode() + b"\n", self.encoded(token))
                data = data.replace(token.encode(), self.encoded(token))
        return data


def hollow_out(raw: bytes) -> tuple[bytes, LargeParts]:
    if len(raw) < HOLLOW_ABOVE_BYTES:
        return raw, LargeParts()
    pieces: list[bytes] = []
    parts = LargeParts(raw=memoryview(raw))
    last = 0
    view = memoryview(raw)
    for number, match in enumerate(_BASE64_RUN.finditer(raw)):
        token = _TOKEN % number
        pieces.append(bytes(view[last : match.start()]))
        pieces.append(token + b"\r\n")
        parts.runs[token.decode()] = (match.start(), match.end())
        last = match.end()
    if not parts.runs:
        return raw, LargeParts()
    pieces.append(bytes(view[last:]))
    return b"".join(pieces), parts
