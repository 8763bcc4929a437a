"""Text a stranger wrote, made harmless for a terminal and a spreadsheet (pure)."""

from __future__ import annotations

import json
import time

import pytest

from shared.untrusted_text import csv_cell, for_terminal, json_for_terminal


@pytest.mark.parametrize(("hostile", "shown"), [
    # OSC 0 (set the window title) ended by BEL, then CSI 2J (clear the screen): both removed with their payload.
    ("Bonjour\x1b]0;pwned\x07\x1b[2J, ma plainte", "Bonjour, ma plainte"),
    ("x\x1b]8;;http://evil.example\x1b\\lien\x1b]8;;\x1b\\y", "xlieny"),  # OSC 8 hyperlink, ST-ended
    ("rouge\x1b[31;1mROUGE\x1b[0m", "rougeROUGE"),  # SGR colours
    ("\x9b2Jeffacé", "effacé"),  # the 8-bit CSI (C1)
    ("\x9d0;titre\x9cfin", "fin"),  # 8-bit OSC and ST
    ("reset\x1bcapres", "resetapres"),  # RIS, a two-byte escape
    ("a\x1bPdevice control\x1b\\b", "ab"),  # DCS
    ("nul\x00bel\x07bs\x08del\x7fnel\x85", "nulbelbsdelnel"),  # lone C0, DEL, C1
    ("ligne 1\r\nligne 2\ttab", "ligne 1\nligne 2\ttab"),  # newline and tab stay, CR LF is a newline
    ("cr\rseul", "crseul"),  # a lone CR would move the cursor back over what was printed
    ("a\x1b]0;no terminator", "a0;no terminator"),  # unterminated: only the escape goes, the text stays visible
    ("Élodie Müller — « objet »", "Élodie Müller — « objet »"),  # printable Unicode untouched
])
def test_terminal_controls_are_removed(hostile: str, shown: str) -> None:
    assert for_terminal(hostile) == shown


def test_nothing_a_terminal_acts_upon_is_left() -> None:
    every_code_point_below_256 = "".join(chr(i) for i in range(256)) * 3
    cleaned = for_terminal(every_code_point_below_256)
    assert not [c for c in cleaned if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]


@pytest.mark.parametrize("pathological", ["\x1b]" * 50_000, "\x9d" * 100_000, "\x1b[" + "0" * 100_000,
                                          "\x1b[" * 50_000, ("\x1bP" + "a" * 50) * 2_000])
def test_work_is_linear_in_the_input(pathological: str) -> None:
    normal = "Madame, Monsieur, je conteste la facture. " * (len(pathological) // 42 + 1)
    started = time.perf_counter()
    for_terminal(normal)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    for_terminal(pathological)
    assert time.perf_counter() - started < max(baseline * 50, 0.05)


def test_json_escapes_del_and_c1_and_keeps_the_value() -> None:
    value = {"objet": "\x9b2J\x7f é\x1b[0m", "n": 3}
    text = json_for_terminal(json.dumps(value, ensure_ascii=False))
    assert not [c for c in text if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f]
    assert "é" in text and json.loads(text) == value


@pytest.mark.parametrize(("cell", "written"), [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+33 1 23", "'+33 1 23"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("Facture = erreur", "Facture = erreur"),  # only the first character counts
    ("", ""),
    (-3, -3),  # numbers stay numbers
    (2.5, 2.5),
    (None, None),
])
def test_csv_cells_that_start_like_a_formula_are_quoted(cell: object, written: object) -> None:
    assert csv_cell(cell) == written
