"""Fixtures of the back-office tests: the registry's application in-process (fast tests through ASGI), the real
registry service on a port (browser tests), Chromium, screenshots.

Fast tests (async, httpx through ASGI, no port, no NATS):

- `backoffice_app` -> `BackofficeApp`: `create_api(registry)` over a migrated database (SQLite and PostgreSQL, from
  `database_url`), a settable clock (`.clock`, 24 Nov 2026 10:00 UTC), the events captured instead of published
  (`.publisher`); `.registry`, `.store`, `.app`. `await .client(principal)` gives an `httpx.AsyncClient` signed in
  as that `Principal` by overriding `page_principal` and `api_principal`, with the CSRF token `TEST_CSRF` set on
  each request (send it as the `csrf_token` form field or the `X-CSRF-Token` header); `.client(None)` gives one
  that nobody signed in (the real dependencies). `await .file(...)` registers a complaint (see `helpers.file`).

Browser tests (SYNC test functions only, see below):

- `live_registry` -> `LiveRegistry`: the real registry service as `make run` builds it (`wiring.build_registry`,
  NATS from `nats_server`, database from `database_url`, the JSON API and the back office on a free port), running
  in a thread with its own event loop. `.url("/backoffice/register")`, `.run(coroutine)` (runs it in the service's
  loop, returns its result: seed data with `live.run(helpers.file(live.registry, ...))`), `.app` (the FastAPI
  application: `app.state`, `app.dependency_overrides`), `.registry`.
- `browser` (module scope): Debian's Chromium (`/usr/bin/chromium`, `--no-sandbox`) through Playwright's sync API;
  missing Chromium skips through `require_or_skip` (fails when CI=true).
- `page`: a new browser context and page per test (French locale, 1280x900, downloads accepted).
- `screenshot(page, name) -> Path`: a full-page PNG `name.png` (lowercase letters, digits, dashes), written to
  `docs/screenshots/` when `OMBUDSDESK_SCREENSHOTS=docs` (the pictures `docs/backoffice.md` shows), otherwise to
  the test's `tmp_path / "screenshots"`.

Helpers (`tests/backoffice/helpers.py`): `login(page, live, email, password)` drives the real login form;
`sign_in(page, live, email=..., roles=..., services=...)` creates the account and logs in through that form
(`live.sign_in_as(principal)` skips the login with a dependency override instead); `assert_accessible(page)` runs axe-core and fails on
any "serious" or "critical" violation, listing them; `file(registry, ...)` registers a complaint through the
registry's real intake path (`MessageReceived`) and classifies/assigns it.

Why browser tests are synchronous and Chromium is per module, not per session: Playwright's sync API runs its
event loop in a greenlet of the main thread and leaves it marked as running while the browser lives, so every
`async def` test collected after it would fail ("cannot be called from a running event loop"). The browser is
therefore closed at the end of each module that uses it (launching it takes under a second), and a browser test
module holds no async test nor async fixture; the live service's own loop runs in its own thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI, Request

from ombudsdesk.embedded_nats import free_port
from services.registry.access.dependencies import api_principal, page_principal
from services.registry.access.roles import Principal
from services.registry.api import create_api
from services.registry.handlers import Registry
from services.registry.settings import RegistrySettings
from services.registry.wiring import RegistryService, build_registry, policy_from_settings
from tests.conftest import require_or_skip
from tests.registry.conftest import CapturingPublisher, Clock

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOTS_ENV = "OMBUDSDESK_SCREENSHOTS"
TEST_CSRF = "test-csrf-token"
START_TIMEOUT = 60.0


def _signed_in_as(principal: Principal) -> Callable[[Request], Principal]:
    """A replacement of `page_principal` / `api_principal`: this person, with the session's CSRF token set."""

    def dependency(request: Request) -> Principal:
        request.state.csrf_token = TEST_CSRF
        return principal

    return dependency


