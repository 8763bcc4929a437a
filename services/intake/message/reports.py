"""Machine reports (pure): every `multipart/report` (RFC 6522) is a machine's mail, whatever its report-type.

Known report-types and what is read from them:
- `delivery-status` (RFC 3464): the failure itself is read by bounces.py;
- `feedback-report` (RFC 5965, ARF): an abuse or fraud complaint a mailbox provider sends about mail it received;
  its `Feedback-Type` is kept for the reason;
- `disposition-notification` (RFC 8098, MDN): a read receipt, also Outlook's "Read:" / "Lu :" receipts; its
  `Original-Message-ID` names the message that was read (one of our notices, when it ends in our domain), so the
  registry can attach the receipt to that file as an event;
- `tlsrpt` (RFC 8460): an SMTP TLS report, recognised also by its `TLS-Report-Domain` / `TLS-Report-Submitter`
  header fields (RFC 8460 5.3);
- any other or missing report-type: still a report (RFC 6522 3: the report-type only says which one).

A report part found anywhere but inside an attached message counts too (some gateways wrap reports in
multipart/mixed); an attached message/rfc822 is someone else's mail and is never read as a report. Nothing here
answers anyone: the caller marks the message automated, so no acknowledgment goes out and no complaint is opened.
"""

from __future__ import annotations

import base64
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from services.intake.message.message_key import normalise_message_id

if TYPE_CHECKING:  # mime.py imports REPORT_PARTS from here
    from services.intake.message.mime import MimeContent

DELIVERY_STATUS = "delivery-status"
FEEDBACK_REPORT = "feedback-report"
DISPOSITION_NOTIFICATION = "disposition-notification"
TLSRPT = "tlsrpt"
UNSPECIFIED = "unspecified"

# The body part of each report-type (RFC 3464 2.1, RFC 6533 3 for the "global" UTF-8 forms, RFC 5965 3,
# RFC 8098 3, RFC 6533 6, RFC 8460 5.3).
REPORT_PARTS = {
    "message/delivery-status": DELIVERY_STATUS,
    "message/global-delivery-status": DELIVERY_STATUS,
    "message/feedback-report": FEEDBACK_REPORT,
    "message/disposition-notification": DISPOSITION_NOTIFICATION,
    "message/global-disposition-notification": DISPOSITION_NOTIFICATION,
    "application/tlsrpt+json": TLSRPT,
    "application/tlsrpt+gzip": TLSRPT,
}
_REASONS = {
    DELIVERY_STATUS: "delivery status notification (RFC 3464)",
    FEEDBACK_REPORT: "abuse feedback report (RFC 5965)",
    DISPOSITION_NOTIFICATION: "read receipt (RFC 8098)",
    TLSRPT: "TLS report (RFC 8460)",
    UNSPECIFIED: "machine report (multipart/report without a report-type)",
}
# A report-type parameter is a token (RFC 2045 5.1); anything else in it is not repeated in our reason.
_TOKEN = re.compile(r"[A-Za-z0-9.+_-]{1,60}")
# Bound on the text of a report part read as header fields: real ones are a few hundred bytes.
_FIELDS_CHARS = 16_000


@dataclass(frozen=True)
class MachineReport:
    report_type: str
    reason: str
    original_message_id: str | None = None
    disposition: str | None = None
    feedback_type: str | None = None


def _token(value: object) -> str | None:
    match = _TOKEN.match(str(value or "").strip().strip('"').lower())
    return match.group(0) if match else None


def report_fields(part: Message) -> Message | None:
    """The header fields of a one-block report part (MDN, ARF), however the parser stored them.

    The email package parses a message/* part other than delivery-status as an embedded message whose headers are
    the report's fields; a transfer-encoded part (seen in the wild, and allowed for the global forms) is a string
    that is decoded first."""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    payload = part.get_payload()
    if isinstance(payload, list) and encoding in {"", "7bit", "8bit", "binary"}:
        first = payload[0] if payload else None
        return first if isinstance(first, Message) else None
    if isinstance(payload, list):
        # Parsed as headers although encoded: the encoded text is the inner message's body (or its first field).
        inner = payload[0] if payload and isinstance(payload[0], Message) else None
        text = inner.as_string() if inner is not None else ""
        data = _decode(text, encoding)
    else:
        data = part.get_payload(decode=True) or b""
    text = data[:_FIELDS_CHARS].decode("utf-8", "replace")
    return HeaderParser(policy=compat32).parsestr(text)


