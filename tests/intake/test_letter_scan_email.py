"""Scan-to-email: the copier's format parsed (pure), then letters published through the real pipeline on a real NATS."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import date, datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.intake.letters.metadata import LetterInvalid, letter_message_key
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.letters.scan_to_email import (
    LETTER_DATE_TOO_OLD,
    ScanToEmail,
    letter_date_check,
    parse_key_value_lines,
    parse_scan_email,
)
from services.intake.settings import IntakeSettings
from shared import streams
from shared.events import Channel, MessageReceived, Provenance
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from shared.settings import SettingsError, load_settings
from tests.intake.letter_support import make_pdf
from tests.intake.support import stream_events

TODAY = date(2026, 11, 24)
SCANS = "scans@ombudsdesk.localhost"
BODY = """\
Nom: Jan Peeters
Adresse: Wetstraat 16
  1000 Brussel
Langue: nl
Date reception: 20/11/2026
Date cachet: 19/11/2026
Pages: 1
Reference archive: BOX-2026-118/1
Agent: a.dubois
Device name: XRX-WorkCentre-7845
"""


def scan_mail(body: str = BODY, pdfs: int = 1, metadata_json: dict | None = None, pages: int = 1,
              message_id: str = "<scan-42@copier.local>", salt: bytes = b"") -> bytes:
    message = EmailMessage()
    message["From"] = "copieur@ombudsdesk.localhost"
    message["To"] = SCANS
    message["Subject"] = "Scan from XRX-WorkCentre-7845"
    message["Message-ID"] = message_id
    message.set_content(body)
    for number in range(pdfs):
        message.add_attachment(make_pdf(pages) + b"%" + bytes([number]) + salt, maintype="application", subtype="pdf",
                               filename=f"Scan_{number:04d}.pdf")
    if metadata_json is not None:
        message.add_attachment(json.dumps(metadata_json).encode(), maintype="application", subtype="json",
                               filename="metadata.json")
    return bytes(message)


def test_key_value_lines_with_continuations_and_copier_noise():
    fields = parse_key_value_lines(BODY)
    assert fields["Adresse"] == "Wetstraat 16\n1000 Brussel"
    assert fields["Date reception"] == "20/11/2026"
    assert "Device name" not in fields


def test_parse_scan_email_body_metadata():
    scan = parse_scan_email(scan_mail())
    assert scan.filename == "Scan_0000.pdf"
    assert scan.pdf.startswith(b"%PDF-")
    assert scan.source == "scan e-mail <scan-42@copier.local>"
    assert scan.fields["Nom"] == "Jan Peeters"


def test_parse_scan_email_json_attachment_wins_over_the_body():
    scan = parse_scan_email(scan_mail(body="Scanned on XRX", metadata_json={"nom": "Anna Schmidt", "pages": 1}))
    assert scan.fields == {"nom": "Anna Schmidt", "pages": 1}


def test_scan_without_pdf_or_with_two_or_without_metadata_is_refused_with_reasons():
    with pytest.raises(LetterInvalid, match="no PDF attached"):
        parse_scan_email(scan_mail(pdfs=0))
    with pytest.raises(LetterInvalid, match="2 PDFs attached"):
        parse_scan_email(scan_mail(pdfs=2))
    with pytest.raises(LetterInvalid, match=r"\(body\): no metadata"):
        parse_scan_email(scan_mail(body="Scanned on XRX-WorkCentre"))


@pytest.fixture
async def scan_to_email(nats_server, tmp_path: Path) -> AsyncIterator[ScanToEmail]:
    settings = IntakeSettings(nats_url=nats_server.url)
    broker = make_broker(settings)
    await broker.connect()
    await ensure_streams(broker.connection.jetstream())
    pipeline = IntakePipeline(broker, settings)
    yield ScanToEmail(pipeline, [SCANS], tmp_path / "letters" / "rejected", today=lambda: TODAY, language="en",
                      scan_senders=["copieur@ombudsdesk.localhost"])
    await pipeline.drain()
    pipeline.close()
    await broker.stop()


# The copier logged in on the submission port (SMTP AUTH over TLS).
SUBMISSION = Provenance(peer_ip="192.0.2.50", peer_helo="xrx-7845", authenticated_as="copieur")


async def accept(router: ScanToEmail, raw: bytes, recipient: str = SCANS,
                 sender: str = "copieur@ombudsdesk.localhost", provenance: Provenance = SUBMISSION):
    return await router.accept(raw, channel=Channel.EMAIL, received_at=datetime(2026, 11, 24, 10, tzinfo=timezone.utc),
                               envelope_sender=sender, envelope_recipients=[recipient], source="smtp",
                               provenance=provenance)


async def letters(nats_url: str) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(data)
            for data in await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]


async def test_scan_mail_becomes_one_letter_with_its_receipt_date(nats_server, scan_to_email):
    raw = scan_mail()
    first = await accept(scan_to_email, raw)
    again = await accept(scan_to_email, raw)  # the copier's SMTP retry

    assert (first.status, again.status) == (AcceptStatus.PROCESSED, AcceptStatus.DUPLICATE)
    [event] = await letters(nats_server.url)
    assert event.channel is Channel.LETTER
    assert event.letter_received_on == date(2026, 11, 20)  # not the 24th, when the copier mailed it
    assert event.sender.postal_address == "Wetstraat 16\n1000 Brussel"
    assert (event.sender.language, event.letter_scanned_by) == ("nl", "a.dubois")
    assert event.message_key == letter_message_key(parse_scan_email(raw).pdf)
    assert event.source == "smtp:scan-to-email"
    assert event.needs_confirmation is None  # received 4 days before the scan


async def test_invalid_scan_mail_is_kept_in_rejected_with_the_reason(nats_server, scan_to_email, tmp_path):
    raw = scan_mail(body=BODY.replace("Pages: 1", "Pages: 3").replace("Langue: nl", "Langue: klingon"))
    outcome = await accept(scan_to_email, raw)

    assert outcome.status is AcceptStatus.QUARANTINED
    assert await letters(nats_server.url) == []
    rejected = tmp_path / "letters" / "rejected"
    [reason] = rejected.glob("*.reason.txt")
    text = reason.read_text()
    assert "scan e-mail <scan-42@copier.local>: language: 'klingon' is not one of" in text
    assert "pages: 3 declared but the PDF has 1 page(s)" in text
    assert (rejected / reason.name.replace(".reason.txt", ".eml")).read_bytes() == raw


async def test_mail_to_a_complaint_address_goes_through_the_normal_pipeline(nats_server, scan_to_email):
    message = EmailMessage()
    message["From"] = "Jeanne Dupont <jeanne@example.org>"
    message["To"] = "plaintes@ombudsdesk.localhost"
    message["Subject"] = "Réclamation"
    message["Message-ID"] = "<complaint-1@example.org>"
    message.set_content("Bonjour, je conteste la facture.")
    outcome = await accept(scan_to_email, bytes(message), recipient="plaintes@ombudsdesk.localhost")
    assert outcome.status is AcceptStatus.PROCESSED
    [event] = await letters(nats_server.url)
    assert event.channel is Channel.EMAIL and event.sender.email == "jeanne@example.org"


async def test_a_scan_from_a_sender_who_is_not_a_configured_copier_is_refused(nats_server, scan_to_email, tmp_path):
    """A scan's metadata sets the legal start date: a stranger must not be able to backdate a complaint."""
    outcome = await accept(scan_to_email, scan_mail(), sender="forger@example.org")
    assert outcome.status is AcceptStatus.QUARANTINED
    assert await letters(nats_server.url) == []
    [reason] = (tmp_path / "letters" / "rejected").glob("*.reason.txt")
    assert "forger@example.org is not an authorised copier" in reason.read_text(encoding="utf-8")


