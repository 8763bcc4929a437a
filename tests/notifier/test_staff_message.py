"""A message staff write to the citizen (`staff_message`): through real NATS, the notifier's outbox and relay, to a
real SMTP server (and to the print queue for a complainant without email), in each language, hostile text included."""

from __future__ import annotations

import io
from html.parser import HTMLParser

from pypdf import PdfReader

from services.notifier.wiring import NotifierService
from shared.events import NoticeRequested, Party
from tests.notifier.support import SmtpSink, eventually, publish, publish_duplicate, wait_until

NUMBER = "MED-2026-00042"


def staff_message(key: str, recipient: Party, text: str, **context: object) -> NoticeRequested:
    # The registry's request_notice sends the complaint's own facts along with the message (ignored here).
    return NoticeRequested(request_key=f"staff_message:{NUMBER}:{key}", complaint_number=NUMBER,
                           notice_kind="staff_message", recipient=recipient,
                           context={"complaint_number": NUMBER, "subject": "Pension", "text": text, **context},
                           reply_to_message_id="<citizen-1@example.org>")


def plain(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def html(mail) -> str:
    return mail.get_body(("html",)).get_content()


# Words only a notice of that language has: its frame (salutation, "reply to this message", closing).
FRAME = {
    "fr": ("réclamation", "répondre à ce message", "salutations distinguées"),
    "nl": ("klacht", "antwoorden", "Met vriendelijke groeten"),
    "de": ("Beschwerde", "antworten", "Mit freundlichen Grüßen"),
    "en": ("complaint", "replying to this message", "Yours faithfully"),
}


async def test_a_staff_message_goes_out_once_in_the_language_chosen_or_the_citizens(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    requests = {
        # No language chosen: the citizen's.
        "fr": staff_message("1", Party(name="Jeanne Dupont", email="jeanne@example.org", language="fr"),
                            "Pourriez-vous nous envoyer la décision du 3 mars ?", language=None),
        "nl": staff_message("2", Party(name="Jan Janssens", email="jan@example.be", language="nl"),
                            "Kunt u ons de beslissing van 3 maart bezorgen?"),
        # Staff chose German for a citizen recorded as French-speaking.
        "de": staff_message("3", Party(name="Anna Schmitz", email="anna@example.de", language="fr"),
                            "Könnten Sie uns den Bescheid vom 3. März schicken?", language="de"),
        "en": staff_message("4", Party(name="John Smith", email="john@example.com", language="nl"),
                            "Could you send us the decision of 3 March?", language="en"),
    }
    await publish(nats_server.url, *requests.values())
    await publish_duplicate(nats_server.url, requests["nl"])  # a replay: the outbox key stops a second mail
    await wait_until(lambda: len(smtp_sink.messages) >= 4, what="four staff messages")

    async def all_sent() -> bool:
        return [n.status for n in await running_notifier.outbox.notices()] == ["sent"] * 4

    await eventually(all_sent, what="four notices recorded as sent")
    mails = {mail["Content-Language"]: mail for mail in smtp_sink.messages}
    assert sorted(mails) == ["de", "en", "fr", "nl"] and len(smtp_sink.messages) == 4
    for language, request in requests.items():
        mail = mails[language]
        body = plain(mail)
        assert mail["To"].addresses[0].addr_spec == request.recipient.email
        assert mail["Subject"].startswith(f"[{NUMBER}] ") and FRAME[language][0] in mail["Subject"]
        assert request.context["text"] in body and request.context["text"] in html(mail)
        assert NUMBER in body and mail["In-Reply-To"] == "<citizen-1@example.org>"
        for word in FRAME[language]:
            assert word in body, (language, word)
        others = {word for other, words in FRAME.items() if other != language for word in words}
        assert not [word for word in others if word in body], language
    assert "Dear John Smith," in plain(mails["en"]) and "Guten Tag Anna Schmitz," in plain(mails["de"])


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)


HOSTILE = ('<script>alert("x")</script>\n'
           '<a href="http://evil.example/login">Cliquez ici</a> & <img src=x onerror=alert(1)>\n'
           '{{ org.name }} {% raw %}')


async def test_hostile_staff_text_is_escaped_in_html_and_kept_in_plain_text(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    await publish(nats_server.url, staff_message(
        "hostile", Party(name="Jeanne Dupont", email="jeanne@example.org", language="fr"), HOSTILE))
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the message")
    [mail] = smtp_sink.messages
    assert HOSTILE.splitlines()[0] in plain(mail) and "{{ org.name }} {% raw %}" in plain(mail)
    document = html(mail)
    elements = _Elements()
    elements.feed(document)
    assert not {"script", "a", "img"} & set(elements.tags)
    assert not [name for name, _value in elements.attributes if name in ("href", "onerror", "src")]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in document
    assert "&lt;a href=&#34;http://evil.example/login&#34;&gt;Cliquez ici&lt;/a&gt; &amp; &lt;img" in document


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_a_complainant_without_email_gets_the_staff_message_as_a_letter(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    postal = Party(name="Marie Lambert", postal_address="Rue des Tanneurs 12\n4000 Liège", language="nl")
    await publish(nats_server.url, staff_message(
        "letter", postal, "Nous avons reçu le document.\nMerci de votre patience.", language="fr"))

    async def queued() -> bool:
        return len(await running_notifier.outbox.print_queue()) == 1

    await eventually(queued, what="a letter in the print queue")
    [letter] = await running_notifier.outbox.print_queue()
    text = pdf_text(letter.letter_pdf)
    assert "Marie Lambert" in text and "4000 Liège" in text and f"Ref. {NUMBER}" in text
    assert "Nous avons reçu le document." in text and "Merci de votre patience." in text
    assert f"merci de mentionner le numéro {NUMBER}" in text  # on paper, no "reply to this message"
    assert "répondre à ce message" not in text
    assert smtp_sink.messages == []
