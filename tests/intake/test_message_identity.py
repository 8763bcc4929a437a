"""Two different mails never share a message key, even when a web form reuses one Message-ID within the same
second with the same Subject (review of issue 3: the second complaint was dropped as a duplicate); copies of one
mail (SMTP retry, IMAP copy with trace headers and other line endings) still share it."""

from __future__ import annotations

from shared import streams
from shared.events import MessageReceived
from services.intake.message.message_key import message_key
from tests.intake.support import asend, citizen_mail, running_intake, settled, stream_events

WEB_FORM_ID = "<contact-form@mairie.example.org>"


def web_form_mail(body: str) -> bytes:
    return citizen_mail(subject="Formulaire de contact", body=body, sender="formulaire@mairie.example.org",
                        message_id=WEB_FORM_ID).as_bytes()


def test_same_message_id_from_date_and_subject_but_another_body_is_another_message():
    first = web_form_mail("Nom : Jeanne Dupont\nMa facture d'eau est fausse.\n")
    second = web_form_mail("Nom : Pierre Martin\nLe bus ne passe plus dans ma rue.\n")
    assert message_key(first) != message_key(second)
    assert message_key(first).startswith("mid-")


def test_copies_of_one_mail_keep_one_key():
    smtp_copy = web_form_mail("Nom : Jeanne Dupont\nMa facture d'eau est fausse.\n").replace(b"\n", b"\r\n")
    imap_copy = (b"Return-Path: <formulaire@mairie.example.org>\nDelivered-To: plaintes@ombudsdesk.localhost\n"
                 b"Received: from mx.example.org by imap.example.org; Tue, 24 Nov 2026 09:16:00 +0100\n"
                 + smtp_copy.replace(b"\r\n", b"\n") + b"\n")
    assert message_key(smtp_copy) == message_key(imap_copy)
    assert message_key(smtp_copy) == message_key(smtp_copy.rstrip(b"\r\n"))


async def test_two_web_form_complaints_with_one_message_id_give_two_events(nats_server, tmp_path):
    bodies = ["Nom : Jeanne Dupont\nMa facture d'eau est fausse.\n",
              "Nom : Pierre Martin\nLe bus ne passe plus dans ma rue.\n"]
    async with running_intake(nats_server.url, tmp_path) as intake:
        for body in bodies:
            await asend(intake.smtp_port, web_form_mail(body), sender="formulaire@mairie.example.org")
        await asend(intake.smtp_port, web_form_mail(bodies[0]), sender="formulaire@mairie.example.org")  # a retry
        await settled(intake)
    events = [MessageReceived.model_validate_json(data)
              for data in await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)]
    assert sorted(event.text.splitlines()[0] for event in events) == ["Nom : Jeanne Dupont", "Nom : Pierre Martin"]
    assert len({event.message_key for event in events}) == 2
