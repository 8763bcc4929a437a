"""Mailboxes from raw address headers (pure): the address parsed before anything is decoded, the name decoded after.

An RFC 2047 encoded word may stand in a display name or a comment, never in an addr-spec (RFC 2047 section 5), so
the address of a mailbox is what RFC 5322 section 3.4 parsing of the *undecoded* header value finds. Decoding first
would make `=?utf-8?q?Eve=0D=0ABcc=3A_victim=40example=2Eorg?= <eve@example.com>` read as "Eve", a line break and
`Bcc: victim@example.org`. Only then is the display name decoded, for display alone, and stripped of control
characters: a decoded display name is never an address. Raw 8-bit headers (RFC 6532) are read as text first, as
`charsets.header_text` does.

When a display name that is not a valid phrase holds an address (`victim@example.org <eve@example.com>`), the
address in angle brackets is the mailbox's (RFC 5322 3.4: name-addr = [display-name] angle-addr), and the text
beside it is only recorded as another address found.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from email.utils import getaddresses

from services.intake.message.charsets import decode_header_value, header_text

# An address header longer than this is not parsed at all (recorded as a defect): no real From, Sender or Reply-To
# comes near it, and the parser's cost grows with its length.
MAX_MAILBOX_HEADER_CHARS = 8_000
# To and Cc may list many recipients; beyond this the rest is ignored (recorded as a defect).
MAX_ADDRESS_LIST_CHARS = 100_000


@dataclass(frozen=True)
class Mailbox:
    name: str
    email: str
    # Written as an angle-addr (`<eve@example.com>`), not as bare text that a display name may also hold.
    bracketed: bool = False


def display_name(raw_name: str, defects: list[str], where: str, charsets: tuple[str, ...] = ()) -> str:
    """A display name as parsed from the raw header, decoded (RFC 2047) for display, without control characters."""
    name = decode_header_value(raw_name, defects, where, charsets)
    name = "".join(char if unicodedata.category(char) != "Cc" else " " for char in name)
    return " ".join(name.split()).strip('"').strip()


def mailboxes(
    value: object, defects: list[str], where: str, charsets: tuple[str, ...] = (),
    limit: int = MAX_MAILBOX_HEADER_CHARS, cut_list: bool = False,
) -> tuple[Mailbox, ...]:
    """The mailboxes of one raw header value, in order, each address once; () when there is none. With `cut_list`
    (To, Cc) a header over `limit` is read up to its last comma before the limit; otherwise it is not read."""
    text = header_text(value, defects, where, charsets)
    if len(text) > limit:
        cut = text.rfind(",", 0, limit) if cut_list else -1
        if cut < 0:
            defects.append(f"{where}: header longer than {limit} characters, not read for addresses")
            return ()
        defects.append(f"{where}: header cut to {cut} characters for addresses")
        text = text[:cut]
    try:
        pairs = getaddresses([text])
    except Exception:  # noqa: BLE001 - "((((..." nests comments beyond the recursion limit: no address
        defects.append(f"{where}: unparseable address")
        return ()
    squeezed = "".join(text.split()).lower()
    found: dict[str, Mailbox] = {}
    for raw_name, address in pairs:
        address = address.strip().lower()
        if "@" in address and address not in found:
            found[address] = Mailbox(display_name(raw_name, defects, where, charsets), address,
                                     bracketed=f"<{address}>" in squeezed)
    return tuple(found.values())


def principal(found: tuple[Mailbox, ...]) -> Mailbox | None:
    """The author's mailbox among those of one header: the first angle-addr, else the first address."""
    return next((mailbox for mailbox in found if mailbox.bracketed), found[0] if found else None)


def address_list(
    values: list[object], defects: list[str], where: str, charsets: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """Every address of several raw header values (To, Cc), lower-case, each once, in order."""
    found: dict[str, None] = {}
    for value in values:
        for mailbox in mailboxes(value, defects, where, charsets, limit=MAX_ADDRESS_LIST_CHARS, cut_list=True):
            found.setdefault(mailbox.email)
    return tuple(found)
