"""Cut-out large parts (large_parts.py): tokens a sender cannot forge, and the size limit checked before expanding."""

from __future__ import annotations

import base64
import os

import pytest

from services.intake.message.large_parts import TOKEN_PREFIX, ExpansionTooLarge, hollow_out
from services.intake.message.mime import MimeLimits
from services.intake.message.understanding import ParseContext, understand
from tests.intake.support import citizen_mail


def large_mail(text: str) -> bytes:
    message = citizen_mail(body=text)
    message.add_attachment(os.urandom(1_500_000), maintype="application", subtype="pdf", filename="scan.pdf")
    return message.as_bytes()


def test_tokens_are_random_for_each_message():
    raw = large_mail("Bonjour")
    first, parts_1 = hollow_out(raw)
    second, parts_2 = hollow_out(raw)
    assert len(parts_1.runs) == 1 and len(parts_2.runs) == 1
    assert set(parts_1.runs).isdisjoint(parts_2.runs)
    assert first != second  # the skeletons differ by their token only
    token = next(iter(parts_1.runs))
    assert token.startswith(TOKEN_PREFIX) and len(token) >= len(TOKEN_PREFIX) + 32


def test_a_token_written_by_the_sender_is_left_as_text():
    # The old fixed form of the token, and a guess at the new one: neither brings the attachment into the text.
    forged = f"OMBUDSDESKLARGEPART0X and {TOKEN_PREFIX}{'0' * 32}N0X"
    result = understand(large_mail(f"Bonjour\n{forged}\n"), ParseContext())
    assert forged in result.text
    assert len(result.text) < 1000
    [attachment] = result.attachments
    assert len(attachment.data) == 1_500_000


def test_the_size_limit_is_checked_before_anything_is_expanded():
    raw = large_mail("Bonjour")
    skeleton, parts = hollow_out(raw)
    token = next(iter(parts.runs))
    start, end = parts.runs[token]
    repeated = (token.encode() + b"\r\n") * 1000  # as if a token appeared a thousand times
    # Each token replaced by its run, the line ends after the tokens counted as kept: a bound, never below the truth.
    assert parts.expanded_size(repeated) == 1000 * (end - start + 2)
    with pytest.raises(ExpansionTooLarge, match="larger than 10000000 bytes"):
        parts.restore(repeated, limit=10_000_000)
    with pytest.raises(ExpansionTooLarge):
        parts.decode_base64(token, token, limit=1_000_000)  # 1.5 MB decoded
    assert base64.b64decode(parts.encoded(token))[:4] == parts.decode_base64(token, token, limit=2_000_000)[:4]


def test_a_message_over_max_decoded_bytes_fails_before_decoding():
    with pytest.raises(ValueError, match="decoded content larger than"):
        understand(large_mail("Bonjour"), ParseContext(limits=MimeLimits(max_decoded_bytes=1_000_000)))
