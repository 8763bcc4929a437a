"""The registry's notice-preview client against a real NATS server: every way of handing it a connection reaches the
real notifier, and a missing, silent or broken notifier (or connection) becomes an error a page shows, never an
exception and never a wait beyond the timeout."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from services.registry.notice_preview import NoticePreviewer
from shared import streams
from shared.events import NoticePreviewRequest, Party, PreviewProblem
from shared.messaging import make_broker
from shared.settings import CommonSettings
from tests.notifier.conftest import running_notifier, smtp_sink, start_notifier  # noqa: F401 - fixtures

REQUEST = NoticePreviewRequest(
    complaint_number="MED-2026-00101", notice_kind="staff_message", language="en",
    recipient=Party(name="Jan Janssens", email="jan@example.be", language="nl"),
    context={"text": "We received the documents you sent on 3 March."})


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The notifier's database does not matter here (its previews store nothing): SQLite only."""
    return sqlite_url


@pytest.fixture
async def connection(nats_server):
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


async def test_a_client_a_callable_or_a_connected_broker_reach_the_notifier(
    running_notifier, nats_server, connection  # noqa: F811
):
    async def async_getter():
        return connection

    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    await broker.connect()
    try:
        for source in (connection, lambda: connection, async_getter, broker):
            preview = await NoticePreviewer(source).preview(REQUEST)
            assert preview.error is None, source
            assert preview.language == "en" and "Dear Jan Janssens," in preview.text
            assert "We received the documents you sent on 3 March." in preview.text
            assert preview.subject == "[MED-2026-00101] Message about your complaint"
    finally:
        await broker.stop()


async def test_no_notifier_is_an_error_not_an_exception(nats_server, connection):
    preview = await NoticePreviewer(connection).preview(REQUEST, timeout=2.0)
    assert preview.problem is PreviewProblem.NOTIFIER_UNAVAILABLE and preview.text == ""


async def test_a_silent_responder_is_cut_off_at_the_timeout(nats_server, connection):
    async def never_answers(_message) -> None:
        await asyncio.sleep(30)

    await connection.subscribe(streams.SUBJECT_NOTICE_PREVIEW, cb=never_answers)
    started = time.monotonic()
    preview = await NoticePreviewer(connection).preview(REQUEST, timeout=0.5)
    elapsed = time.monotonic() - started
    assert preview.problem is PreviewProblem.NOTIFIER_UNAVAILABLE and "no answer in time" in preview.error
    assert 0.4 < elapsed < 2.0


async def test_an_answer_that_is_not_a_preview_is_an_error(nats_server, connection):
    async def answers_nonsense(message) -> None:
        await message.respond(b'{"subject": 42, "error": []}')

    await connection.subscribe(streams.SUBJECT_NOTICE_PREVIEW, cb=answers_nonsense)
    preview = await NoticePreviewer(connection).preview(REQUEST)
    assert preview.problem is PreviewProblem.FAILED and preview.subject == ""


async def test_a_broker_not_yet_connected_or_a_closed_client_is_an_error(nats_server):
    preview = await NoticePreviewer(make_broker(CommonSettings(nats_url=nats_server.url))).preview(REQUEST)
    assert preview.problem is PreviewProblem.NOTIFIER_UNAVAILABLE
    closed = await nats.connect(nats_server.url)
    await closed.close()
    assert (await NoticePreviewer(closed).preview(REQUEST)).problem is PreviewProblem.NOTIFIER_UNAVAILABLE

    async def failing_getter():
        raise ConnectionRefusedError("nats down")

    assert (await NoticePreviewer(failing_getter).preview(REQUEST)).problem is PreviewProblem.NOTIFIER_UNAVAILABLE
