"""A citizen's personal link (and survey link) is a bearer credential: the notifier's outbox keeps it only while the
notice may still go out. Against a real notifier (NATS, SMTP server, SQLite and PostgreSQL): the mail the citizen
gets carries the link; a notice waiting for a retry keeps it; once sent, failed for good, printed, or recorded as
never to go out, the stored text and HTML show a placeholder instead and a letter's PDF is gone — the rest of the
notice is what was sent."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from services.notifier.citizen_link import html_without_links, redacted, without_links
from services.notifier.handlers import utc_now
from services.notifier.wiring import MIGRATIONS, NotifierService
from shared.database import alembic_config, create_engine, upgrade_to_head
from shared.events import NoticeRequested, Party
from shared.sealing import LinkSeal
from tests.notifier.support import SmtpSink, eventually, insert_notice, publish, registered_event, wait_until

TOKEN = "0123456789abcdef" + "QWERTYUIOPASDFGHJKLZXCVBNM-_1234"
URL = f"https://public.example.be/my-file/{TOKEN}?lang=fr"
SURVEY_TOKEN = "fedcba9876543210" + "zxcvbnmasdfghjklqwertyuiop_-9876"
SURVEY_URL = f"https://public.example.be/survey/{SURVEY_TOKEN}?lang=nl"
# What the kept copy says instead of the link, in each language (what staff read in the outbox).
PLACEHOLDER_WORDS = {"fr": "lien personnel retiré", "nl": "persoonlijke link verwijderd",
                     "de": "persönlicher Link", "en": "personal link removed"}
REMOVED_EN = "[personal link removed from the kept copy]"


def _seal(tmp_path: Path) -> LinkSeal:
    # The key file the notifier started by `start_notifier` opens (its var_dir is tmp_path / "var").
    return LinkSeal(tmp_path / "var" / "citizen-link.key")


def _plain(message) -> str:
    return message.get_body(("plain",)).get_content()


async def _notice(service: NotifierService, number: str):
    [notice] = await service.outbox.notices(number)
    return notice


def test_only_our_links_are_replaced_and_the_rest_of_the_text_stays():
    text = (f"Bonjour,\nVotre lien : {URL}\nou sans langue https://other.example/my-file/{TOKEN}.\n"
            f"Notre site : https://www.mediateur.example.be/contact et {SURVEY_URL}\n")
    cleaned = without_links(text, "fr")
    assert TOKEN not in cleaned and SURVEY_TOKEN not in cleaned and "/my-file/" not in cleaned
    assert "https://www.mediateur.example.be/contact" in cleaned and cleaned.startswith("Bonjour,\nVotre lien : [")
    assert cleaned.count(PLACEHOLDER_WORDS["fr"]) == 3
    html = (f'<p>Votre lien : <a href="{URL}">{URL}</a><br>\n'
            f'Site : <a href="https://www.mediateur.example.be/">https://www.mediateur.example.be/</a></p>')
    cleaned_html = html_without_links(html, "nl")
    assert TOKEN not in cleaned_html and "<a href=\"https://www.mediateur.example.be/\">" in cleaned_html
    assert cleaned_html.startswith(f"<p>Votre lien : [{PLACEHOLDER_WORDS['nl']}")
    # A token-shaped string that is not one of our links (no path) and an unknown language (French then).
    assert without_links(f"ref {TOKEN}", "xx") == f"ref {TOKEN}"
    assert PLACEHOLDER_WORDS["fr"] in without_links(URL, "xx")
    # Nothing to write for a notice without a link; a letter's PDF goes with its link.
    assert redacted("Bonjour", "<p>Bonjour</p>", "fr", b"%PDF") == {}
    columns = redacted(f"Lien {URL}", "", "de", b"%PDF-1.4")
    assert columns["letter_pdf"] is None and PLACEHOLDER_WORDS["de"] in columns["body_text"]


def test_a_long_hostile_line_is_searched_in_linear_time():
    """Staff's free text reaches a notice: a run of a million characters made of address starts and no link, then a
    link, is cleaned at once (a pattern that tried every "https://" again would take hours on it: 4,000 starts
    already took seconds)."""
    run = "https://x.example/" * 60_000
    started = time.monotonic()
    cleaned = without_links(f"{run} {URL}", "en")
    html = html_without_links(f'<p>{run}<br>\n<a href="{URL}">{URL}</a></p>', "en")
    assert time.monotonic() - started < 20  # measured well under a second
    assert cleaned == f"{run} {REMOVED_EN}"
    assert html == f"<p>{run}<br>\n{REMOVED_EN}</p>"


async def test_the_acknowledgment_keeps_its_link_until_sent_then_not(start_notifier, nats_server,
                                                                     smtp_sink: SmtpSink, tmp_path: Path):
    sealed = _seal(tmp_path).seal(URL)
    # The first attempt is deferred, and the retry comes late enough to look at the notice waiting for it.
    service = await start_notifier(relay_retry_first_seconds=3, relay_retry_longest_seconds=3)
    smtp_sink.handler.fail_next("RCPT", "451 4.7.1 Greylisted, try again later")
    await publish(nats_server.url, registered_event("MED-2026-00011", citizen_link=sealed))

    async def waiting_for_retry() -> bool:
        notices = await service.outbox.notices("MED-2026-00011")
        return bool(notices) and notices[0].status == "pending" and notices[0].attempts == 1

    await eventually(waiting_for_retry, timeout=20, what="the deferred acknowledgment waiting for its retry")
    waiting = await _notice(service, "MED-2026-00011")
    assert URL in waiting.body_text and TOKEN in waiting.body_html  # the retry sends what is stored

    await wait_until(lambda: len(smtp_sink.messages) == 1, timeout=20, what="the acknowledgment sent")
    sent_text = _plain(smtp_sink.messages[0])
    assert URL in sent_text  # the citizen got the link

    async def sent() -> bool:
        return (await _notice(service, "MED-2026-00011")).status == "sent"

    await eventually(sent, timeout=20, what="the acknowledgment recorded as sent")
    kept = await _notice(service, "MED-2026-00011")
    assert TOKEN not in kept.body_text and TOKEN not in kept.body_html and "/my-file/" not in kept.body_html
    assert PLACEHOLDER_WORDS["fr"] in kept.body_text and PLACEHOLDER_WORDS["fr"] in kept.body_html
    # Only the link changed: the kept text is the text sent, the placeholder in the link's place.
    placeholder = kept.body_text[kept.body_text.index("["):kept.body_text.index("]") + 1]
    assert kept.body_text.replace(placeholder, URL).split() == sent_text.split()
    assert "MED-2026-00011" in kept.subject and kept.recipient == "jeanne.dupont@example.org"


@pytest.mark.parametrize(("kind", "url", "language"), [("citizen_link", URL, "en"),
                                                       ("survey_invitation", SURVEY_URL, "nl")],
                         ids=["citizen_link", "survey_invitation"])
async def test_link_notices_are_kept_without_their_link_once_sent(start_notifier, nats_server, smtp_sink: SmtpSink,
                                                                  tmp_path: Path, kind: str, url: str, language: str):
    sealed = _seal(tmp_path).seal(url)
    service = await start_notifier()
    await publish(nats_server.url, NoticeRequested(
        request_key=f"{kind}:MED-2026-00012:1", complaint_number="MED-2026-00012", notice_kind=kind,
        recipient=Party(name="Jeanne Dupont", email="jeanne.dupont@example.org"),
        context={"sealed_link": sealed, "language": language}))
    await wait_until(lambda: len(smtp_sink.messages) == 1, timeout=20, what=f"the {kind} notice sent")
    assert url in _plain(smtp_sink.messages[0])

    async def sent() -> bool:
        notices = await service.outbox.notices("MED-2026-00012")
        return bool(notices) and notices[0].status == "sent"

    await eventually(sent, timeout=20, what="the notice recorded as sent")
    kept = await _notice(service, "MED-2026-00012")
    token = url.rsplit("/", 1)[1].split("?")[0]
    assert token not in kept.body_text and token not in kept.body_html
    assert PLACEHOLDER_WORDS[language] in kept.body_text


async def test_a_notice_failed_for_good_or_never_to_go_out_keeps_no_link(start_notifier, nats_server,
                                                                          smtp_sink: SmtpSink, tmp_path: Path):
    seal = _seal(tmp_path)
    service = await start_notifier()
    smtp_sink.handler.fail_next("RCPT", "550 5.1.1 No such user")
    await publish(nats_server.url,
                  registered_event("MED-2026-00013", citizen_link=seal.seal(URL)),
                  # An acknowledgment intake said must not go out (an auto-reply loop guard): recorded suppressed.
                  registered_event("MED-2026-00014", message_key="key-14", citizen_link=seal.seal(URL),
                                   acknowledgment_suppressed="x_auto_response_suppress"))

    async def settled() -> bool:
        notices = {n.complaint_number: n.status for n in await service.outbox.notices()}
        return notices == {"MED-2026-00013": "failed", "MED-2026-00014": "suppressed"}

    await eventually(settled, timeout=20, what="one notice refused for good, one suppressed")
    for number in ("MED-2026-00013", "MED-2026-00014"):
        kept = await _notice(service, number)
        assert TOKEN not in kept.body_text and TOKEN not in kept.body_html, number
        assert PLACEHOLDER_WORDS["fr"] in kept.body_text, number
    assert smtp_sink.messages == []


async def test_a_printed_letter_keeps_its_text_without_the_link_and_no_pdf(start_notifier, nats_server,
                                                                           smtp_sink: SmtpSink, tmp_path: Path):
    service = await start_notifier()
    by_post = Party(name="Jeanne Dupont", postal_address="Rue Haute 5\n1000 Bruxelles")
    await publish(nats_server.url, registered_event("MED-2026-00015", complainant=by_post,
                                                    citizen_link=_seal(tmp_path).seal(URL)))

    async def queued() -> bool:
        return bool(await service.outbox.print_queue())

    await eventually(queued, timeout=20, what="the acknowledgment letter in the print queue")
    [letter] = await service.outbox.print_queue()
    assert URL in letter.body_text and letter.letter_pdf  # to print: the letter is the citizen's only copy
    assert await service.outbox.mark_printed(letter.id, "agent@med.be", utc_now())
    kept = await _notice(service, "MED-2026-00015")
    assert kept.status == "printed" and kept.letter_pdf is None
    assert TOKEN not in kept.body_text and PLACEHOLDER_WORDS["fr"] in kept.body_text
    assert "MED-2026-00015" in kept.body_text and kept.postal_address.startswith("Rue Haute")
    assert not await service.outbox.mark_printed(letter.id, "agent@med.be", utc_now())  # once only


async def test_the_upgrade_removes_links_from_notices_recorded_before(database_url):
    """Migration 0006: the notices already sent (or failed, suppressed, printed) lose their links; one still to go
    out keeps it; a notice without a link is untouched."""
    engine = create_engine(database_url)
    config = alembic_config(MIGRATIONS, engine.url.render_as_string(hide_password=False))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    html = f'<p>Votre lien : <a href="{URL}">{URL}</a></p>'
    rows = [("sent", "sent", f"Bonjour.\nVotre lien : {URL}\n", html, None),
            ("printed", "printed", f"Lien : {URL}\n", "", b"%PDF-1.4 letter"),
            ("pending", "pending", f"Lien : {URL}\n", html, None),
            ("plain", "sent", "Bonjour, rien d'autre. https://www.mediateur.example.be/\n", "<p>Bonjour</p>", None)]
    try:
        def to_0005(connection):
            config.attributes["connection"] = connection
            command.upgrade(config, "0005_legal_notices")

        async with engine.begin() as connection:
            await connection.run_sync(to_0005)
            for key, status, body, body_html, pdf in rows:
                await connection.execute(text(
                    "INSERT INTO notices (notification_key, complaint_number, notice_kind, channel, recipient,"
                    " recipient_name, postal_address, language, subject, body_text, body_html, letter_pdf,"
                    " message_id, \"references\", status, attempts, next_attempt_at, give_up_at, created_at,"
                    " outcome_published)"
                    " VALUES (:key, 'MED-2026-00001', 'acknowledgment', 'email', 'j@example.org', '', '', 'fr', 's',"
                    " :body, :html, :pdf, '<m@x>', '', :status, 1, :now, :now, :now, true)"),
                    {"key": key, "status": status, "body": body, "html": body_html, "pdf": pdf, "now": now})
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.connect() as connection:
            after = {key: (body, body_html, pdf) for key, body, body_html, pdf in (await connection.execute(text(
                "SELECT notification_key, body_text, body_html, letter_pdf FROM notices"))).all()}
    finally:
        await engine.dispose()
    for key in ("sent", "printed"):
        body, body_html, _pdf = after[key]
        assert TOKEN not in body and TOKEN not in body_html and PLACEHOLDER_WORDS["fr"] in body, key
    assert after["sent"][0].startswith("Bonjour.\nVotre lien : [")
    assert after["printed"][2] is None
    assert after["pending"] == (rows[2][2], html, None)
    assert after["plain"] == (rows[3][2], rows[3][3], None)


async def test_a_notice_erased_while_it_is_being_sent_stays_erased(database_url):
    """The security review's race: the notice is claimed (its text in the dispatcher's hands, link included), the
    file is erased while the relay talks, then the relay's 250 is recorded. Recording it must not write the claimed
    text (without its link) back over the erasure. Another file's notice, sent by the same statement (built once per
    shape), loses only its link."""
    from datetime import timedelta

    from services.notifier.outbox import Outbox
    from services.notifier.privacy import NotifierPrivacy
    from shared.events import PersonalDataErased

    engine = create_engine(database_url)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.begin() as connection:
            for key, number, name in (("ack", "MED-2026-00007", "Erased Citizen"),
                                      ("other", "MED-2026-00008", "Other Citizen")):
                await insert_notice(connection, notification_key=key, complaint_number=number, recipient_name=name,
                                    body_text=f"Bonjour {name}.\nVotre lien : {URL}\n",
                                    body_html=f'<a href="{URL}">{URL}</a>',
                                    next_attempt_at=now - timedelta(seconds=5))
        outbox = Outbox(engine)
        aware = now.replace(tzinfo=timezone.utc)
        claimed = await outbox.claim_due(aware, 10, timedelta(minutes=5))
        await NotifierPrivacy(engine).erase(PersonalDataErased(
            complaint_number="MED-2026-00007", erasure_id="e-1", mode="erased", reason="request"))
        for notice in claimed:
            await outbox.mark_sent(notice, aware)
        async with engine.connect() as connection:
            rows = {key: tuple(rest) for key, *rest in (await connection.execute(text(
                "SELECT notification_key, body_text, body_html, recipient, status, attempts FROM notices"))).all()}
    finally:
        await engine.dispose()
    assert [notice.notification_key for notice in claimed] == ["ack", "other"]
    assert rows["ack"][:3] == ("", "", "")
    assert rows["ack"][3:] == ("sent", 1)  # it did go out once: the documented exception, recorded as such
    body, html, recipient, status, attempts = rows["other"]
    assert URL not in body and URL not in html and body.startswith("Bonjour Other Citizen.\nVotre lien : [")
    assert (recipient, status, attempts) == ("citizen@example.org", "sent", 1)
