"""Fixtures of the notifier's tests: a scripted SMTP sink, settings pointing at it, a running notifier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from services.notifier.settings import NotifierSettings
from services.notifier.wiring import NotifierService, build_notifier
from tests.notifier.support import SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def notifier_settings(nats_url: str, database_url: str, sink: SmtpSink, tmp_path: Path, **overrides) -> NotifierSettings:
    values = dict(
        nats_url=nats_url,
        notifier_database_url=database_url,
        relay_host="127.0.0.1",
        relay_port=sink.port,
        var_dir=tmp_path / "var",
        relay_retry_first_seconds=0.05,
        relay_retry_longest_seconds=0.2,
        relay_poll_seconds=0.1,
        relay_timeout_seconds=5,
        supervisor_address="supervision@ombudsdesk.localhost",
        message_id_domain="notices.ombudsdesk.test",
        ack_wait_seconds=5,
        notifier_health_port=0,  # tests run side by side: a probe port is asked for by the tests that use it
    )
    values.update(overrides)
    return NotifierSettings(**values)


@pytest.fixture
async def start_notifier(nats_server, database_url, smtp_sink, tmp_path) -> AsyncIterator[Callable[..., Awaitable[NotifierService]]]:
    """Start a notifier with chosen setting overrides (stopped at the end of the test)."""
    started: list[NotifierService] = []

    async def start(**overrides: object) -> NotifierService:
        service = build_notifier(notifier_settings(nats_server.url, database_url, smtp_sink, tmp_path, **overrides))
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


@pytest.fixture
async def running_notifier(start_notifier) -> NotifierService:
    return await start_notifier()
