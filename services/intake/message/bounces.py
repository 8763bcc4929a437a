"""Delivery status notifications (pure): which of our mails failed, for which address, and why.

Standard reports are RFC 3464 `multipart/report; report-type=delivery-status` with a `message/delivery-status` part
(per-recipient `Action`, `Status`, `Original-Recipient`, `Final-Recipient`, `Diagnostic-Code`) and the original
message or its headers. Many servers still send older free-text formats (qmail's "<addr>:" paragraphs, Exim's "The
following address(es) failed", Exchange's "Undeliverable", GroupWise, Yahoo, AOL...): their failed addresses are
read by `flufl.bounce` (GNU Mailman's detectors of the formats of common MTAs and providers), by Exim's
`X-Failed-Recipients` header, and failing those from the text. Only permanent failures (`Action: failed`, 5.x.x)
make a `BounceReport`; a "delayed" notice is merely a machine's mail (see automation.py and reports.py).

A mail is read as a free-text bounce only on evidence that a machine wrote it (a mailer-daemon or postmaster
sender, no sender, a null `Return-Path`, `X-Failed-Recipients`), or a bounce subject with
failure sentences and a quoted original: a citizen's complaint titled "Colis non remis" is a complaint.

Bounded work: the subject and every line are cut (regex_bounds) before any pattern; flufl.bounce, whose patterns
were not written for hostile input, only sees mail that looks like a bounce, cut to `FLUFL_BYTES` and
`FLUFL_LINES` lines of at most `FLUFL_LINE_CHARS` (its detectors try some forty patterns on every line, and some
of its address patterns cost a pass over the rest of the line from each position).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

from flufl.bounce import all_failures

from services.intake.message.message_key import normalise_message_id
from services.intake.message.mime import MimeContent
from services.intake.message.regex_bounds import LINE_CHARS, bounded_subject, bounded_text

# flufl.bounce logs every detector it runs, and the traceback of a detector that fails on a hostile message (its
# text may carry personal data): its records stay out of our logs, the failure is handled below.
_FLUFL_LOG = logging.getLogger("flufl.bounce")
_FLUFL_LOG.addHandler(logging.NullHandler())
_FLUFL_LOG.propagate = False

FLUFL_BYTES = 64 * 1024
FLUFL_LINES = 2_000
FLUFL_LINE_CHARS = 500


@dataclass(frozen=True)
class BounceReport:
    original_message_id: str | None
    failed_recipient: str | None
    status: str | None
    diagnostic: str | None


_DELIVERY_STATUS_PARTS = {"message/delivery-status", "message/global-delivery-status"}
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
# `[ \t]*`, not `\s*`: `\s` crosses line ends, and then every line start of a run of blank lines rescans the rest
# of the run (quadratic on "\n" * 40000).
_MESSAGE_ID_LINE = re.compile(r"^[ \t]*+Message-ID:[ \t]*+(<[^>\s]++>)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"\b([45]\.\d{1,3}\.\d{1,3})\b")
_FAILED_MARKERS = re.compile(
    r"(failed|could not be delivered|undeliverable|unknown user|user unknown|does not exist|no such user"
    r"|mailbox unavailable|recipient rejected|address rejected|unzustellbar|onbestelbaar|non remis)",
    re.IGNORECASE,
)


def _fields(block: Message) -> dict[str, str]:
    return {str(name).lower(): " ".join(str(value)[: 2 * LINE_CHARS].split()) for name, value in block.items()}


def _address_of(field_value: str) -> str | None:
    # "rfc822; jeanne@example.org" (RFC 3464 2.3.2)
    _, _, address = field_value.rpartition(";")
    match = _ADDRESS.search(address or field_value)
    return match.group(0).lower() if match else None


def _original_message_id(content: MimeContent, text: str) -> str | None:
    for embedded in content.embedded:
        message_id = normalise_message_id(str(embedded.get("Message-ID") or "")[:LINE_CHARS])
        if message_id:
            return message_id
    for part in content.reports:
        if part.get_content_type() == "text/rfc822-headers":
            payload = (part.get_payload(decode=True) or b"")[: 16 * LINE_CHARS]
            headers = HeaderParser(policy=compat32).parsestr(bounded_text(payload.decode("utf-8", "replace")))
            message_id = normalise_message_id(str(headers.get("Message-ID") or "")[:LINE_CHARS])
            if message_id:
                return message_id
    match = _MESSAGE_ID_LINE.search(text)
    return normalise_message_id(match.group(1)) if match else None


def _standard(content: MimeContent, text: str) -> BounceReport | None | bool:
    """The failed recipient of an RFC 3464 report; False when the report says nothing failed (delayed, delivered);
    None when the report part carries no per-recipient fields at all (a malformed report: read the text)."""
    saw_action = False
    for part in content.reports:
        if part.get_content_type() not in _DELIVERY_STATUS_PARTS:
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks:
            if not isinstance(block, Message):
                continue
            fields = _fields(block)
            action = fields.get("action", "").lower()
            status = fields.get("status", "")
            saw_action = saw_action or bool(action or status)
            # RFC 3464 2.3.3 says "failed"; "failure" and OpenSMTPD's "error" are seen in the wild.
            if action.startswith(("fail", "error")) or (not action and status.startswith("5")):
                # The Original-Recipient is the address as we sent it (RFC 3464 2.3.1): an alias expanded on the
                # way has another Final-Recipient, and the notifier matches the address it sent to.
                recipient = (_address_of(fields.get("original-recipient", ""))
                             or _address_of(fields.get("final-recipient", "")))
                diagnostic = fields.get("diagnostic-code", "").partition(";")[2].strip()[:300] or None
                return BounceReport(_original_message_id(content, text), recipient, status[:100] or None, diagnostic)
    return False if saw_action else None


def _flufl_failures(message: Message) -> tuple[list[str], list[str]]:
    """The (temporarily, permanently) failed addresses flufl.bounce finds, read from a bounded copy of the message."""
    try:
        data = message.as_bytes()
    except Exception:  # noqa: BLE001 - a message the generator cannot write back is read as text
        try:
            data = message.as_string().encode("utf-8", "surrogateescape")
        except Exception:  # noqa: BLE001
            return [], []
    data = b"\n".join(line[:FLUFL_LINE_CHARS] for line in data[:FLUFL_BYTES].splitlines()[:FLUFL_LINES])
    try:
        temporary, permanent = all_failures(BytesParser(policy=compat32).parsebytes(data))
    except Exception:  # noqa: BLE001 - a detector failing on a malformed bounce means it found nothing
        return [], []
    return _addresses(temporary), _addresses(permanent)


def _addresses(found: object) -> list[str]:
    addresses: list[str] = []
    for address in found if isinstance(found, (set, frozenset, list, tuple)) else ():
        text = address.decode("ascii", "replace") if isinstance(address, bytes) else str(address)
        match = _ADDRESS.fullmatch(text.strip())
        if match:
            addresses.append(match.group(0).lower())
    return addresses


def _header_failures(headers: dict[str, str]) -> list[str]:
    """Exim's `X-Failed-Recipients: a@x, b@y` on its bounces."""
    return [address.lower() for address in _ADDRESS.findall(headers.get("x-failed-recipients", "")[:LINE_CHARS])]


