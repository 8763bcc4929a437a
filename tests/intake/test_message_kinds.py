"""Staff forwards, follow-up references, machine mail and bounces, pure (no server)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from services.intake.message.forwarding import parse_loose_date
from services.intake.message.references import case_numbers
from services.intake.message.understanding import ParseContext, understand

STAFF = ParseContext(staff_addresses=frozenset({"accueil@commune.example.be"}),
                     staff_domains=frozenset({"ombudsdesk.localhost"}))


def mail(body: str, sender: str = "Marie Accueil <accueil@commune.example.be>", subject: str = "TR: plainte",
         **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "plaintes@ombudsdesk.localhost"
    message["Subject"] = subject
    message["Date"] = "Tue, 24 Nov 2026 09:15:00 +0100"
    message["Message-ID"] = "<fwd-1@commune.example.be>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


INLINE_FORWARDS = {
    "gmail-en": ("---------- Forwarded message ---------\nFrom: Jeanne Dupont <jeanne@example.org>\n"
                 "Date: Mon, 2 Nov 2026 at 10:15\nSubject: Facture contestée\nTo: <accueil@commune.example.be>\n\n"),
    "thunderbird-fr": ("-------- Message transféré --------\nSujet : Facture contestée\nDate : 2 novembre 2026 10:15\n"
                       "De : Jeanne Dupont <jeanne@example.org>\nPour : accueil@commune.example.be\n\n"),
    "outlook-fr": ("-----Message d'origine-----\nDe : Jeanne Dupont [mailto:jeanne@example.org]\n"
                   "Envoyé : lundi 2 novembre 2026 10:15\nÀ : Accueil\nObjet : Facture contestée\n\n"),
    "outlook-nl": ("-----Oorspronkelijk bericht-----\nVan: Jeanne Dupont <jeanne@example.org>\n"
                   "Verzonden: maandag 2 november 2026 10:15\nAan: Accueil\nOnderwerp: Facture contestée\n\n"),
    "nl-doorgestuurd": ("-------- Doorgestuurd bericht --------\nOnderwerp: Facture contestée\n"
                        "Datum: 2 nov. 2026 10:15\nVan: Jeanne Dupont <jeanne@example.org>\n\n"),
    "de": ("-------- Weitergeleitete Nachricht --------\nBetreff: Facture contestée\nDatum: 02.11.2026 10:15\n"
           "Von: Jeanne Dupont <jeanne@example.org>\nAn: accueil@commune.example.be\n\n"),
    "outlook-bare-block": ("________________________________\nFrom: Jeanne Dupont <jeanne@example.org>\n"
                           "Sent: Monday, November 2, 2026 10:15 AM\nTo: Accueil\nSubject: Facture contestée\n\n"),
    "apple": ("Begin forwarded message:\n\n> From: Jeanne Dupont <jeanne@example.org>\n"
              "> Subject: Facture contestée\n> Date: 2 November 2026 at 10:15:00 CET\n> To: accueil@commune.example.be\n"
              ">\n"),
}


@pytest.mark.parametrize("style", sorted(INLINE_FORWARDS))
def test_inline_forward_by_staff_names_the_original_sender_and_date(style):
    citizen_text = "Madame, Monsieur,\nJe conteste la facture du 15 octobre.\nJeanne Dupont"
    if style == "apple":
        citizen_text = "\n".join("> " + line for line in citizen_text.splitlines())
    body = "Bonjour, ceci est pour vous.\nMarie\n\n" + INLINE_FORWARDS[style] + citizen_text + "\n"
    result = understand(mail(body), STAFF)
    assert result.sender.email == "jeanne@example.org"
    assert result.sender.name == "Jeanne Dupont"
    assert result.forwarded_by is not None and result.forwarded_by.email == "accueil@commune.example.be"
    assert result.subject == "Facture contestée"
    assert result.sent_at is not None and (result.sent_at.year, result.sent_at.month, result.sent_at.day) == (2026, 11, 2)
    # Every style shows 10:15 on the forwarder's Belgian clock (Apple writes CET): 09:15 UTC, not 10:15 UTC.
    assert result.sent_at == datetime(2026, 11, 2, 9, 15, tzinfo=timezone.utc)
    assert "Je conteste la facture du 15 octobre." in result.text
    assert "ceci est pour vous" not in result.text
    assert result.automated_reason is None


def test_forward_as_attached_message_rfc822():
    original = EmailMessage()
    original["From"] = "Pieter Janssens <pieter@example.be>"
    original["Subject"] = "Klacht over de wachttijd"
    original["Date"] = "Fri, 30 Oct 2026 16:02:00 +0100"
    original.set_content("Ik wacht al drie maanden op een antwoord van de dienst.")
    forward = EmailMessage()
    forward["From"] = "Balie <balie@ombudsdesk.localhost>"
    forward["Subject"] = "Fwd: Klacht over de wachttijd"
    forward.set_content("Ter info.")
    forward.add_attachment(original)
    result = understand(forward.as_bytes(), STAFF)
    assert result.sender.email == "pieter@example.be"
    assert result.forwarded_by is not None and result.forwarded_by.email == "balie@ombudsdesk.localhost"
    assert result.sent_at == datetime(2026, 10, 30, 15, 2, tzinfo=timezone.utc)
    assert result.subject == "Klacht over de wachttijd"
    assert "drie maanden" in result.text
    assert result.language == "nl"


def test_forward_from_somebody_not_staff_is_an_ordinary_mail():
    body = "Voici mon premier message.\n\n" + INLINE_FORWARDS["gmail-en"] + "Texte.\n"
    result = understand(mail(body, sender="Jeanne Dupont <jeanne@example.org>"), STAFF)
    assert result.sender.email == "jeanne@example.org"
    assert result.forwarded_by is None


def test_loose_dates_of_quoted_headers():
    # A time a mail client printed without a zone is the forwarder's wall clock in Belgium, not UTC: 10:15 on
    # 2 November (winter, CET = UTC+1, EU summer time ended on 25 October 2026) is 09:15 UTC; 1:05 PM on
    # 2 November is 12:05 UTC; in summer (CEST = UTC+2) 10:15 is 08:15 UTC.
    assert parse_loose_date("lundi 2 novembre 2026 10:15") == datetime(2026, 11, 2, 9, 15, tzinfo=timezone.utc)
    assert parse_loose_date("Monday, November 2, 2026 1:05 PM") == datetime(2026, 11, 2, 12, 5, tzinfo=timezone.utc)
    assert parse_loose_date("02.11.2026 10:15") == datetime(2026, 11, 2, 9, 15, tzinfo=timezone.utc)
    assert parse_loose_date("2 juillet 2026 10:15") == datetime(2026, 7, 2, 8, 15, tzinfo=timezone.utc)
    # A zone written after the time wins: CET is UTC+1 whatever the season, UTC is UTC.
    assert parse_loose_date("2 November 2026 at 10:15:00 CET") == datetime(2026, 11, 2, 9, 15, tzinfo=timezone.utc)
    assert parse_loose_date("2 juillet 2026 10:15 UTC") == datetime(2026, 7, 2, 10, 15, tzinfo=timezone.utc)
    # Late in the evening the day stays the one written, seen from Brussels (23:30 CET is 22:30 UTC).
    late = parse_loose_date("lundi 2 novembre 2026 23:30")
    assert late == datetime(2026, 11, 2, 22, 30, tzinfo=timezone.utc)
    assert late.astimezone(ZoneInfo("Europe/Brussels")).date() == date(2026, 11, 2)
    # A date alone is that day in Brussels (its midnight, 23:00 UTC the day before in winter).
    assert parse_loose_date("2 mrt. 2026") == datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc)
    assert parse_loose_date("soon") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Re: [MED-2026-00042] ma plainte", ("MED-2026-00042",)),
        ("Concerne votre dossier med 2026 42 et MED/2026/00042", ("MED-2026-00042",)),
        ("Réf. MED – 2026 – 7, aussi (MED-2025-00100)", ("MED-2026-00007", "MED-2025-00100")),
        ("Dossier MED-2026-0 et MEDIA-2026-00001 et XMED-2026-00001", ()),
    ],
)
def test_case_numbers_are_found_however_typed(text, expected):
    assert case_numbers([text], "MED", 5) == expected


def test_follow_up_references_to_our_mail():
    raw = mail("Merci pour votre réponse.", sender="jeanne@example.org", subject="Re: Votre plainte [MED-2026-00042]",
               In_Reply_To="<notice.7@ombudsdesk.localhost>",
               References="<first@example.org> <notice.7@ombudsdesk.localhost>")
    result = understand(raw, ParseContext())
    assert result.in_reply_to == "notice.7@ombudsdesk.localhost"
    assert result.references == ("first@example.org", "notice.7@ombudsdesk.localhost")
    assert result.our_references == ("notice.7@ombudsdesk.localhost",)
    assert result.case_numbers == ("MED-2026-00042",)
    assert result.automated_reason is None


@pytest.mark.parametrize(
    ("headers", "subject", "sender", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Re: plainte", "jeanne@example.org", "Auto-Submitted"),
        ({"Auto_Submitted": "no"}, "Re: plainte", "jeanne@example.org", None),
        # Issue 10: X-Auto-Response-Suppress asks us not to auto-reply; it does not make a person's mail a machine's
        # (test_machines.py checks that it suppresses the acknowledgment).
        ({"X_Auto_Response_Suppress": "All"}, "Réunion", "jeanne@example.org", None),
        ({"Precedence": "bulk"}, "Newsletter", "news@example.org", "Precedence"),
        ({"List_Id": "<citoyens.example.org>"}, "Débat", "jeanne@example.org", "mailing list"),
        ({}, "Absent du bureau jusqu'au 3 décembre", "jeanne@example.org", "out-of-office"),
        ({}, "Automatisch antwoord: Klacht", "jan@example.be", "out-of-office"),
        ({}, "Abwesenheitsnotiz: Beschwerde", "hans@example.de", "out-of-office"),
        ({}, "Automatic reply: your complaint", "john@example.com", "out-of-office"),
        ({}, "Out of Office: complaint", "john@example.com", "out-of-office"),
        ({}, "Absence de réponse de vos services", "jeanne@example.org", None),
        ({}, "Votre avis", "noreply@example.org", "machine sender"),
    ],
)
def test_machine_mail_is_recognised(headers, subject, sender, reason):
    result = understand(mail("Texte.", sender=sender, subject=subject, **headers), ParseContext())
    if reason is None:
        assert result.automated_reason is None
    else:
        assert reason in (result.automated_reason or "")


def test_our_own_mail_coming_back_is_recognised():
    message = EmailMessage()
    message["From"] = "plaintes@ombudsdesk.localhost"
    message["Subject"] = "Accusé de réception [MED-2026-00001]"
    message["Message-ID"] = "<ack.1@ombudsdesk.localhost>"
    message.set_content("Nous avons bien reçu votre plainte.")
    assert understand(message.as_bytes(), ParseContext()).automated_reason == "our own outgoing mail"


def test_null_envelope_sender_is_a_machine():
    raw = mail("Texte.", sender="jeanne@example.org", subject="Info")
    assert understand(raw, ParseContext(envelope_sender="")).automated_reason is not None


DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r
To: plaintes@ombudsdesk.localhost\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r
\r
--B\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.org\r
\r
Final-Recipient: rfc822; jeanne.dupont@example.org\r
Original-Recipient: rfc822;jeanne.dupont@example.org\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <jeanne.dupont@example.org>: Recipient address rejected\r
--B\r
Content-Type: text/rfc822-headers\r
\r
From: plaintes@ombudsdesk.localhost\r
To: jeanne.dupont@example.org\r
Subject: Accuse de reception [MED-2026-00001]\r
Message-ID: <ack.MED-2026-00001@ombudsdesk.localhost>\r
--B--\r
"""


