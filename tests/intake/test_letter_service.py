"""Letters and IMAP through the assembled intake service (`build_intake`): the drop folder watched, scan-to-email
over a real SMTP conversation, and a Dovecot mailbox polled, each ending as events in a real JetStream."""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from shared import streams
from shared.events import Channel, MessageReceived
from tests.clock import brussels_yesterday
from tests.intake.letter_support import make_pdf, metadata
from tests.intake.imap_support import append_mails, sample_mail, wait_for_marks
from tests.intake.support import running_intake, settled, stream_events
from tests.intake.test_smtp_protocol import self_signed_certificate

SCANS = "scans@ombudsdesk.localhost"
# Yesterday in Brussels (the letters' zone), not the test machine's: never "in the future", whatever the hour.
RECEIVED = brussels_yesterday()
T = TypeVar("T")
COPIER_LOGIN = ("copieur", "scan-pass-1")


def submission_settings(tmp_path: Path) -> dict[str, Any]:
    """A scan is taken only over the authenticated submission port: STARTTLS, then SMTP AUTH as the copier."""
    cert, key = self_signed_certificate(tmp_path)
    return {"smtp_tls_cert_file": cert, "smtp_tls_key_file": key, "smtp_auth_users": dict([COPIER_LOGIN])}


async def submit(port: int, tmp_path: Path, message: EmailMessage | bytes) -> dict[str, Any]:
    def conversation() -> dict[str, Any]:
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        context.check_hostname = False
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.starttls(context=context)
            client.login(*COPIER_LOGIN)
            if isinstance(message, EmailMessage):
                return client.send_message(message, from_addr="copieur@ombudsdesk.localhost", to_addrs=[SCANS])
            return client.sendmail("copieur@ombudsdesk.localhost", [SCANS], message)

    return await asyncio.to_thread(conversation)


async def wait_for_received(nats_url: str, count: int, timeout: float = 15.0) -> list[MessageReceived]:
    deadline = time.monotonic() + timeout
    while True:
        events = [MessageReceived.model_validate_json(data)
                  for data in await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.1)


