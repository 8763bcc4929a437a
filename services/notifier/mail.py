"""The outgoing email of one notice (pure): headers that keep machines quiet and cannot be injected into.

- `Auto-Submitted: auto-replied` (RFC 3834 5.1) on answers to a citizen's message, `auto-generated` on staff
  warnings, so that well-behaved responders never answer them;
- `X-Auto-Response-Suppress: All` ([MS-OXCMAIL] 2.2.3.2.14) for Exchange out-of-office replies;
- `In-Reply-To` / `References` to the citizen's message (RFC 5322 3.6.4) so mail clients thread the reply;
- a Message-ID in our own domain, stable per notice, by which intake recognises our mail and its bounces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from services.notifier.headers import clean_header_text, clean_message_id, mailbox


@dataclass(frozen=True)
class Sender:
    address: str
    display_name: str


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
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mailbox(sender.display_name, sender.address)
    message["To"] = mailbox(recipient_name, recipient)
    message["Subject"] = clean_header_text(subject, 250)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    parent = clean_message_id(in_reply_to)
    chain = [ref for ref in (clean_message_id(value) for value in references) if ref]
    if parent:
        message["In-Reply-To"] = parent
        if parent not in chain:
            chain.append(parent)
    if chain:
        # RFC 5322 3.6.4: the parent's References followed by the parent's Message-ID; keep the chain bounded.
        message["References"] = " ".join(chain[-20:])
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message["Content-Language"] = language
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message
