"""Turning bytes of unknown or lying charset into text (pure): decode, record the defect, never crash.

Mail in the wild declares charsets Python does not know (`x-unknown`, `unknown-8bit`, `ks_c_5601-1987`), declares
one and uses another (cp1252 sent as iso-8859-1 or as utf-8), or declares none at all with 8-bit bytes (RFC 6532
allows utf-8 headers). Like browsers (WHATWG Encoding Standard) we read latin-1 labels as windows-1252 and gb2312 as
its superset gb18030; for an undeclared or wrong charset we try utf-8, then windows-1252, which never fails.
"""

from __future__ import annotations

import codecs
import re
from email.header import Header, decode_header

# Labels that mail clients use but Python does not know, or that name a subset of what is actually sent.
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
_NO_CHARSET = {"", "x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default", "charset", "none"}


_SURROGATES = re.compile("[\udc80-\udcff]")


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _NO_CHARSET:
        return None
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(
    data: bytes, declared: str | None, defects: list[str], where: str = "body",
    fallback: str | tuple[str, ...] | None = None,
) -> str:
    """Decode `data` declared as `declared`; append a readable defect when the declaration was missing or wrong.

    `fallback` is tried after utf-8 for undeclared bytes (for headers: the charset the body declares)."""
    codec = _codec(declared)
    if declared and codec is None:
        defects.append(f"{where}: unknown charset {declared.strip()[:40]!r}, guessed")
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            defects.append(f"{where}: content does not match declared charset {declared.strip()[:40]!r}")
        except Exception:  # noqa: BLE001 - a broken codec (utf-7 on garbage raises oddly) must not stop intake
            defects.append(f"{where}: charset {declared.strip()[:40]!r} failed to decode")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        for label in (fallback,) if isinstance(fallback, str) else (fallback or ()):
            guess = _codec(label)
            if not guess or guess == codec:
                continue
            try:
                text = data.decode(guess)
            except (UnicodeDecodeError, LookupError):
                continue
            defects.append(f"{where}: 8-bit text without a declared charset, read as {guess}")
            return text
        if not declared or codec is None or codec == "utf-8":
            defects.append(f"{where}: 8-bit text without a usable charset, read as windows-1252")
        return data.decode("cp1252", errors="replace")
    if not declared and not data.isascii():
        defects.append(f"{where}: 8-bit text without a declared charset, read as utf-8")
    return text


def header_text(
    value: object, defects: list[str], name: str = "header", fallback: str | tuple[str, ...] | None = None
) -> str:
    """A header value as text with its raw 8-bit bytes (RFC 6532) decoded but its RFC 2047 encoded words left as
    they are: the form in which an address header must be parsed (RFC 2047 section 5: an encoded word is never part
    of an addr-spec), before anything is decoded."""
    if value is None:
        return ""
    if isinstance(value, Header):
        # compat32 wraps a header holding raw 8-bit bytes in a Header of charset unknown-8bit.
        text = "".join(
            decode_bytes(chunk, None if str(charset) == "unknown-8bit" else charset, defects, name, fallback)
            if isinstance(chunk, bytes) else chunk
            for chunk, charset in decode_header(value)
        )
    else:
        text = str(value)
        if not text.isascii() and _SURROGATES.search(text):
            text = decode_bytes(text.encode("ascii", "surrogateescape"), None, defects, name, fallback)
    return text


def decode_header_value(
    value: object, defects: list[str], name: str = "header", fallback: str | tuple[str, ...] | None = None
) -> str:
    """An RFC 2047 header (`=?utf-8?q?...?=`) or raw 8-bit header (RFC 6532) as readable text, unfolded."""
    text = header_text(value, defects, name, fallback)
    chunks: list[tuple[bytes | str, str | None]] = [(text, None)]
    if "=?" in text:
        try:
            chunks = decode_header(text)
        except Exception:  # noqa: BLE001 - malformed encoded words: keep the text as it came
            defects.append(f"{name}: malformed encoded word")
    parts = [
        decode_bytes(chunk, charset or "utf-8", defects, name) if isinstance(chunk, bytes) else chunk
        for chunk, charset in chunks
    ]
    return " ".join("".join(parts).split())