async def eventually(probe: Callable[[], Awaitable[T]], accept: Callable[[T], object], timeout: float = 10.0) -> T:
    """The probe's first answer that `accept` likes (or the last one, for the assertion to show)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await probe()
        if accept(answer) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.05)


async def test_the_service_watches_the_drop_folder(nats_server, tmp_path):
    letters = tmp_path / "letters"
    async with running_intake(nats_server.url, tmp_path, letters_dir=letters, letters_poll_seconds=0.1,
                              letters_settle_seconds=0.2) as intake:
        (letters / "courrier.pdf").write_bytes(make_pdf(2))
        (letters / "courrier.json").write_text(json.dumps(metadata(received_on=RECEIVED.isoformat(),
                                                                   postmarked_on=None)))
        [event] = await wait_for_received(nats_server.url, 1)
        assert event.channel is Channel.LETTER and event.letter_received_on == RECEIVED
        health = await eventually(intake.health_report,
                                  lambda report: report[1]["letters"]["imported_since_start"] == 1)
    assert (letters / "processed" / "courrier.pdf").exists()  # moved once the event was durable
    assert health[1]["letters"]["rejected_since_start"] == 0


async def test_scan_to_email_over_smtp_becomes_a_letter(nats_server, tmp_path):
    message = EmailMessage()
    message["From"] = "copieur@ombudsdesk.localhost"
    message["To"] = SCANS
    message["Subject"] = "Scan"
    message["Message-ID"] = "<scan-smtp-1@copier.local>"
    message.set_content("name: Anna Schmidt\naddress: Rue Haute 1, 4700 Eupen\nlanguage: de\n"
                        f"received_on: {RECEIVED.isoformat()}\npages: 1\narchive_reference: B-7\n"
                        "staff_member: a.dubois\n")
    message.add_attachment(make_pdf(1), maintype="application", subtype="pdf", filename="scan.pdf")
    async with running_intake(nats_server.url, tmp_path, letters_scan_addresses=[SCANS],
                              letters_scan_senders=["@ombudsdesk.localhost"],
                              **submission_settings(tmp_path)) as intake:
        assert await submit(intake.smtp_port, tmp_path, message) == {}
        await settled(intake)
        [event] = await wait_for_received(nats_server.url, 1, timeout=1)  # published once the spool is worked
    assert event.channel is Channel.LETTER
    assert (event.sender.name, event.sender.language, event.source) == ("Anna Schmidt", "de", "smtp:scan-to-email")


async def test_the_service_polls_the_configured_imap_mailboxes(nats_server, dovecot, tmp_path):
    append_mails(dovecot, [sample_mail(number) for number in range(3)])
    mailbox = {"name": "guichet", "host": dovecot.host, "port": dovecot.port, "ssl": False,
               "username": dovecot.user, "password": dovecot.password,
               "recipient": "plaintes@ombudsdesk.localhost"}
    async with running_intake(nats_server.url, tmp_path, imap_mailboxes=[mailbox], imap_idle_seconds=30) as intake:
        events = await wait_for_received(nats_server.url, 3)
        marked = await wait_for_marks(dovecot, 3)
        health = await eventually(intake.health_report, lambda report: report[1]["imap"][0]["last_sync_at"])
    assert len(events) == 3 and {event.source for event in events} == {"imap:guichet"}
    assert len(marked) == 3
    [mailbox_health] = health[1]["imap"]
    assert mailbox_health["taken_in_since_start"] == 3 and mailbox_health["consecutive_failures"] == 0
    assert dovecot.password not in json.dumps(health) and dovecot.user not in json.dumps(health)


async def test_a_copier_mailbox_read_over_imap_gives_letters(nats_server, dovecot, tmp_path):
    message = EmailMessage()
    message["From"] = "copieur@ombudsdesk.localhost"
    message["To"] = SCANS
    message["Subject"] = "Scan"
    message["Message-ID"] = "<scan-imap-1@copier.local>"
    message.set_content(f"nom: Jan Peeters\nadresse: Wetstraat 16, 1000 Brussel\nlangue: nl\n"
                        f"date_reception: {RECEIVED.isoformat()}\npages: 1\nreference_archive: B-8\nagent: a.d\n")
    message.add_attachment(make_pdf(1), maintype="application", subtype="pdf", filename="scan.pdf")
    append_mails(dovecot, [bytes(message)])
    mailbox = {"name": "copieur", "host": dovecot.host, "port": dovecot.port, "ssl": False,
               "username": dovecot.user, "password": dovecot.password, "recipient": SCANS, "staff": True}
    async with running_intake(nats_server.url, tmp_path, imap_mailboxes=[mailbox], letters_scan_addresses=[SCANS],
                              letters_scan_senders=["@ombudsdesk.localhost"]):
        [event] = await wait_for_received(nats_server.url, 1)
        assert len(await wait_for_marks(dovecot, 1)) == 1
    assert event.channel is Channel.LETTER and event.source == "imap:copieur:scan-to-email"


async def test_a_scan_mail_with_a_malformed_part_is_rejected_not_451_for_ever(nats_server, tmp_path):
    """The email package raises on this Content-Disposition (IndexError in get_filename): a rejection with the
    reason, answered 250, instead of a 451 the copier would retry for ever (review of issue 3)."""
    body = ("name: Anna Schmidt\r\naddress: Rue Haute 1, 4700 Eupen\r\nlanguage: de\r\n"
            f"received_on: {RECEIVED.isoformat()}\r\npages: 1\r\narchive_reference: B-7\r\nstaff_member: a.dubois\r\n")
    raw = (b"From: copieur@ombudsdesk.localhost\r\nTo: " + SCANS.encode() + b"\r\nSubject: Scan\r\n"
           b"Message-ID: <scan-malformed@copier.local>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
           + body.encode() + b"--B\r\nContent-Type: application/pdf\r\n"
           b"Content-Disposition: attachment; filename*=\"'\"'\r\n\r\n" + make_pdf(1) + b"\r\n--B--\r\n")
    letters = tmp_path / "letters"
    async with running_intake(nats_server.url, tmp_path, letters_dir=letters, letters_scan_addresses=[SCANS],
                              letters_scan_senders=["@ombudsdesk.localhost"],
                              **submission_settings(tmp_path)) as intake:
        assert await submit(intake.smtp_port, tmp_path, raw) == {}
        await settled(intake)
    [reason] = (letters / "rejected").glob("*.reason.txt")
    assert "scan e-mail <scan-malformed@copier.local>" in reason.read_text()
    assert await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED) == []
