"""The deadline watcher (adapter loop): pages through the open complaints and sends `RaiseDeadlineAlerts` for each
one whose alerts may be due, then sends each of `SWEEPS` (the other promises with a date: reminders, closings). Each alert goes out once per complaint, deadline, due date and lead time, across
restarts and across several registry processes (stored key + `Nats-Msg-Id`).

The page is read before the alerts' transactions: it only picks the complaints to look at (an alert it misses on a
row read a moment ago comes at the next pass). The handler reads each complaint again inside its transaction and
decides on that, so a complaint acknowledged meanwhile raises no alert for its acknowledgment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date

import structlog

from services.registry.commands import Command, RaiseDeadlineAlerts, SweepInformationRequests
from services.registry.commands import InviteToSurveys, RemindRecommendationReviews
from services.registry.handlers import Registry, administrations
from services.registry.handlers.records import state_of
from services.registry.publisher import wait_or_stop

log = structlog.get_logger(__name__)

# The other dated promises of a file (issue 15), each a command made from today's date whose handler raises what is
# due (a reminder, a "no answer" warning, a closing) at most once each, in bounded pages, and returns how many.
SWEEPS: tuple[Callable[[date], Command[int]], ...] = (
    administrations.sweep,  # position requests to administrations: reminder, "no answer" warning
    SweepInformationRequests,  # requests for information to citizens: reminder, closing for lack of answer
    RemindRecommendationReviews,  # recommendations' review dates: the handler reminded, once per date
    InviteToSurveys,  # files closed lately: the citizen invited to the satisfaction survey, once (issue 17)
)


class DeadlineWatcher:
    def __init__(self, registry: Registry, lead_days: Sequence[int]) -> None:
        self.registry = registry
        self.lead_days = tuple(lead_days)

    async def check(self) -> int:
        """One pass over every open complaint; returns how many alerts were raised."""
        raised = 0
        after_id = 0
        while batch := await self.registry.store.open_complaints(after_id=after_id):
            today = self.registry.today()
            for complaint in batch:
                if state_of(complaint).alerts_due(today, self.lead_days):
                    raised += await self.registry.handle(RaiseDeadlineAlerts(complaint.id, self.lead_days))
            after_id = batch[-1].id
        for sweep in SWEEPS:
            raised += await self.registry.handle(sweep(self.registry.today()))
        return raised

    async def run(self, interval_seconds: float, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                raised = await self.check()
                if raised:
                    log.info("deadlines.alerts_raised", alerts=raised)
            except Exception as error:  # noqa: BLE001 - a failed pass is retried at the next tick
                log.warning("deadlines.check_failed", error=repr(error))
            await wait_or_stop(stopping, interval_seconds)
