"""Every question of the public pages gets an answer at once (a core NATS request/reply has no redelivery: a
responder that fails silently leaves the page waiting for its timeout). `always_answering` makes a FastStream
middleware that answers `empty()` for a request larger than its bound (refused unread), one that is not of the
request's type, or one whose handling failed — logged by name, without the request's content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

log = structlog.get_logger(__name__)


def always_answering(max_bytes: int, empty: Callable[[], BaseModel], name: str) -> type[BaseMiddleware]:
    class AlwaysAnswering(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            if len(msg.body or b"") > max_bytes:
                return empty()
            try:
                return await call_next(msg)
            except ValidationError:
                return empty()
            except Exception as error:  # noqa: BLE001 - the page must hear an answer, not wait for its timeout
                log.warning(f"{name}.failed", error=type(error).__name__)
                return empty()

    return AlwaysAnswering
