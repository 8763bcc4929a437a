"""Case numbers: formatting and parsing (pure). `MED-2026-00042` = prefix, year, sequence padded to a width.

The sequence itself is assigned by the repository, in the same transaction as the complaint's insert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CaseNumber:
    prefix: str
    year: int
    sequence: int


@dataclass(frozen=True)
class NumberFormat:
    prefix: str = "MED"
    width: int = 5

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", self.prefix):
            raise ValueError(f"case number prefix must be letters and digits, got {self.prefix!r}")
        if not 1 <= self.width <= 12:
            raise ValueError(f"case number width must be between 1 and 12, got {self.width}")

    def format(self, year: int, sequence: int) -> str:
        if sequence < 1:
            raise ValueError("sequences start at 1")
        # A year with more complaints than the width allows still gets a unique, longer number.
        return f"{self.prefix}-{year:04d}-{sequence:0{self.width}d}"

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"\b{re.escape(self.prefix)}-(\d{{4}})-(\d{{{self.width},}})\b", re.IGNORECASE)

    def parse(self, text: str) -> CaseNumber | None:
        """The number if `text` is exactly one case number of this format (case-insensitive), else None."""
        match = self.pattern.fullmatch(text.strip())
        if not match:
            return None
        return CaseNumber(self.prefix, int(match.group(1)), int(match.group(2)))

    def normalise(self, text: str) -> str | None:
        parsed = self.parse(text)
        return self.format(parsed.year, parsed.sequence) if parsed else None

    def find_all(self, text: str) -> list[str]:
        """Every case number mentioned in free text, normalised, in order of first appearance."""
        seen: dict[str, None] = {}
        for match in self.pattern.finditer(text):
            seen.setdefault(self.format(int(match.group(1)), int(match.group(2))), None)
        return list(seen)
