"""Scan-to-email: a copier (or a staff member) mails one scanned letter as a PDF to a configured address, with the
letter's metadata as `key: value` lines in the body or as a JSON attachment (format in docs/intake-letters.md).

`parse_scan_email` is pure: raw message in, the PDF and its raw fields out, or `LetterInvalid` naming every problem.
`ScanToEmail` sits in front of the pipeline: mail to a scan address takes the letter path (validated like a dropped
letter, `letters.intake.accept_letter`), everything else goes on to `IntakePipeline.accept` untouched; both end in
that one call.
An invalid scan is never half-imported: the raw mail is kept in the letters' `rejected/` folder with a reason file.

A scan's metadata sets a complaint's legal start date, so trust comes from the channel, never from what the mail
says (docs/security.md): a scan is taken only when it came over the authenticated submission port (SMTP AUTH,
RFC 4954: `Provenance.authenticated_as`) or from an IMAP mailbox configured as staff's, and from an authorised
copier. A receipt date more than `max_age_days` before the scan is published with `needs_confirmation =
"letter_date_too_old"`: the registry holds it for staff to confirm, never registers it silently in a past year.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from pathlib import Path, PurePosixPath, PureWindowsPath

import structlog

from services.intake.letters.safe_files import open_directory, own_directory, write_new_file
from services.intake.message.addresses import mailboxes, principal
from services.intake.message.html_text import html_to_text
from services.intake.letters.intake import accept_letter
from services.intake.letters.messages import DEFAULT_LANGUAGE, render
from services.intake.letters.metadata import (
    LetterInvalid,
    LetterProblem,
    count_pdf_pages,
    looks_like_pdf,
    normalise_fields,
    parse_sidecar,
    validate_letter,
)
from services.intake.message.message_key import message_key, raw_message_id
from services.intake.channels.acceptor import MessageAcceptor
from services.intake.arrival import AcceptOutcome, AcceptStatus, Arrival
from shared import observability
from shared.events import Provenance

log = structlog.get_logger(__name__)

# The reason code for which the registry holds a scanned letter whose receipt date is long before its scan.
LETTER_DATE_TOO_OLD = "letter_date_too_old"

# `Key: value` at the start of a line; the key may hold letters, digits, spaces, `-` and `_` (French accents too).
_KEY_VALUE = re.compile(r"^\s*([A-Za-zÀ-ÿ][\wÀ-ÿ \-]{0,40}?)\s*:\s?(.*)$")


@dataclass(frozen=True)
class ScanEmail:
    pdf: bytes
    filename: str
    fields: dict[str, object]
    source: str


def parse_key_value_lines(text: str) -> dict[str, str]:
    """The known `key: value` lines of a body. An indented line continues the previous value (a multi-line postal
    address, as in RFC 5322 header folding). Lines with unknown keys are skipped: copiers add their own
    (`Device name: ...`), and a mistyped required field is reported as missing anyway."""
    fields: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if current is not None and line[:1] in (" ", "\t") and line.strip():
            fields[current] = f"{fields[current]}\n{line.strip()}".strip()
            continue
        current = None
        match = _KEY_VALUE.match(line)
        if not match:
            continue
        key = match.group(1).strip()
        canonical, _ = normalise_fields({key: ""})
        if canonical:
            current = key
            fields[key] = match.group(2).strip()
    return fields


def _safe_filename(name: str | None) -> str:
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip() if name else ""
    return base if base.lower().endswith(".pdf") else (base + ".pdf" if base else "scan.pdf")


def _body_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = body.get_content()
    return html_to_text(text) if body.get_content_type() == "text/html" else text


def _pdf_parts(parts: Iterable[EmailMessage]) -> list[tuple[str, bytes]]:
    found = []
    for part in parts:
        data = part.get_payload(decode=True) or b""
        name = part.get_filename()
        declared = part.get_content_type() == "application/pdf" or (name or "").lower().endswith(".pdf")
        if declared or looks_like_pdf(data):
            found.append((_safe_filename(name), data))
    return found


def parse_scan_email(raw: bytes) -> ScanEmail:
    """The PDF and the metadata fields of a scan-to-email message; `LetterInvalid` lists every problem."""
    message_id = raw_message_id(raw)
    source = f"scan e-mail <{message_id}>" if message_id else "scan e-mail"
    try:
        return _read_scan_email(raw, source)
    except LetterInvalid:
        raise
    except Exception as error:  # noqa: BLE001 - any unreadable structure is a rejection, never a crash (or a 451
        # for ever): a malformed part can make the email package raise anywhere, in get_filename as in decoding.
        raise LetterInvalid([LetterProblem(source, "(message)", "unreadable_mail", {"error": str(error)})]) from None


def _read_scan_email(raw: bytes, source: str) -> ScanEmail:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    attachments = list(message.iter_attachments())
    body = _body_text(message)
    problems: list[LetterProblem] = []
    pdfs = _pdf_parts(attachments)
    if not pdfs:
        problems.append(LetterProblem(source, "(attachment)", "no_pdf_attached"))
    elif len(pdfs) > 1:
        problems.append(LetterProblem(source, "(attachment)", "several_pdfs", {"count": len(pdfs)}))
    json_parts = [part for part in attachments if part.get_content_type() == "application/json"
                  or (part.get_filename() or "").lower().endswith(".json")]
    fields: dict[str, object] = {}
    if len(json_parts) > 1:
        problems.append(LetterProblem(source, "(attachment)", "several_json"))
    elif json_parts:
        try:
            fields = parse_sidecar(json_parts[0].get_payload(decode=True) or b"", source)
        except LetterInvalid as invalid:
            problems.extend(invalid.problems)
    else:
        fields = dict(parse_key_value_lines(body))
        if not fields:
            problems.append(LetterProblem(source, "(body)", "no_body_metadata"))
    if problems:
        raise LetterInvalid(problems)
    filename, pdf = pdfs[0]
    return ScanEmail(pdf=pdf, filename=filename, fields=fields, source=source)


def letter_date_check(received_on: date, scanned_on: date, max_age_days: int) -> str | None:
    """`LETTER_DATE_TOO_OLD` when the legal receipt date lies more than `max_age_days` before the scan (a mistyped
    year, or a backdated letter): staff confirm it before it counts; None otherwise."""
    return LETTER_DATE_TOO_OLD if (scanned_on - received_on).days > max_age_days else None


def header_sender(raw: bytes) -> str | None:
    """The From address, parsed from the raw header (`addresses`: never from a decoded display name)."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    mailbox = principal(mailboxes(headers.get("From"), [], "from"))
    return mailbox.email if mailbox else None


