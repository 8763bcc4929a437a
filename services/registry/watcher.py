"""The deadline watcher (adapter loop): pages through the open complaints and lets
`Registry.raise_deadline_alerts` publish what is due. Each alert goes out once per complaint, deadline, due date
and lead time, across restarts and across several registry processes (stored key + `Nats-Msg-Id`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from services.registry.handlers import Registry
from services.registry.publisher import wait_or_stop

log = structlog.get_logger(__name__)


class DeadlineWatcher:
    def __init__(self, registry: Registry, lead_days: Sequence[int]) -> None:
        self.registry = registry
        self.lead_days = tuple(lead_days)

    async def check(self) -> int:
        """One pass over every open complaint; returns how many alerts were raised."""
        raised = 0
        after_id = 0
        while batch := await self.registry.store.open_complaints(after_id=after_id):
            for complaint in batch:
                raised += await self.registry.raise_deadline_alerts(complaint, self.lead_days)
            after_id = batch[-1].id
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
