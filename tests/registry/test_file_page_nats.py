"""The file page's parts that live beyond the registry's database, each against the real thing: the answer to the
citizen previewed by the real notifier over NATS request/reply before it is sent, and the raw original and the
attachments downloaded from intake's JetStream object stores. Database: SQLite and PostgreSQL (`backoffice_app`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from html import unescape

import nats
import pytest

from services.notifier.wiring import build_notifier
from services.registry import commands
from services.registry.access.roles import Role
from services.registry.backoffice.pages.file_originals import OriginalStore
from services.registry.notice_preview import NoticePreviewer
from shared import streams
from shared.events import AttachmentRef, MessageReceived, NoticeRequested, Party
from shared.stream_admin import ensure_streams
from tests.backoffice.conftest import TEST_CSRF, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import principal
from tests.notifier.conftest import notifier_settings, smtp_sink  # noqa: F401 - the fixture

AGENT = principal("agent@med.example", Role.STAFF, account_id=21)
COLLEAGUE = principal("colleague@med.example", Role.STAFF, account_id=22)
AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)
RAW = b"From: Jeanne <jeanne@example.org>\r\nSubject: Facture\r\n\r\nJe conteste la facture.\r\n"
PDF = b"%PDF-1.4 not really a pdf\n" * 10


def path(number: str, rest: str = "") -> str:
    return f"/backoffice/files/{number}{rest}"


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def hidden(html: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name}"
    return unescape(found.group(1))


@pytest.fixture
async def connection(nats_server) -> AsyncIterator[nats.NATS]:
    client = await nats.connect(nats_server.url)
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


async def test_an_answer_is_previewed_by_the_notifier_then_sent(backoffice_app, nats_server, connection, smtp_sink,
                                                                tmp_path):
    app = backoffice_app
    number = await app.file(name="Jan Janssens", email="jan@example.be", handler=AGENT.email)
    notifier = build_notifier(notifier_settings(nats_server.url, f"sqlite+aiosqlite:///{tmp_path / 'n.db'}",
                                                smtp_sink, tmp_path))
    await notifier.start()
    try:
        async with app.client(AGENT) as client:
            unwired = await client.post(path(number, "/answer/preview"), headers={"HX-Request": "true"},
                                        data={"csrf_token": TEST_CSRF, "kind": "message", "text": "Bonjour"})
            app.app.state.notice_preview = NoticePreviewer(connection)
            message = "We received the documents of 3 March.\nA decision follows <soon>."
            preview = await client.post(path(number, "/answer/preview"), headers={"HX-Request": "true"}, data={
                "csrf_token": TEST_CSRF, "kind": "message", "language": "en", "text": message,
                "request_key": "b" * 32})
            sent = await client.post(path(number, "/actions/answer"), data={
                "csrf_token": TEST_CSRF, "kind": hidden(preview.text, "kind"),
                "language": hidden(preview.text, "language"), "text": hidden(preview.text, "text"),
                "request_key": hidden(preview.text, "request_key")})
            blank = await client.post(path(number, "/answer/preview"), data={
                "csrf_token": TEST_CSRF, "kind": "message", "text": "  "})

            for target in ("acknowledged", "in_review"):
                await app.registry.handle(commands.Transition(number, target, "tests"))
            answer = "Après examen, votre plainte est fondée.\nNous avons demandé la correction de la facture."
            final = await client.post(path(number, "/answer/preview"), headers={"HX-Request": "true"}, data={
                "csrf_token": TEST_CSRF, "kind": "final", "language": "de", "text": answer})
            fields = {"csrf_token": TEST_CSRF, "kind": "final", "text": hidden(final.text, "text")}
            asked = await client.post(path(number, "/actions/answer"), data=fields)
            assert (await app.store.complaint(number)).status == "in_review"  # not before it is confirmed
            confirmed = await client.post(path(number, "/actions/answer"), data={**fields, "confirmed": "1"})
    finally:
        await notifier.stop()

    assert "ne répond pas" in text_of(unwired.text)
    words = text_of(preview.text)
    assert preview.status_code == 200 and preview.text.lstrip().startswith('<div id="answer-preview"')
    assert f"[{number}] Message about your complaint" in words and "Dear Jan Janssens," in words
    assert "We received the documents of 3 March." in words and "A decision follows <soon>." in words
    assert "<soon>" not in preview.text  # escaped in the page
    assert sent.status_code == 303
    assert "vide ou trop long" in text_of(blank.text)

    assert "Envoyer cette réponse définitive" in text_of(final.text)
    assert "Après examen, votre plainte est fondée." in text_of(final.text)
    assert asked.status_code == 200 and "Envoyer cette réponse définitive au citoyen." in text_of(asked.text)
    assert confirmed.status_code == 303
    assert (await app.store.complaint(number)).status == "answered"

    notices = [e for e in app.publisher.of(NoticeRequested) if e.complaint_number == number]
    assert [n.notice_kind for n in notices] == ["staff_message", "final_answer"]
    staff_message, final_answer = notices
    # What was sent is what was previewed, in the language chosen, from the person signed in.
    assert staff_message.context["text"] == message and staff_message.context.get("language") == "en"
    assert final_answer.context["answer"] == answer
    changes = (await app.store.complaint_file(number))[2]
    assert ("staff_message", AGENT.email) in [(c.change, c.actor) for c in changes]
    assert [c.actor for c in changes if c.change == "status"][-1] == AGENT.email
    audited = [e.action for e in await app.app.state.audit.for_file(number, limit=100)]
    assert "change.send_message" in audited and "change.transition" in audited


async def test_the_raw_original_and_the_attachments_are_downloaded_from_the_object_store(backoffice_app,
                                                                                         connection):
    app = backoffice_app
    js = connection.jetstream()
    sha = hashlib.sha256(PDF).hexdigest()
    attachment = AttachmentRef(filename='facture "mars"\r\n.pdf', content_type="text/html", size=len(PDF),
                               sha256=sha, object_name=f"sha256-{sha}")
    outcome = await app.registry.handle(MessageReceived(
        message_key="original-1", received_at=AT, raw_object="original-1.eml", sender=Party(
            name="Jeanne", email="jeanne@example.org"), recipients=("plaintes@ombudsdesk.localhost",),
        subject_line="Facture", text="Je conteste la facture.", message_id="<original-1@mail.example.org>",
        attachments=(attachment,)))
    number = outcome.number
    other = await app.file(subject="Un autre dossier", handler=AGENT.email)
    await app.registry.handle(commands.Assign(number, AGENT.email, "tests"))
    await (await js.object_store(streams.BUCKET_RAW_MESSAGES)).put("original-1.eml", RAW)
    await (await js.object_store(streams.BUCKET_ATTACHMENTS)).put(attachment.object_name, PDF)
    original_url = path(number, "/messages/original-1/original")
    async with app.client(AGENT) as client:
        unwired = await client.get(original_url)
        app.app.state.originals = OriginalStore(lambda: js)
        page = await client.get(path(number))
        raw = await client.get(original_url)
        pdf = await client.get(path(number, f"/attachments/{attachment.object_name}"))
        not_this_file = await client.get(path(other, f"/attachments/{attachment.object_name}"))
        not_a_message = await client.get(path(number, "/messages/nothing/original"))
    async with app.client(COLLEAGUE) as client:
        asked_why = await client.get(original_url)

    assert unwired.status_code == 503 and "injoignable" in text_of(unwired.text)
    assert 'href="/backoffice/files/%s/messages/original-1/original"' % number in page.text
    assert f'href="/backoffice/files/{number}/attachments/{attachment.object_name}"' in page.text
    assert raw.status_code == 200 and raw.content == RAW
    assert raw.headers["content-type"].startswith("message/rfc822")
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert raw.headers["x-content-type-options"] == "nosniff"
    # Whatever type the sender claimed (text/html here), the browser saves bytes; the name cannot break the header.
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf.headers["content-type"] == "application/octet-stream"
    assert "\r" not in pdf.headers["content-disposition"] and '"mars"' not in pdf.headers["content-disposition"]
    assert not_this_file.status_code == 404 and not_a_message.status_code == 404
    # Someone who is not the handler is sent to the file's page, which asks why first.
    assert asked_why.status_code == 303 and asked_why.headers["location"] == path(number)
    entries = await app.app.state.audit.for_file(number, limit=50)
    downloads = [(e.action, e.actor, e.details) for e in entries if e.action.endswith(".download")]
    assert sorted(downloads, key=lambda d: d[0]) == [
        ("attachment.download", AGENT.email, {"object": attachment.object_name}),
        ("original.download", AGENT.email, {"message_key": "original-1", "object": "original-1.eml"})]