def test_rfc3464_report_names_the_failed_address_and_our_message():
    result = understand(DSN, ParseContext())
    assert result.bounce is not None
    assert result.bounce.failed_recipient == "jeanne.dupont@example.org"
    assert result.bounce.original_message_id == "ack.MED-2026-00001@ombudsdesk.localhost"
    assert result.bounce.status == "5.1.1"
    assert "Recipient address rejected" in (result.bounce.diagnostic or "")


def test_delayed_report_is_not_a_failure():
    delayed = DSN.replace(b"Action: failed", b"Action: delayed").replace(b"Status: 5.1.1", b"Status: 4.4.7")
    result = understand(delayed, ParseContext())
    assert result.bounce is None
    assert result.automated_reason is not None


def test_qmail_style_free_text_bounce():
    raw = (b"From: MAILER-DAEMON@mail.example.net\r\nTo: plaintes@ombudsdesk.localhost\r\n"
           b"Subject: failure notice\r\n\r\nHi. This is the qmail-send program at mail.example.net.\r\n"
           b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
           b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
           b"<pieter@example.be>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
           b"--- Below this line is a copy of the message.\r\n\r\nMessage-ID: <ack.9@ombudsdesk.localhost>\r\n"
           b"Subject: Ontvangstbevestiging\r\n")
    result = understand(raw, ParseContext())
    assert result.bounce is not None
    assert result.bounce.failed_recipient == "pieter@example.be"
    assert result.bounce.original_message_id == "ack.9@ombudsdesk.localhost"
    assert result.bounce.status == "5.1.1"