def _in_text_order(addresses: list[str], text: str) -> list[str]:
    lowered = text.lower()
    positions = {address: lowered.find(address) for address in addresses}
    return sorted(dict.fromkeys(addresses), key=lambda address: (positions[address] < 0, positions[address], address))


def _from_machine(headers: dict[str, str], sender_email: str | None) -> bool:
    # Not `Auto-Submitted` alone: vacation replies carry it too (RFC 3834 5), and a vacation reply read as a bounce
    # would flag the citizen's address as undeliverable.
    sender_local = (sender_email or "").partition("@")[0]
    return (
        not sender_email
        or bool(_BOUNCE_SENDER.match(sender_local))
        or headers.get("return-path", "").strip().replace(" ", "") == "<>"
        or bool(headers.get("x-failed-recipients", "").strip())
    )


def _free_text(
    content: MimeContent, text: str, sender_email: str | None, own_addresses: set[str], known: list[str]
) -> BounceReport:
    def usable(address: str) -> bool:
        return address != sender_email and address not in own_addresses and not _BOUNCE_SENDER.match(address)

    failed: str | None = next((address for address in _in_text_order(known, text) if usable(address)), None)
    lines = text.splitlines()
    if failed is None:
        for line in lines:
            if _FAILED_MARKERS.search(line) or line.strip().startswith("<"):
                failed = next((a.lower() for a in _ADDRESS.findall(line) if usable(a.lower())), None)
            if failed:
                break
    if failed is None:
        failed = next((a.lower() for a in _ADDRESS.findall(text) if usable(a.lower())), None)
    status = _STATUS.search(text)
    diagnostic = next((line.strip()[:300] for line in lines if _FAILED_MARKERS.search(line)), None)
    return BounceReport(_original_message_id(content, text), failed, status.group(1) if status else None, diagnostic)