class ScanToEmail:
    """In front of the pipeline: letters from the copier's address, everything else passed through."""

    def __init__(
        self,
        pipeline: MessageAcceptor,
        scan_addresses: Sequence[str],
        rejected_dir: Path,
        today: Callable[[], date],
        language: str = DEFAULT_LANGUAGE,
        scan_senders: Sequence[str] = (),
        max_age_days: int = 30,
    ) -> None:
        self.pipeline = pipeline
        self.scan_addresses = {address.strip().lower() for address in scan_addresses}
        self.scan_senders = {sender.strip().lower() for sender in scan_senders}
        self.rejected_dir = Path(rejected_dir)
        self.today = today
        # The language of the reason files staff read.
        self.language = language
        # A receipt date older than this (in days before the scan) is held for staff to confirm.
        self.max_age_days = max_age_days

    def is_scan(self, envelope_recipients: Sequence[str]) -> bool:
        return any(recipient.strip().lower() in self.scan_addresses for recipient in envelope_recipients)

    @staticmethod
    def is_authenticated(provenance: Provenance) -> bool:
        """Whether the channel itself proves the mail comes from inside: an SMTP AUTH login (the submission port),
        or an IMAP mailbox configured as staff's (outsiders cannot write into it). A From header proves nothing."""
        return bool(provenance.authenticated_as) or provenance.staff_mailbox

    def is_authorised_copier(self, envelope_sender: str | None) -> bool:
        """A scan's metadata sets the legal start date: only the configured copiers may send one."""
        sender = (envelope_sender or "").strip().lower()
        return bool(sender) and (sender in self.scan_senders or "@" + sender.rpartition("@")[2] in self.scan_senders)

    async def accept(self, raw: bytes, arrival: Arrival | None = None, **details: object) -> AcceptOutcome:
        arrival = arrival or Arrival.of(**details)  # type: ignore[arg-type]
        if not self.is_scan(arrival.envelope_recipients):
            return await self.pipeline.accept(raw, arrival=arrival)
        return await self._accept_scan_mail(raw, arrival.envelope_sender, arrival.source, arrival.provenance)

    async def _accept_scan_mail(
        self, raw: bytes, envelope_sender: str | None, source: str, provenance: Provenance
    ) -> AcceptOutcome:
        if not self.is_authenticated(provenance):
            return await self._reject(raw, LetterInvalid([LetterProblem(source, "sender", "scan_not_authenticated")]))
        # IMAP gives no envelope: the copier's mailbox, configured by staff, is then the trust boundary and the
        # From header names the copier.
        sender = envelope_sender or header_sender(raw)
        if not self.is_authorised_copier(sender):
            return await self._reject(raw, LetterInvalid([LetterProblem(
                source, "sender", "scan_sender_not_authorised", {"sender": sender or "<>"})]))
        return await self.accept_scan(raw, source=source)

    async def accept_scan(self, raw: bytes, *, source: str) -> AcceptOutcome:
        """Publish the scanned letter, or keep the mail in `rejected/` with the reasons; raises on infrastructure
        failure only (so SMTP answers 451 and IMAP leaves the mail unmarked)."""
        scanned_on = self.today()
        try:
            scan = parse_scan_email(raw)
            metadata = validate_letter(scan.fields, scan.source, today=scanned_on,
                                       pdf_pages=count_pdf_pages(scan.pdf))
        except LetterInvalid as invalid:
            return await self._reject(raw, invalid)
        needs_confirmation = letter_date_check(metadata.received_on, scanned_on, self.max_age_days)
        if needs_confirmation:
            log.warning("letters.scan_held_for_confirmation", reason=needs_confirmation,
                        age_days=(scanned_on - metadata.received_on).days)
        return await accept_letter(self.pipeline, scan.pdf, scan.filename, metadata,
                                   source=f"{source}:scan-to-email", submitted_fields=scan.fields,
                                   needs_confirmation=needs_confirmation)

    async def _reject(self, raw: bytes, invalid: LetterInvalid) -> AcceptOutcome:
        # Named after the message key: a retry of the same mail rewrites the same two files.
        key = message_key(raw)
        name = f"scan-email-{key[:24]}"
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        header = render("scan_reason_header", self.language, stamp=stamp, count=len(invalid.problems))
        # In a worker thread: the letters folder is often a network share, and the event loop serves SMTP.
        await asyncio.to_thread(self._write_rejected, name, f"{header}\n\n{invalid.report(self.language)}", raw)
        # Field and code only: a problem's parameters may hold the sender's address or other personal data.
        observability.mail_refused("scan_to_email", "letter_rejected")
        log.warning("letters.scan_email_rejected", file=f"{name}.eml",
                    problems=[f"{problem.field}:{problem.code}" for problem in invalid.problems])
        # "Quarantined" to the SMTP and IMAP channels: kept aside safely with a reason, not to be retried by them.
        return AcceptOutcome(AcceptStatus.QUARANTINED, key, reason=f"letter rejected: {invalid}")

    def _write_rejected(self, name: str, reason: str, raw: bytes) -> None:
        """Into our own `rejected/` only: never through a symbolic link planted there (safe_files.py). A name already
        there is the same mail rejected before (the name holds its key): that copy is kept."""
        # The letters root is the operator's (created as configured); `rejected` below it is reached from the root's
        # descriptor, created and opened without following a link (safe_files.own_directory).
        self.rejected_dir.parent.mkdir(parents=True, exist_ok=True)
        with (open_directory(self.rejected_dir.parent) as root,
              own_directory(root, self.rejected_dir.name) as directory):
            for file_name, content in ((f"{name}.eml", raw), (f"{name}.reason.txt", reason.encode("utf-8"))):
                try:
                    write_new_file(directory, file_name, content)
                except FileExistsError:
                    continue

