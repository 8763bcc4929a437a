"""The public pages intake serves (FastAPI, server-rendered, no JavaScript at all): one application made of the
routers of `pages/*.py` (a page family is added by adding its module), behind a bound on the request body's size.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timezone
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeSerializer
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake.channels.acceptor import MessageAcceptor
from services.intake.web import pages
from services.intake.web.abuse import SubmissionLimiter
from services.intake.web.context import FormPolicy, PublicContext, Requester
from services.intake.web.rendering import CATALOG, HERE
from services.intake.web.tokens import FormTokens
from shared.events import CaseLookup

__all__ = ["CATALOG", "BodyLimit", "FormPolicy", "create_public_app"]


class BodyLimit:
    """Refuses a request body larger than `limit` with 413, by its Content-Length or while it streams (a chunked
    body has none), before the form parser spools it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _plain(send, 413, b"Request too large")
            return
        seen = 0

        async def bounded() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await _plain(send, 413, b"Request too large")


class _TooLarge(Exception):
    pass


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _no_requests(subject: str, request: Any, reply_type: Any, timeout: float = 2.0) -> None:
    return None


def create_public_app(policy: FormPolicy, tokens: FormTokens, receipts_secret: bytes, intake: MessageAcceptor,
                      lookup: Callable[[str], Awaitable[CaseLookup]], *, requester: Requester | None = None,
                      today: Callable[[], date] | None = None,
                      now: Callable[[], datetime] | None = None) -> ASGIApp:
    context = PublicContext(
        policy=policy, tokens=tokens, receipts=URLSafeSerializer(receipts_secret, salt="ombudsdesk.public.receipt"),
        limiter=SubmissionLimiter(policy.per_client_per_hour), intake=intake, lookup=lookup,
        request=requester or _no_requests, today=today or date.today,
        now=now or (lambda: datetime.now(timezone.utc)))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="public-static")
    for module_info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{pages.__name__}.{module_info.name}")
        app.include_router(module.router(context))
    return BodyLimit(app, policy.max_body_bytes)