@dataclass(frozen=True)
class DeliveryNotice:
    """A delivery notification: a permanent failure (`bounce`), or a delay, warning or relay notice (no bounce)."""

    bounce: BounceReport | None
    reason: str


def read_delivery_notice(
    message: Message, headers: dict[str, str], content: MimeContent, sender_email: str | None
) -> DeliveryNotice | None:
    """The delivery notification this message is, or None for any other mail. `headers` has lower-case keys."""
    text = bounded_text(content.text)
    subject = bounded_subject(headers.get("subject", ""))
    # The bounce goes back to the original sender (us): our own address is never the failed one.
    own = {address.lower() for address in _ADDRESS.findall(headers.get("to", "")[:LINE_CHARS])}
    is_report = message.get_content_type() == "multipart/report" and str(
        message.get_param("report-type") or ""
    ).strip().lower() == "delivery-status"
    if is_report or any(part.get_content_type() in _DELIVERY_STATUS_PARTS for part in content.reports):
        standard = _standard(content, text)
        if standard is False:
            return DeliveryNotice(None, "delivery status notification without a failure (delayed, relayed)")
        if isinstance(standard, BounceReport):
            if standard.failed_recipient is None:
                # "Final-Recipient: rfc822;user@host-without-dot" and the like: the other readers may know better.
                known = _header_failures(headers) or _flufl_failures(message)[1]
                usable = [address for address in _in_text_order(known, text) if address not in own]
                standard = replace(standard, failed_recipient=usable[0] if usable else None)
            return DeliveryNotice(standard, "delivery status notification")
        bounce = _free_text(content, text, sender_email, own, _header_failures(headers) or _flufl_failures(message)[1])
        return DeliveryNotice(bounce, "delivery status notification")
    delay_subject = bool(_DELAY_SUBJECT.search(subject)) and not headers.get("x-failed-recipients", "").strip()
    bounce_subject = bool(_BOUNCE_SUBJECT.search(subject)) and not delay_subject
    machine = _from_machine(headers, sender_email)
    if not (bounce_subject or machine):
        return None
    temporary, permanent = _flufl_failures(message)
    known = _header_failures(headers) or permanent
    if delay_subject:
        # "Warning: message delayed", "Delivery Status Notification (Delay)": a machine's notice, never a failure.
        return DeliveryNotice(None, "delivery delay notice") if (machine or temporary or permanent) else None
    quoted_original = bool(content.embedded) or any(
        part.get_content_type() == "text/rfc822-headers" for part in content.reports)
    written_by_machine = machine and (bounce_subject or bool(known))
    reads_as_bounce = bounce_subject and bool(_FAILED_MARKERS.search(text[:5000])) and (bool(known) or quoted_original)
    if written_by_machine or reads_as_bounce:
        return DeliveryNotice(_free_text(content, text, sender_email, own, known), "delivery status notification")
    if temporary and (bounce_subject or machine):
        # flufl.bounce recognised a delivery software's sentences, about a failure not (yet) permanent.
        return DeliveryNotice(None, "delivery notice without a permanent failure")
    return None


def parse_bounce(
    message: Message, headers: dict[str, str], content: MimeContent, sender_email: str | None
) -> BounceReport | None:
    """The permanent failure this message reports, or None (see `read_delivery_notice`)."""
    notice = read_delivery_notice(message, headers, content, sender_email)
    return notice.bounce if notice else None
