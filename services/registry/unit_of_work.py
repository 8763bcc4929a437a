"""The one path every handler takes to change the register: one transaction, its events published after the commit,
and the whole of it run again when a concurrent writer won a unique-key race.

`UnitOfWork.run(what, work)` opens a `repository.Transaction`, lets `work` read (inside the transaction, so nothing
it decides on can change under it) and write, commits, then hands what the transaction put in the outbox (or found
there again, `Transaction.republish`) to the `EventPublisher` port. A crash between commit and publish only delays
the events: the outbox publisher's loop sends them later.

A unique-constraint failure means another process (or a redelivery) just stored the same message, party or alert:
the transaction is rolled back and `work` runs again on fresh state, where it finds what the other stored.

Inside a batched delivery (`shared.messaging.in_batched_delivery`: the registry's `MessageReceived` subscriber fetches
events in batches, issue 12), `run` hands `work` to the unit of work's `CommitGroup`: the works of the events in
flight run one after the other in ONE transaction (one commit, the case numbers still taken in it, so still
gap-free), their events are published together after that commit, and only then does each `run` return, so that each
event is acknowledged after its effect is committed. If that transaction fails (a poison event, a unique-key race),
it is rolled back and every work runs again here alone, with its own retries, its own error for its own delivery.
A work may bring a look-ahead (`run(..., ahead=(reader, what_it_needs))`): before the batch's works run, each reader
is called once with what all of them need, and reads it in one query per kind (`Transaction.read_ahead`), instead of
one query per work; alone, a work queries for itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

import structlog

from services.registry.models import OutboxEvent
from services.registry.repository import IntegrityError, RegistryStore, Transaction
from shared.messaging import CommitGroup, in_batched_delivery

log = structlog.get_logger(__name__)

ResultT = TypeVar("ResultT")
RACE_RETRIES = 5


class EventPublisher(Protocol):
    """Publishes committed outbox rows (`publisher.OutboxPublisher` on JetStream)."""

    async def publish(self, rows: Sequence[OutboxEvent]) -> None: ...


# A reader of a batch's look-ahead, and what one work needs of it (e.g. its message key).
LookAhead = tuple[Callable[[Transaction, list[Any]], Awaitable[None]], Any]


class Work(NamedTuple):
    what: str
    work: Callable[[Transaction], Awaitable[object]]
    ahead: LookAhead | None = None


class UnitOfWork:
    def __init__(self, store: RegistryStore, publisher: EventPublisher, retries: int = RACE_RETRIES) -> None:
        self.store = store
        self.publisher = publisher
        self.retries = retries
        self.group: CommitGroup[Work, object] = CommitGroup(
            "registry", self._together, lambda item: self._alone(item.what, item.work))

    async def run(self, what: str, work: Callable[[Transaction], Awaitable[ResultT]],
                  ahead: LookAhead | None = None) -> ResultT:
        """Run `work` in one transaction, then publish its events; `what` names it in logs and errors; `ahead` is
        what it will look up, read for the whole batch at once when it runs in one."""
        if in_batched_delivery():
            return await self.group.submit(Work(what, work, ahead))  # type: ignore[return-value]
        return await self._alone(what, work)

    async def _together(self, works: Sequence[Work]) -> list[object]:
        """The works of a batch in one transaction, in order, then all their events published."""
        async with self.store.transaction() as tx:
            needs: dict[Callable[[Transaction, list[Any]], Awaitable[None]], list[Any]] = {}
            for item in works:
                if item.ahead is not None:
                    needs.setdefault(item.ahead[0], []).append(item.ahead[1])
            for reader, needed in needs.items():
                await reader(tx, needed)
            results = [await item.work(tx) for item in works]
            to_publish = list(tx.pending_events)
        await self.publisher.publish(to_publish)
        return results

    async def _alone(self, what: str, work: Callable[[Transaction], Awaitable[ResultT]]) -> ResultT:
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
