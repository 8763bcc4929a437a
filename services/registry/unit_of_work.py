"""The one path every handler takes to change the register: one transaction, its events published after the commit,
and the whole of it run again when a concurrent writer won a unique-key race.

`UnitOfWork.run(what, work)` opens a `repository.Transaction`, lets `work` read (inside the transaction, so nothing
it decides on can change under it) and write, commits, then hands what the transaction put in the outbox (or found
there again, `Transaction.republish`) to the `EventPublisher` port. A crash between commit and publish only delays
the events: the outbox publisher's loop sends them later.

A unique-constraint failure means another process (or a redelivery) just stored the same message, party or alert:
the transaction is rolled back and `work` runs again on fresh state, where it finds what the other stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import structlog

from services.registry.models import OutboxEvent
from services.registry.repository import IntegrityError, RegistryStore, Transaction

log = structlog.get_logger(__name__)

ResultT = TypeVar("ResultT")
RACE_RETRIES = 5


class EventPublisher(Protocol):
    """Publishes committed outbox rows (`publisher.OutboxPublisher` on JetStream)."""

    async def publish(self, rows: Sequence[OutboxEvent]) -> None: ...


class UnitOfWork:
    def __init__(self, store: RegistryStore, publisher: EventPublisher, retries: int = RACE_RETRIES) -> None:
        self.store = store
        self.publisher = publisher
        self.retries = retries

    async def run(self, what: str, work: Callable[[Transaction], Awaitable[ResultT]]) -> ResultT:
        """Run `work` in one transaction, then publish its events; `what` names it in logs and errors."""
        for _attempt in range(self.retries):
            try:
                async with self.store.transaction() as tx:
                    result = await work(tx)
                    to_publish = list(tx.pending_events)
            except IntegrityError:
                log.info("registry.race_retry", what=what)
                continue
            await self.publisher.publish(to_publish)
            return result
        raise RuntimeError(f"{what} kept conflicting with concurrent writers")
