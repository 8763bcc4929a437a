"""Case number format (pure)."""

from __future__ import annotations

import pytest

from services.registry.numbering import CaseNumber, NumberFormat


def test_default_format_pads_the_sequence():
    assert NumberFormat().format(2026, 42) == "MED-2026-00042"
    assert NumberFormat("OMB", 3).format(2027, 7) == "OMB-2027-007"


def test_a_year_beyond_the_width_still_gets_unique_longer_numbers():
    fmt = NumberFormat("MED", 2)
    assert fmt.format(2026, 99) == "MED-2026-99"
    assert fmt.format(2026, 100) == "MED-2026-100"
    assert fmt.parse("MED-2026-100") == CaseNumber("MED", 2026, 100)


def test_parse_is_case_insensitive_and_normalises():
    fmt = NumberFormat()
    assert fmt.parse(" med-2026-00042 ") == CaseNumber("MED", 2026, 42)
    assert fmt.normalise("med-2026-00042") == "MED-2026-00042"
    assert fmt.parse("MED-2026-42") is None  # narrower than the width: not one of ours
    assert fmt.parse("XYZ-2026-00042") is None
    assert fmt.parse("MED-2026-00042 and more") is None


def test_find_all_in_free_text_keeps_first_appearance_order():
    fmt = NumberFormat()
    text = "Re: [MED-2026-00007] suite à med-2026-00003, voir aussi MED-2026-00007 et AMED-2026-00001"
    assert fmt.find_all(text) == ["MED-2026-00007", "MED-2026-00003"]


@pytest.mark.parametrize("prefix,width", [("", 5), ("M-D", 5), ("MED", 0), ("MED", 13)])
def test_invalid_formats_are_refused(prefix, width):
    with pytest.raises(ValueError):
        NumberFormat(prefix, width)


def test_sequences_start_at_one():
    with pytest.raises(ValueError):
        NumberFormat().format(2026, 0)
