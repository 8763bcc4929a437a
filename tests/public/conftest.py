"""Fixtures of the public pages' browser tests: Chromium and screenshots as for the back office
(`tests/backoffice/conftest.py`), and the whole system — the three services, NATS, a mail catcher — running in a
thread of its own with intake's public web port open, for a synchronous Playwright test to drive."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ombudsdesk.embedded_nats import free_port
from ombudsdesk.mailcatcher import MailCatcher
from tests.backoffice.conftest import browser, page, screenshot  # noqa: F401 - the same fixtures, re-exported
from tests.e2e.stack import InProcessStack, StackConfig, start_catcher

T = TypeVar("T")
TIMEOUT = 60.0


class LiveStack:
    def __init__(self, tmp_path: Path, nats_url: str) -> None:
        self.tmp_path = tmp_path
        self.nats_url = nats_url
        self.web_port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-stack", daemon=True)
        self.services: InProcessStack | None = None
        self.catcher: MailCatcher | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def start(self) -> None:
        self.thread.start()

        async def started() -> None:
            self.catcher = await start_catcher(self.tmp_path / "outbox")
            config = StackConfig(nats_url=self.nats_url, var_dir=self.tmp_path / "var",
                                 registry_database_url=f"sqlite+aiosqlite:///{self.tmp_path / 'registry.db'}",
                                 notifier_database_url=f"sqlite+aiosqlite:///{self.tmp_path / 'notifier.db'}",
                                 relay_port=self.catcher.port)
            self.services = InProcessStack(config, intake_settings={"public_web_port": self.web_port})
            await self.services.start()

        self.run(started())

    def stop(self) -> None:
        async def stopped() -> None:
            if self.services is not None:
                await self.services.stop()
            if self.catcher is not None:
                await self.catcher.stop()

        try:
            self.run(stopped())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


@pytest.fixture
def live_stack(tmp_path: Path, nats_server: Any) -> Iterator[LiveStack]:
    live = LiveStack(tmp_path, nats_server.url)
    live.start()
    try:
        yield live
    finally:
        live.stop()
