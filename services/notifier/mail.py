"""The outgoing email of one notice (pure): headers that keep machines quiet and cannot be injected into.

- `Auto-Submitted: auto-replied` (RFC 3834 5.1) on answers to a citizen's message, `auto-generated` on staff
  warnings, so that well-behaved responders never answer them;
- `X-Auto-Response-Suppress: All` ([MS-OXCMAIL] 2.2.3.2.14) for Exchange out-of-office replies;
- `In-Reply-To` / `References` to the citizen's message (RFC 5322 3.6.4) so mail clients thread the reply;
- a Message-ID in our own domain, stable per notice, by which intake recognises our mail and its bounces.

The mail is written directly in its wire form (7-bit, CRLF): every header is ours and of a known kind, so the
general `email` package (which parses each header it is given and folds it again on output, ~1.5 ms a notice,
a third of the notifier's CPU) is not needed to write it. Text that is not ASCII goes in RFC 2047 encoded words,
bodies in quoted-printable (RFC 2045 6.7); `parse_email` reads it back for whoever wants an `EmailMessage`.
"""

from __future__ import annotations

import binascii
import email.policy
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime

from services.notifier.headers import clean_address, clean_header_text, clean_message_id

CRLF = "\r\n"
# RFC 5322 3.2.3: a display name with any of these is written as a quoted-string, with `\` and `"` escaped.
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_ESCAPES = re.compile(r'[\\"]')
# RFC 5322 2.1.1: lines SHOULD stay within 78 characters.
LINE_LENGTH = 78


@dataclass(frozen=True)
class Sender:
    address: str
    display_name: str


def _plain(text: str) -> bool:
    """Text that may stand in a header as it is: ASCII, and nothing a reader would decode as an encoded word."""
    return text.isascii() and "=?" not in text


def _header(name: str, text: str) -> str:
    """`Name: text` folded within LINE_LENGTH, non-ASCII text as RFC 2047 encoded words."""
    charset = "us-ascii" if _plain(text) else "utf-8"
    folded = Header(text, charset, maxlinelen=LINE_LENGTH, header_name=name).encode(linesep=CRLF)
    return f"{name}: {folded}{CRLF}"


def _mailbox(name: str, display_name: str | None, address: str) -> str:
    """`Name: display name <addr-spec>`: a single plain address (else `UnsafeAddress`) and a display name that can
    neither leave its header nor add a mailbox (a quoted-string when it holds specials, encoded words when not
    ASCII; RFC 5322 3.4, RFC 2047 5(3))."""
    addr_spec = clean_address(address)
    display = clean_header_text(display_name, 120)
    if not display:
        return f"{name}: {addr_spec}{CRLF}"
    if _plain(display):
        phrase = '"' + _ESCAPES.sub(r"\\\g<0>", display) + '"' if _SPECIALS.search(display) else display
    else:
        phrase = Header(display, "utf-8", maxlinelen=LINE_LENGTH, header_name=name).encode(linesep=CRLF)
    last_line = f"{name}: {phrase}".rpartition(CRLF)[2]
    fold = CRLF if len(last_line) + len(addr_spec) + 3 > LINE_LENGTH else ""
    return f"{name}: {phrase}{fold} <{addr_spec}>{CRLF}"


def _ids(name: str, ids: list[str]) -> str:
    """A header of msg-ids, one per line (folded between them, RFC 5322 3.2.2): each fits within a line."""
    return f"{name}: {(CRLF + ' ').join(ids)}{CRLF}"


def _own_message_id(message_id: str) -> str:
    cleaned = clean_message_id(message_id)
    if cleaned is None:
        raise ValueError("not a Message-ID")
    return cleaned


def _text_part(text: str, subtype: str) -> str:
    """One text body in UTF-8, quoted-printable (7-bit lines of at most 76 characters, RFC 2045 6.7)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if not lines.endswith("\n"):
        lines += "\n"  # as the `email` package writes it: the line break before a boundary is the boundary's
    encoded = binascii.b2a_qp(lines.encode("utf-8"), istext=True).decode("ascii").replace("\n", CRLF)
    return (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}{encoded}")


def build_email(
    *,
    sender: Sender,
    recipient: str,
    recipient_name: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    language: str,
    date: datetime,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    auto_submitted: str = "auto-replied",
) -> bytes:
    """The notice as the relay receives it after DATA (7-bit, CRLF line ends)."""
    headers = [
        _mailbox("From", sender.display_name, sender.address),
        _mailbox("To", recipient_name, recipient),
        _header("Subject", clean_header_text(subject, 250)),
        f"Date: {format_datetime(date)}{CRLF}",
        _ids("Message-ID", [_own_message_id(message_id)]),
    ]
    parent = clean_message_id(in_reply_to)
    chain = [ref for ref in (clean_message_id(value) for value in references) if ref]
    if parent:
        headers.append(_ids("In-Reply-To", [parent]))
        if parent not in chain:
            chain.append(parent)
    if chain:
        # RFC 5322 3.6.4: the parent's References followed by the parent's Message-ID; keep the chain bounded.
        headers.append(_ids("References", chain[-20:]))
    headers += [
        f"Auto-Submitted: {clean_header_text(auto_submitted, 40)}{CRLF}",
        f"X-Auto-Response-Suppress: All{CRLF}",
        f"Content-Language: {clean_header_text(language, 35)}{CRLF}",
        f"MIME-Version: 1.0{CRLF}",
    ]
    if not html:
        return ("".join(headers) + _text_part(text, "plain")).encode("ascii")
    # Quoted-printable writes "=" as "=3D": no encoded body can contain a boundary that starts with "=_".
    boundary = f"=_{secrets.token_hex(16)}"
    body = (f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}{CRLF}'
            f"--{boundary}{CRLF}{_text_part(text, 'plain')}{CRLF}"
            f"--{boundary}{CRLF}{_text_part(html, 'html')}{CRLF}"
            f"--{boundary}--{CRLF}")
    return ("".join(headers) + body).encode("ascii")


def parse_email(raw: bytes) -> EmailMessage:
    """A mail in wire form as an `EmailMessage` (to read its headers and parts)."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message
