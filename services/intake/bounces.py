"""Delivery status notifications (pure): which of our mails failed, for which address, and why.

Standard reports are RFC 3464 `multipart/report; report-type=delivery-status` with a `message/delivery-status` part
(per-recipient `Action`, `Status`, `Final-Recipient`, `Diagnostic-Code`) and the original message or its headers.
Many servers still send the older free-text formats (qmail's "<addr>:" paragraphs, Exim's "The following address(es)
failed", Exchange's "Undeliverable", Postfix without a report part); for those the failed address and the original
Message-ID are read from the text. Only permanent failures (`Action: failed`, 5.x.x) make a `BounceReport`; a
"delayed" notice is merely a machine's mail (see automation.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from services.intake.message_key import normalise_message_id
from services.intake.mime import MimeContent


@dataclass(frozen=True)
class BounceReport:
    original_message_id: str | None
    failed_recipient: str | None
    status: str | None
    diagnostic: str | None


_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)\b", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|undelivered mail|delivery status notification \(failure\)|delivery failure|failure notice"
    r"|mail delivery failed|returned mail|delivery has failed|delivery failure|delivery status notification"
    r"|not delivered|delivery notification|nondeliverable|could not be delivered|non remis|non distribuable"
    r"|[ée]chec de (la )?remise|onbestelbaar|niet afgeleverd|unzustellbar|nicht zustellbar|zustellung fehlgeschlagen)",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(r"(warning|delayed|delay|still being retried|vertraagd|verz[öo]gert|retard)", re.IGNORECASE)
# The lookbehind makes a match start only at the beginning of a run of address characters: without it, a 60 KB run
# of letters costs quadratic time (every position rescans to the end looking for the "@").
_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)+"
)
_MESSAGE_ID_LINE = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"\b([45]\.\d{1,3}\.\d{1,3})\b")
_FAILED_MARKERS = re.compile(
    r"(failed|could not be delivered|undeliverable|unknown user|user unknown|does not exist|no such user"
    r"|mailbox unavailable|recipient rejected|address rejected|unzustellbar|onbestelbaar|non remis)",
    re.IGNORECASE,
)


def _fields(block: Message) -> dict[str, str]:
    return {str(name).lower(): " ".join(str(value).split()) for name, value in block.items()}


def _address_of(field_value: str) -> str | None:
    # "rfc822; jeanne@example.org" (RFC 3464 2.3.2)
    _, _, address = field_value.rpartition(";")
    match = _ADDRESS.search(address or field_value)
    return match.group(0).lower() if match else None


def _original_message_id(content: MimeContent, text: str) -> str | None:
    for embedded in content.embedded:
        message_id = normalise_message_id(str(embedded.get("Message-ID") or ""))
        if message_id:
            return message_id
    for part in content.reports:
        if part.get_content_type() == "text/rfc822-headers":
            payload = part.get_payload(decode=True) or b""
            headers = HeaderParser(policy=compat32).parsestr(payload.decode("utf-8", "replace"))
            message_id = normalise_message_id(str(headers.get("Message-ID") or ""))
            if message_id:
                return message_id
    match = _MESSAGE_ID_LINE.search(text)
    return normalise_message_id(match.group(1)) if match else None


def _standard(content: MimeContent, text: str) -> BounceReport | None | bool:
    """The failed recipient of an RFC 3464 report; False when the report says nothing failed (delayed, delivered);
    None when the report part carries no per-recipient fields at all (a malformed report: read the text)."""
    saw_action = False
    for part in content.reports:
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks:
            fields = _fields(block)
            action = fields.get("action", "").lower()
            status = fields.get("status", "")
            saw_action = saw_action or bool(action or status)
            if action.startswith("failed") or (not action and status.startswith("5")):
                recipient = _address_of(fields.get("final-recipient", "") or fields.get("original-recipient", ""))
                diagnostic = fields.get("diagnostic-code", "").partition(";")[2].strip() or None
                return BounceReport(_original_message_id(content, text), recipient, status or None, diagnostic)
    return False if saw_action else None


def _free_text(content: MimeContent, text: str, sender_email: str | None, own_addresses: set[str]) -> BounceReport:
    failed: str | None = None
    for line in text.splitlines():
        if _FAILED_MARKERS.search(line) or line.strip().startswith("<"):
            for address in _ADDRESS.findall(line):
                address = address.lower()
                if address != sender_email and address not in own_addresses and not _BOUNCE_SENDER.match(address):
                    failed = address
                    break
        if failed:
            break
    if failed is None:
        candidates = [a.lower() for a in _ADDRESS.findall(text) if a.lower() != sender_email]
        failed = next((a for a in candidates if a not in own_addresses and not _BOUNCE_SENDER.match(a)), None)
    status = _STATUS.search(text)
    diagnostic = next((line.strip()[:300] for line in text.splitlines() if _FAILED_MARKERS.search(line)), None)
    return BounceReport(_original_message_id(content, text), failed, status.group(1) if status else None, diagnostic)


def parse_bounce(
    message: Message, headers: dict[str, str], content: MimeContent, sender_email: str | None
) -> BounceReport | None:
    text = content.text
    subject = headers.get("subject", "")
    is_report = message.get_content_type() == "multipart/report" and str(
        message.get_param("report-type") or ""
    ).lower() == "delivery-status"
    if is_report or any(part.get_content_type() == "message/delivery-status" for part in content.reports):
        standard = _standard(content, text)
        if standard is False:
            return None
        if standard is not None:
            return standard
    elif not _BOUNCE_SUBJECT.search(subject) or _DELAY_SUBJECT.search(subject):
        return None
    else:
        sender_local = (sender_email or "").partition("@")[0]
        from_machine = (
            not sender_email
            or bool(_BOUNCE_SENDER.match(sender_local))
            or headers.get("return-path", "").strip() == "<>"
            or bool(_FAILED_MARKERS.search(text[:5000]))
        )
        if not from_machine:
            return None
    # The bounce goes back to the original sender (us): our own address is never the failed one.
    own = {address.lower() for address in _ADDRESS.findall(headers.get("to", ""))}
    return _free_text(content, text, sender_email, own)
