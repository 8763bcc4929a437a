"""The public pages as one of intake's channels: served by uvicorn in intake's own loop on
`OMBUDSDESK_PUBLIC_WEB_HOST:PORT`, taking complaints in through the same pipeline as mail and letters, and asking the
registry (core NATS request/reply) for the number a complaint received, for its confirmation page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from nats.aio.client import Client
from pydantic import BaseModel

from services.intake.channels.acceptor import MessageAcceptor
from services.intake.settings import IntakeSettings
from services.intake.web.app import create_public_app
from services.intake.web.context import FormPolicy, ReplyT
from services.intake.web.tokens import FormTokens, load_or_create_secret
from shared import streams
from shared.events import CaseLookup, CaseLookupRequest
from shared.web_server import bound_port, start_server

log = structlog.get_logger(__name__)

# The confirmation page waits this long in all for the registry to have numbered the complaint (usually a few
# tens of milliseconds), asking again every `LOOKUP_EVERY_SECONDS`; then it says the number comes by mail.
LOOKUP_PATIENCE_SECONDS = 4.0
LOOKUP_EVERY_SECONDS = 0.4


def form_policy(settings: IntakeSettings) -> FormPolicy:
    return FormPolicy(
        public_url=settings.public_form_url(),
        per_client_per_hour=settings.public_form_per_client_per_hour,
        max_attachments=settings.public_form_max_attachments,
        max_attachment_bytes=settings.public_form_max_attachment_bytes,
        token_hours=settings.public_form_token_hours,
        organisation={language: settings.localized_organisation_name(language) for language in ("fr", "nl", "de", "en")},
    )


class CaseLookups:
    """Asks the registry which number a message key received; an empty answer when none comes in time."""

    def __init__(self, connection: Callable[[], Client], *, patience: float = LOOKUP_PATIENCE_SECONDS) -> None:
        self.connection = connection
        self.patience = patience

    async def __call__(self, message_key: str) -> CaseLookup:
        payload = CaseLookupRequest(message_key=message_key).model_dump_json().encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        while True:
            try:
                reply = await self.connection().request(streams.SUBJECT_CASE_LOOKUP, payload,
                                                        timeout=max(0.1, min(1.0, deadline - loop.time())))
                answer = CaseLookup.model_validate_json(reply.data)
                if answer.number or answer.appended:
                    return answer
            except Exception as error:  # noqa: BLE001 - no registry, NATS away: the page says the number comes by mail
                log.debug("case_lookup.no_answer", error=type(error).__name__)
            if loop.time() + LOOKUP_EVERY_SECONDS >= deadline:
                return CaseLookup()
            await asyncio.sleep(LOOKUP_EVERY_SECONDS)


class NatsRequester:
    """`PublicContext.request`: a core NATS request; None when no answer comes in time or it does not parse."""

    def __init__(self, connection: Callable[[], Client]) -> None:
        self.connection = connection

    async def __call__(self, subject: str, request: BaseModel, reply_type: type[ReplyT],
                       timeout: float = 2.0) -> ReplyT | None:
        try:
            reply = await self.connection().request(subject, request.model_dump_json().encode(), timeout=timeout)
            return reply_type.model_validate_json(reply.data)
        except Exception as error:  # noqa: BLE001 - the page says the service is unavailable, never crashes
            log.info("public_web.no_answer", subject=subject, error=type(error).__name__)
            return None


class PublicWeb:
    """A channel with `start()` and `stop()`, as intake's other channels."""

    def __init__(self, settings: IntakeSettings, intake: MessageAcceptor, connection: Callable[[], Client]) -> None:
        self.settings = settings
        self.intake = intake
        self.connection = connection
        self.port: int | None = None
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = self.settings
        secret = load_or_create_secret(settings.public_web_secret_file or settings.var_dir / "public-web.secret")
        app = create_public_app(form_policy(settings), FormTokens(secret, settings.public_form_token_hours * 3600),
                                secret, self.intake, CaseLookups(self.connection),
                                requester=NatsRequester(self.connection))
        self._server, self._task = await start_server(app, settings.public_web_host, settings.public_web_port,
                                                      name="intake-public-web")
        self.port = bound_port(self._server)
        log.info("public_web.listening", host=settings.public_web_host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        self._server = self._task = None

    def status(self) -> dict[str, Any]:
        return {"public_web_port": self.port}
