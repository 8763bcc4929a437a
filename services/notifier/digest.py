"""The optional daily digest: each handler gets, once a day, the list of their files at risk.

`digest_drafts` is pure. The scheduler only decides *when*; the outbox key `digest:<handler>:<local date>` makes the
digest go out once per handler and day however many instances run and however often they restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from itertools import groupby
from zoneinfo import ZoneInfo

import structlog

from services.notifier.handlers import Clock, NotifierHandlers
from services.notifier.models import FileAtRisk
from services.notifier.notices import NoticeDraft, NoticeKind

log = structlog.get_logger(__name__)


def digest_drafts(risks: Sequence[FileAtRisk], day: date) -> list[NoticeDraft]:
    drafts = []
    ordered = sorted(risks, key=lambda risk: (risk.handler_email, risk.due, risk.complaint_number))
    for handler_email, group in groupby(ordered, key=lambda risk: risk.handler_email):
        files = list(group)
        drafts.append(
            NoticeDraft(
                notification_key=f"digest:{handler_email}:{day.isoformat()}",
                complaint_number="",
                kind=NoticeKind.DEADLINE_DIGEST,
                language=files[0].language,
                variables={
                    "day": day,
                    "files": [
                        {"case_number": risk.complaint_number, "deadline_kind": risk.deadline_kind, "due": risk.due,
                         "missed": risk.state == "missed", "subject_line": risk.subject_line}
                        for risk in files
                    ],
                },
                recipient_email=handler_email,
                recipient_name=files[0].handler_name,
            )
        )
    return drafts


class DigestScheduler:
    def __init__(self, handlers: NotifierHandlers, hour: int, timezone: str, clock: Clock,
                 check_every_seconds: float = 60.0) -> None:
        self.handlers = handlers
        self.hour = hour
        self.zone = ZoneInfo(timezone)
        self.clock = clock
        self.check_every_seconds = check_every_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Write today's digests if the hour has come; returns how many were newly recorded."""
        local: datetime = self.clock().astimezone(self.zone)
        if local.hour < self.hour:
            return 0
        recorded = 0
        for draft in digest_drafts(await self.handlers.outbox.open_risks(), local.date()):
            recorded += await self.handlers.write(draft)
        return recorded

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier-digest")

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - try again at the next check
                log.error("digest.error", error=repr(error))
            await asyncio.sleep(self.check_every_seconds)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