# --- fast tests: the application through ASGI -----------------------------------------------------------------------
@dataclass
class BackofficeApp:
    app: FastAPI
    registry: Registry
    clock: Clock
    publisher: CapturingPublisher

    @property
    def store(self) -> Any:
        return self.registry.store

    def client(self, principal: Principal | None) -> httpx.AsyncClient:
        """A client of the application; signed in as `principal` (None: nobody, the real dependencies)."""
        if principal is None:
            self.app.dependency_overrides.pop(page_principal, None)
            self.app.dependency_overrides.pop(api_principal, None)
        else:
            self.app.dependency_overrides[page_principal] = _signed_in_as(principal)
            self.app.dependency_overrides[api_principal] = _signed_in_as(principal)
        # The Host the registry's allowed names include by default (its API host).
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://127.0.0.1")

    async def file(self, **fields: Any) -> str:
        from tests.backoffice.helpers import file

        return await file(self.registry, **fields)


@pytest.fixture
async def backoffice_app(database_url: str, tmp_path: Path) -> AsyncIterator[BackofficeApp]:
    from services.registry.repository import RegistryStore, migrate
    from shared.database import create_engine

    engine = create_engine(database_url)
    await migrate(engine)
    store = RegistryStore(engine)
    publisher = CapturingPublisher()
    publisher.store = store
    clock = Clock(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    registry = Registry(store, policy_from_settings(RegistrySettings(var_dir=tmp_path / "var")), publisher,
                        clock=clock)
    app = create_api(registry)
    try:
        yield BackofficeApp(app, registry, clock, publisher)
    finally:
        await engine.dispose()


# --- browser tests: the real service on a port ----------------------------------------------------------------------
class LiveRegistry:
    """The registry service in a thread of its own (its own event loop), serving the back office on a port."""

    def __init__(self, settings: RegistrySettings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-registry", daemon=True)
        self.service: RegistryService | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = START_TIMEOUT) -> T:
        """Run `coroutine` in the service's loop (the database and NATS connections live there); its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()

        async def started() -> RegistryService:
            service = build_registry(self.settings)
            await service.start()
            return service

        self.service = self.run(started())

    def stop(self) -> None:
        try:
            if self.service is not None:
                self.run(self.service.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(START_TIMEOUT)
            self.loop.close()

    @property
    def registry(self) -> Registry:
        assert self.service is not None
        return self.service.registry

    @property
    def app(self) -> FastAPI:
        """The application uvicorn serves (`RegistryService.api`)."""
        assert self.service is not None and self.service.api is not None
        return self.service.api

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.registry_api_port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def sign_in_as(self, principal: Principal | None) -> None:
        """Every request of the browser comes from `principal` (None: the real dependencies again). For tests that
        must not depend on the login flow; `helpers.login` drives the real one."""
        for dependency in (page_principal, api_principal):
            if principal is None:
                self.app.dependency_overrides.pop(dependency, None)
            else:
                self.app.dependency_overrides[dependency] = _signed_in_as(principal)


@pytest.fixture
def live_registry(tmp_path: Path, nats_server: Any, database_url: str) -> Iterator[LiveRegistry]:
    settings = RegistrySettings(nats_url=nats_server.url, registry_database_url=database_url,
                                var_dir=tmp_path / "var", registry_api_port=free_port())
    live = LiveRegistry(settings)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        require_or_skip(f"no Chromium at {CHROMIUM} (Debian package chromium; make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="fr-BE", viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshots_dir(tmp_path: Path) -> Path:
    folder = DOCS_SCREENSHOTS if os.environ.get(SCREENSHOTS_ENV) == "docs" else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot_taker(folder: Path) -> Callable[[Any, str], Path]:
    """`take(page, name)`: a full-page PNG of `page` as `folder/name.png`; returns its path."""

    def take(page: Any, name: str) -> Path:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise ValueError(f"screenshot name {name!r}: lowercase letters, digits and dashes")
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], Path]:
    return screenshot_taker(screenshots_dir(tmp_path))
