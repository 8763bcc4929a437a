"""The preview of a notice over core NATS request/reply, against a real NATS server and the real notifier: the same
words as the mail later sent for the same input, nothing stored or sent for it, and every failure answered."""

from __future__ import annotations

import json
import time

import nats
import pytest
from nats.js.errors import NotFoundError

from services.notifier.wiring import NotifierService
from services.registry.notice_preview import NoticePreviewer
from shared import streams
from shared.events import NoticePreview, NoticePreviewRequest, NoticeRequested, Party, PreviewProblem
from shared.stream_admin import ensure_streams
from tests.notifier.support import SmtpSink, publish, wait_until

NUMBER = "MED-2026-00077"
CITIZEN = Party(name="Jeanne Dupont", email="jeanne@example.org", language="fr")
TEXT = "Pourriez-vous nous envoyer la décision du 3 mars ?\n\n- la décision\n- l'enveloppe <datée>"


def preview_request(**changes: object) -> NoticePreviewRequest:
    values: dict[str, object] = dict(complaint_number=NUMBER, notice_kind="staff_message", recipient=CITIZEN,
                                     language="nl", context={"text": TEXT})
    values.update(changes)
    return NoticePreviewRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
async def connection(nats_server):
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


async def test_the_preview_says_what_the_mail_then_sent_says(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink, connection
):
    preview = await NoticePreviewer(connection).preview(preview_request())
    assert preview.error is None and preview.language == "nl"  # the language staff chose, not the citizen's
    assert TEXT.splitlines()[0] in preview.text and NUMBER in preview.subject
    assert "&lt;datée&gt;" in preview.html and "<li>la décision</li>" in preview.html
    # Nothing was stored or sent for the preview.
    assert await running_notifier.outbox.notices() == [] and smtp_sink.messages == []

    # The registry then requests the notice with the same fields (the chosen language in the context).
    await publish(nats_server.url, NoticeRequested(
        request_key=f"staff_message:{NUMBER}:1", complaint_number=NUMBER, notice_kind="staff_message",
        recipient=CITIZEN, context={"text": TEXT, "language": "nl"}))
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the message")
    [mail] = smtp_sink.messages
    assert mail["Subject"] == preview.subject and mail["Content-Language"] == "nl"
    # The wire form has CRLF line ends (and a line end before the MIME boundary).
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == preview.text
    assert mail.get_body(("html",)).get_content().replace("\r\n", "\n").rstrip("\n") == preview.html.rstrip("\n")


async def test_a_postal_complainants_preview_is_the_letters_text_and_queues_no_letter(
    running_notifier: NotifierService, connection
):
    postal = Party(name="Marie Lambert", postal_address="Rue des Tanneurs 12\n4000 Liège", language="fr")
    preview = await NoticePreviewer(connection).preview(preview_request(recipient=postal, language=None))
    assert preview.error is None and preview.language == "fr"
    assert f"merci de mentionner le numéro {NUMBER}" in preview.text and "répondre à ce message" not in preview.text
    assert await running_notifier.outbox.print_queue() == [] and await running_notifier.outbox.notices() == []


async def test_the_other_requested_kinds_preview_too(running_notifier: NotifierService, connection):
    preview = await NoticePreviewer(connection).preview(preview_request(
        notice_kind="final_answer", language="de", context={"answer": "Die Verwaltung hat den Betrag korrigiert."}))
    assert preview.error is None and "Die Verwaltung hat den Betrag korrigiert." in preview.text
    assert "hemmt oder unterbricht" in preview.text  # the German mandatory notice of a final answer


@pytest.mark.parametrize(("changes", "problem", "detail"), [
    ({"notice_kind": "love_letter"}, PreviewProblem.UNKNOWN_KIND, "love_letter"),
    ({"notice_kind": "acknowledgment"}, PreviewProblem.UNKNOWN_KIND, "cannot be requested"),
    ({"context": {}}, PreviewProblem.INVALID_CONTEXT, "text: Field required"),
    ({"context": {"text": " \n "}}, PreviewProblem.INVALID_CONTEXT, "needs its text"),
    ({"context": {"text": "x\n" * 401}}, PreviewProblem.INVALID_CONTEXT, "at most 400 lines"),
    ({"notice_kind": "extension", "context": {"reason": "no date"}}, PreviewProblem.INVALID_CONTEXT, "answer_due"),
])
async def test_what_the_notice_would_fail_on_is_the_previews_error(
    running_notifier: NotifierService, connection, changes, problem, detail
):
    preview = await NoticePreviewer(connection).preview(preview_request(**changes))
    assert preview.problem is problem and detail in (preview.error or "")
    assert (preview.subject, preview.text, preview.html) == ("", "", "")
    assert await running_notifier.outbox.notices() == []


async def test_malformed_and_oversized_requests_are_answered_not_dropped(
    running_notifier: NotifierService, connection
):
    async def ask(payload: bytes) -> NoticePreview:
        reply = await connection.request(streams.SUBJECT_NOTICE_PREVIEW, payload, timeout=5)
        return NoticePreview.model_validate_json(reply.data)

    assert (await ask(b"{not json")).problem is PreviewProblem.INVALID_REQUEST
    assert (await ask(b'{"complaint_number": "x"}')).problem is PreviewProblem.INVALID_REQUEST
    valid = json.loads(preview_request().model_dump_json())
    too_large = json.dumps({**valid, "padding": "x" * NoticePreviewRequest.MAX_BYTES}).encode()
    answered = await ask(too_large)
    assert answered.problem is PreviewProblem.TOO_LARGE and str(len(too_large)) in (answered.error or "")
    # The client refuses it itself, without sending it.
    huge = preview_request(context={"text": "x" * NoticePreviewRequest.MAX_BYTES})
    assert (await NoticePreviewer(connection).preview(huge)).problem is PreviewProblem.TOO_LARGE
    # And the notifier still answers afterwards.
    assert (await NoticePreviewer(connection).preview(preview_request())).error is None


async def test_without_a_notifier_the_preview_says_so_at_once_and_no_stream_takes_the_request(
    nats_server, connection
):
    await ensure_streams(connection.jetstream())
    with pytest.raises(NotFoundError):  # the server itself: no stream's subjects capture the preview subject
        await connection.jetstream().find_stream_name_by_subject(streams.SUBJECT_NOTICE_PREVIEW)
    started = time.monotonic()
    preview = await NoticePreviewer(connection).preview(preview_request(), timeout=3.0)
    assert preview.problem is PreviewProblem.NOTIFIER_UNAVAILABLE and "no notifier is listening" in preview.error
    assert time.monotonic() - started < 3.0  # no responders is known at once: no need to wait for the timeout
