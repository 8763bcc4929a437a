"""The registry's side of the notice preview (adapter): ask the notifier, over core NATS request/reply, what a notice
would say before staff send it.

`NoticePreviewer.preview` never raises into a page: no notifier running, NATS down or not yet connected, a timeout,
a request too large or an answer that is not a `NoticePreview` all come back as a `NoticePreview` whose `error`
starts with a `PreviewProblem` code the page translates.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from pydantic import ValidationError

from shared import streams
from shared.events import NoticePreview, NoticePreviewRequest, PreviewProblem

log = structlog.get_logger(__name__)

# What yields the connection: a connected client, something with a `.connection` (FastStream's NatsBroker), or a
# callable (sync or async) returning a client; resolved at each preview, so the broker may connect after wiring.
ClientSource = Client | Callable[[], Client | Awaitable[Client]] | Any


class NoticePreviewer:
    def __init__(self, nc_getter: ClientSource) -> None:
        self._source = nc_getter

    async def _client(self) -> Client:
        source = self._source
        if isinstance(source, Client):
            return source
        if callable(source):
            client = source()
            return await client if inspect.isawaitable(client) else client
        return source.connection

    async def preview(self, request: NoticePreviewRequest, timeout: float = 5.0) -> NoticePreview:
        """The notifier's rendering of `request`, or a `NoticePreview` with the error (within about `timeout`)."""
        payload = request.model_dump_json().encode()
        if len(payload) > NoticePreviewRequest.MAX_BYTES:
            return NoticePreview.failure(PreviewProblem.TOO_LARGE,
                                         f"{len(payload)} bytes, at most {NoticePreviewRequest.MAX_BYTES}")
        try:
            async with asyncio.timeout(timeout):
                client = await self._client()
                if not client.is_connected:
                    return NoticePreview.failure(PreviewProblem.NOTIFIER_UNAVAILABLE, "not connected to NATS")
                reply = await client.request(streams.SUBJECT_NOTICE_PREVIEW, payload, timeout=timeout)
        except (TimeoutError, NatsError) as error:  # nats' TimeoutError and NoRespondersError included
            log.warning("notice_preview.unavailable", error=type(error).__name__)
            return NoticePreview.failure(PreviewProblem.NOTIFIER_UNAVAILABLE, _why(error))
        except Exception as error:  # noqa: BLE001 - a broker not connected yet, a closed client: the page says so
            log.warning("notice_preview.unavailable", error=type(error).__name__)
            return NoticePreview.failure(PreviewProblem.NOTIFIER_UNAVAILABLE, type(error).__name__)
        try:
            return NoticePreview.model_validate_json(reply.data)
        except ValidationError:
            log.error("notice_preview.bad_answer", size=len(reply.data))
            return NoticePreview.failure(PreviewProblem.FAILED, "the answer is not a notice preview")


def _why(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return "no notifier is listening" if isinstance(error, NoRespondersError) else type(error).__name__