def _decode(text: str, encoding: str) -> bytes:
    raw = text.encode("ascii", "replace")
    try:
        if encoding == "base64":
            return base64.b64decode(b"".join(raw.split()), validate=False)
        if encoding == "quoted-printable":
            return quopri.decodestring(raw)
    except (ValueError, TypeError):
        return b""
    return raw


def _message_id(value: str) -> str | None:
    """A normalised Message-ID, none longer than a line may be (RFC 5322 2.1.1)."""
    message_id = normalise_message_id(value[:1_000])
    return message_id if message_id and len(message_id) <= 998 else None


def _field(fields: Message | None, name: str) -> str:
    if fields is None:
        return ""
    return " ".join(str(fields.get(name) or "").split())[:_FIELDS_CHARS]


def _embedded_message_id(content: MimeContent) -> str | None:
    """The Message-ID of the original a report quotes (a message/rfc822 or text/rfc822-headers part)."""
    for embedded in content.embedded:
        message_id = _message_id(str(embedded.get("Message-ID") or ""))
        if message_id:
            return message_id
    for part in content.reports:
        if part.get_content_type() == "text/rfc822-headers":
            data = (part.get_payload(decode=True) or b"")[:_FIELDS_CHARS]
            headers = HeaderParser(policy=compat32).parsestr(data.decode("utf-8", "replace"))
            message_id = _message_id(str(headers.get("Message-ID") or ""))
            if message_id:
                return message_id
    return None


def _report_type(message: Message, headers: dict[str, str], content: MimeContent) -> str | None:
    """The report-type, or None when the message is no report; `UNSPECIFIED` when a multipart/report names none."""
    parts = [REPORT_PARTS[part.get_content_type()] for part in content.reports
             if part.get_content_type() in REPORT_PARTS]
    if message.get_content_type() == "multipart/report":
        declared = _token(message.get_param("report-type"))
        if declared:
            return declared
        return parts[0] if parts else UNSPECIFIED
    if parts:
        return parts[0]
    if headers.get("tls-report-domain", "").strip() and headers.get("tls-report-submitter", "").strip():
        return TLSRPT
    return None


def find_report(message: Message, headers: dict[str, str], content: MimeContent) -> MachineReport | None:
    """The machine report this message is, or None for any other mail. `headers` has lower-case keys."""
    report_type = _report_type(message, headers, content)
    if report_type is None:
        return None
    reason = _REASONS.get(report_type, f"machine report ({report_type})")
    if report_type == DISPOSITION_NOTIFICATION:
        fields = next((report_fields(part) for part in content.reports
                       if REPORT_PARTS.get(part.get_content_type()) == DISPOSITION_NOTIFICATION), None)
        # RFC 8098 3.2.5: Original-Message-ID is the Message-ID of the message the receipt is for; without it,
        # the quoted original's own Message-ID (Outlook attaches its headers).
        original = _message_id(_field(fields, "Original-Message-ID")) or _embedded_message_id(content)
        # RFC 8098 3.2.6: "action-mode/sending-mode; disposition-type" (displayed, deleted, dispatched...).
        disposition = _token(_field(fields, "Disposition").rpartition(";")[2].split("/")[0])
        return MachineReport(report_type, f"{reason}: {disposition}" if disposition else reason,
                             original_message_id=original, disposition=disposition)
    if report_type == FEEDBACK_REPORT:
        fields = next((report_fields(part) for part in content.reports
                       if REPORT_PARTS.get(part.get_content_type()) == FEEDBACK_REPORT), None)
        # RFC 5965 3.1: abuse, fraud, other, virus (and not-spam, RFC 6430).
        feedback_type = _token(_field(fields, "Feedback-Type"))
        return MachineReport(report_type, f"{reason}: {feedback_type}" if feedback_type else reason,
                             original_message_id=_embedded_message_id(content), feedback_type=feedback_type)
    return MachineReport(report_type, reason)