def test_scan_addresses_without_authorised_copiers_stop_the_start_with_a_clear_message():
    with pytest.raises(SettingsError, match="OMBUDSDESK_LETTERS_SCAN_SENDERS"):
        load_settings(IntakeSettings, letters_scan_addresses=[SCANS])


async def test_a_scan_not_sent_over_the_authenticated_submission_port_is_refused(nats_server, scan_to_email, tmp_path):
    """The envelope sender and From are the copier's, but anyone can write those on port 25."""
    outcome = await accept(scan_to_email, scan_mail(), provenance=Provenance(peer_ip="198.51.100.7",
                                                                            peer_helo="copier.local"))
    assert outcome.status is AcceptStatus.QUARANTINED
    assert await letters(nats_server.url) == []
    [reason] = (tmp_path / "letters" / "rejected").glob("*.reason.txt")
    assert "a scan is accepted only over the authenticated submission port (SMTP AUTH)" in reason.read_text()


async def test_a_scan_from_a_staff_imap_mailbox_is_taken(nats_server, scan_to_email):
    outcome = await accept(scan_to_email, scan_mail(), provenance=Provenance(staff_mailbox=True))
    assert outcome.status is AcceptStatus.PROCESSED


async def test_a_receipt_date_long_before_the_scan_is_held_for_staff_not_registered_silently(nats_server,
                                                                                            scan_to_email):
    # Scanned on 2026-11-24: the 25th of October is 30 days before (taken), the 24th 31 days (held); a mistyped
    # year is held too.
    cases = {"25/10/2026": None, "24/10/2026": LETTER_DATE_TOO_OLD, "20/11/2025": LETTER_DATE_TOO_OLD}
    for number, received in enumerate(cases):
        body = BODY.replace("20/11/2026", received).replace("Date cachet: 19/11/2026\n", "")
        outcome = await accept(scan_to_email, scan_mail(body=body, message_id=f"<scan-old-{number}@copier.local>",
                                                        salt=f"%letter {number}".encode()))
        assert outcome.status is AcceptStatus.PROCESSED, received
    events = await letters(nats_server.url)
    held = {event.letter_received_on.isoformat(): event.needs_confirmation for event in events}
    assert held == {"2026-10-25": None, "2026-10-24": LETTER_DATE_TOO_OLD, "2025-11-20": LETTER_DATE_TOO_OLD}


