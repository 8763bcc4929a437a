"""Postal complainants: a printable PDF letter in the print queue, managed from the CLI; checked with pypdf."""

from __future__ import annotations

import asyncio
import io
from datetime import date

from pypdf import PdfReader
from typer.testing import CliRunner

from services.notifier.cli import app
from services.notifier.letters import build_letter_pdf
from shared import streams
from shared.events import NotificationSent, Party
from services.notifier.wiring import NotifierService
from tests.notifier.support import SmtpSink, eventually, publish, read_stream, registered_event

POSTAL = Party(name="Marie Lambert", postal_address="Rue des Tanneurs 12\n4000 Liège", language="fr")


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_letter_has_address_block_date_reference_and_text():
    pdf = build_letter_pdf(
        organisation_name="Service de médiation",
        organisation_address="Rue de la Loi 1\n1000 Bruxelles",
        recipient_name="Marie Lambert",
        postal_address="Rue des Tanneurs 12\n4000 Liège",
        reference="MED-2026-00003",
        letter_date=date(2026, 11, 25),
        language="fr",
        subject="[MED-2026-00003] Accusé de réception de votre réclamation",
        body="Madame, Monsieur,\n\nNous avons bien reçu votre réclamation – merci.\n",
    )
    text = pdf_text(pdf)
    for expected in ("Marie Lambert", "Rue des Tanneurs 12", "4000 Liège", "25 novembre 2026", "Ref. MED-2026-00003",
                     "Nous avons bien reçu votre réclamation - merci."):
        assert expected in text


async def test_postal_complainant_gets_a_letter_in_the_print_queue(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink, monkeypatch, tmp_path
):
    await publish(nats_server.url, registered_event("MED-2026-00003", channel="letter", complainant=POSTAL,
                                                    reply_to_message_id=None, references=()))

    async def queued() -> bool:
        return len(await running_notifier.outbox.print_queue()) == 1

    await eventually(queued, what="a letter in the print queue")
    [letter] = await running_notifier.outbox.print_queue()
    text = pdf_text(letter.letter_pdf)
    assert "Marie Lambert" in text and "4000 Liège" in text and "MED-2026-00003" in text
    assert "8 janvier 2027" in text and "ne suspend pas" in text
    assert "merci de mentionner le numéro MED-2026-00003" in text  # no "reply to this message" on paper
    assert smtp_sink.messages == []

    # The CLI reads the same database through the notifier's settings.
    monkeypatch.setenv("OMBUDSDESK_NOTIFIER_DATABASE_URL", running_notifier.settings.database_url)
    def cli(*args: str):
        # The CLI runs its own event loop, as it does from a terminal: run it off this test's loop.
        return asyncio.to_thread(CliRunner().invoke, app, list(args))

    listed = await cli("print-queue", "list")
    assert listed.exit_code == 0 and "MED-2026-00003" in listed.output and "4000 Liège" in listed.output
    target = tmp_path / "letter.pdf"
    assert (await cli("print-queue", "pdf", str(letter.id), str(target))).exit_code == 0
    assert "Marie Lambert" in pdf_text(target.read_bytes())
    done = await cli("print-queue", "done", str(letter.id), "--by", "agent")
    assert done.exit_code == 0, done.output
    assert "print queue empty" in (await cli("print-queue", "list")).output
    # The running notifier reports the posted letter, so the registry records the acknowledgment as sent.
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
    sent = NotificationSent.model_validate_json(raw)
    assert (sent.complaint_number, sent.notice_kind) == ("MED-2026-00003", "acknowledgment")
    assert sent.recipient == "post: Marie Lambert, Rue des Tanneurs 12, 4000 Liège"
    assert (await cli("print-queue", "done", str(letter.id))).exit_code == 1  # already printed
    assert "MED-2026-00003" in (await cli("print-queue", "list", "--all")).output
