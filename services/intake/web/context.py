"""What every public page family needs (`pages/*.py`'s `router(context)`): the form policy from intake's settings,
the signers, the abuse limiter, the one way in (`intake`), the questions to other services over NATS
(request/reply), the clock, and `page()` to render a template in the reader's language."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse
from itsdangerous import URLSafeSerializer
from pydantic import BaseModel

from services.intake.channels.acceptor import MessageAcceptor
from services.intake.web.abuse import SubmissionLimiter
from services.intake.web.rendering import render_page
from services.intake.web.tokens import FormTokens
from shared.events import CaseLookup

ReplyT = TypeVar("ReplyT", bound=BaseModel)


@dataclass(frozen=True)
class FormPolicy:
    """What the pages need of intake's settings (`IntakeSettings`), as plain values."""

    public_url: str
    per_client_per_hour: int
    max_attachments: int
    max_attachment_bytes: int
    token_hours: int
    organisation: dict[str, str]  # the organisation's name by language

    @property
    def max_body_bytes(self) -> int:
        return self.max_attachments * self.max_attachment_bytes + 2 * 1024 * 1024


class Requester(Protocol):
    """A core NATS request to another service: the reply parsed as `reply_type`, or None when none came in time
    (no such service running, NATS away) or it did not parse."""

    async def __call__(self, subject: str, request: BaseModel, reply_type: type[ReplyT],
                       timeout: float = 2.0) -> ReplyT | None: ...


@dataclass(frozen=True)
class PublicContext:
    policy: FormPolicy
    tokens: FormTokens
    receipts: URLSafeSerializer
    limiter: SubmissionLimiter
    intake: MessageAcceptor
    lookup: Callable[[str], Awaitable[CaseLookup]]
    request: Requester
    today: Callable[[], date]
    now: Callable[[], datetime]

    def page(self, request: Request, template: str, lang: str, *, status_code: int = 200,
             **context: Any) -> HTMLResponse:
        return render_page(request, template, lang, self.policy.organisation, status_code=status_code, **context)
