"""Text someone outside wrote, made harmless where staff read it (pure): a terminal, a spreadsheet.

- `for_terminal(text)`: a body like `"\\x1b]0;pwned\\x07\\x1b[2J"` would retitle a staff member's terminal window and
  clear the screen (or worse: some terminals answer queries into their input). Whole escape sequences are removed
  with their payload (ECMA-48 / ISO 6429: CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, DCS, SOS, PM, APC
  `... ST`, and their 8-bit C1 forms), then every remaining C0 control but newline and tab, DEL and every C1
  control. Each pattern stops at the next control character, so the work is linear in the text's length whatever
  it holds.
- `json_for_terminal(text)`: JSON already escapes C0 controls inside strings, but not DEL nor C1 (`\x9b` is CSI to
  many terminals); they are escaped as `\u009b`, which is the same JSON value.
- `csv_cell(value)`: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and
  LibreOffice (`=HYPERLINK("http://x","y")`); it is prefixed with a single quote, as OWASP's "CSV Injection" page
  advises. Numbers stay numbers.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["csv_cell", "for_terminal", "json_for_terminal"]

_PAYLOAD = r"[^\x00-\x1f\x7f-\x9f]*"  # printable characters only: a sequence ends at the next control at the latest
_STRING_TERMINATOR = r"(?:\x07|\x1b\\|\x9c)"  # BEL (xterm's OSC end), ESC \ (ST) or the 8-bit ST
_SEQUENCES = re.compile(
    "|".join((
        r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]",  # CSI: parameters, intermediates, final byte
        rf"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]){_PAYLOAD}{_STRING_TERMINATOR}",  # OSC, DCS, SOS, PM, APC strings
        r"\x1b[\x20-\x2f]*[\x30-\x7e]",  # any other escape sequence (charset designation, RIS `ESC c`, ...)
    ))
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but \t and \n, DEL, C1

_JSON_UNESCAPED_CONTROLS = re.compile(r"[\x7f-\x9f]")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def for_terminal(text: str | None) -> str:
    """`text` with no terminal control left: escape sequences removed whole, other controls dropped (newline and
    tab kept; a CR LF line end becomes a newline)."""
    if not text:
        return ""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text.replace("\r\n", "\n")))


def json_for_terminal(text: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with DEL and C1 controls escaped: the same value, and
    nothing a terminal acts upon (outside strings JSON has no such character, so the escape is always valid)."""
    return _JSON_UNESCAPED_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def csv_cell(value: Any) -> Any:
    """A value a spreadsheet shows as text: strings starting like a formula get a leading single quote (OWASP)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
