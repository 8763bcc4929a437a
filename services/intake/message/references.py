"""Candidate references of a follow-up (pure): case numbers in subject or body, and ids of mails we sent.

Intake only reports candidates; the registry decides what to attach (issue 4: a number alone never lets a
stranger write into someone else's file). Case numbers are recognised however people retype them:
`[MED-2026-00042]`, `med 2026 42`, `MED/2026/042`, `Réf. MED – 2026 – 00042`.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Enough of a body to find a reference typed by the citizen, without scanning a 1 MB pasted text.
BODY_SCAN_CHARS = 50_000
_DASHES = "-‐‑‒–—_/. "


@lru_cache(maxsize=16)
def _case_pattern(prefix: str, width: int) -> re.Pattern[str]:
    separator = f"[\\s{re.escape(_DASHES)}]*"
    return re.compile(
        rf"(?<![A-Za-z0-9]){re.escape(prefix)}{separator}((?:19|20)\d\d){separator}(\d{{1,{width + 2}}})(?!\d)",
        re.IGNORECASE,
    )


def case_numbers(texts: list[str], prefix: str, width: int) -> tuple[str, ...]:
    """Every case number in the texts, normalised to `PREFIX-YEAR-NNNNN`, in order of appearance, no repeats."""
    pattern = _case_pattern(prefix, width)
    found: list[str] = []
    for text in texts:
        for year, number in pattern.findall(text[:BODY_SCAN_CHARS]):
            if int(number) == 0:
                continue
            normalised = f"{prefix.upper()}-{year}-{int(number):0{width}d}"
            if normalised not in found:
                found.append(normalised)
    return tuple(found)


def ours(message_ids: tuple[str, ...], own_domain: str) -> tuple[str, ...]:
    """The ids among In-Reply-To / References that we generated (they end in our Message-ID domain)."""
    suffix = "@" + own_domain.lower()
    return tuple(message_id for message_id in message_ids if message_id.lower().endswith(suffix))