def test_letter_date_check_counts_whole_days_before_the_scan():
    assert letter_date_check(date(2026, 10, 25), date(2026, 11, 24), 30) is None
    assert letter_date_check(date(2026, 10, 24), date(2026, 11, 24), 30) == LETTER_DATE_TOO_OLD
    assert letter_date_check(date(2026, 11, 24), date(2026, 11, 24), 0) is None
    assert letter_date_check(date(2026, 11, 23), date(2026, 11, 24), 0) == LETTER_DATE_TOO_OLD


async def test_a_rejected_scan_is_never_written_through_a_link_in_place_of_rejected(nats_server, scan_to_email,
                                                                                   tmp_path, monkeypatch):
    """Security review of issue 10: `rejected/` is reached from the letters root's descriptor, one level at a time.
    A link planted in its place is refused; swapped in after it was opened, it redirects nothing."""
    from services.intake.letters import scan_to_email as module
    from services.intake.letters.safe_files import UnsafeEntry

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    letters_root = tmp_path / "letters"
    letters_root.mkdir()
    (letters_root / "rejected").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeEntry, match="not a directory of ours"):
        await accept(scan_to_email, scan_mail(), sender="forger@example.org")
    assert os.listdir(elsewhere) == []

    (letters_root / "rejected").unlink()
    real_write = module.write_new_file
    aside = letters_root / "rejected.aside"

    def swap_then_write(directory: int, name: str, content: bytes) -> None:
        if not aside.exists():  # after rejected/ was opened, before anything is written into it
            (letters_root / "rejected").rename(aside)
            (letters_root / "rejected").symlink_to(elsewhere, target_is_directory=True)
        real_write(directory, name, content)

    monkeypatch.setattr(module, "write_new_file", swap_then_write)
    outcome = await accept(scan_to_email, scan_mail(), sender="forger@example.org")
    assert outcome.status is AcceptStatus.QUARANTINED
    assert os.listdir(elsewhere) == []
    assert sorted(path.suffix for path in aside.iterdir()) == [".eml", ".txt"]
