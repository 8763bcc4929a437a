"""Publishing the outbox to JetStream (adapter of the `EventPublisher` port of `unit_of_work.py`).

The unit of work publishes the events of its own transaction right after the commit. The `drain` loop publishes
whatever is left unpublished (the process died between commit and publish, or NATS was down): events are late, never
lost.
Publishing the same row twice is harmless: its `Nats-Msg-Id` is its dedup id, and consumers are idempotent.

Marking rows published is bookkeeping for the `drain` loop, not a guarantee: the rows published by the units of work
are marked together, in one transaction, `MARK_DELAY_SECONDS` after the first of them (instead of one write
transaction per event, as many as the events themselves). A row published but not yet marked when the process dies
is published again by the next drain — the harmless duplicate above.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence

import structlog
from faststream.nats import NatsBroker

from services.registry.models import OutboxEvent
from services.registry.repository import RegistryStore
from shared import events, observability, streams
from shared.messaging import publish_event, publish_stored

log = structlog.get_logger(__name__)

MARK_DELAY_SECONDS = 0.1

EVENT_TYPES: dict[str, type[events.Event]] = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        events.ComplaintRegistered,
        events.ComplaintChanged,
        events.MessageAppended,
        events.NoticeRequested,
        events.DeadlineApproaching,
        events.DeadlineMissed,
        events.PersonalDataErased,  # issue 16
    )
}


def decode(row: OutboxEvent) -> events.Event:
    """The stored event, whole (same event id, hence same dedup id as the first time)."""
    return EVENT_TYPES[json.loads(row.payload)["event_type"]].model_validate_json(row.payload)


# Each event type's subject: the registry publishes every type on its own subject (checked below).
_TYPE_OF_SUBJECT = {cls.subject: event_type for event_type, cls in EVENT_TYPES.items()}
if len(_TYPE_OF_SUBJECT) != len(EVENT_TYPES):
    raise RuntimeError("two registry event types share a subject: publish_row cannot tell them apart")


async def publish_row(broker: NatsBroker, row: OutboxEvent) -> None:
    """Publish a stored event as it was stored (`publish_stored`: no decoding and encoding again); through its
    model when the broker cannot (FastStream's `TestNatsBroker`).

    A row is sent as its release stored it, no longer checked against today's models on the way out: consumers
    validate what they receive (an unknown field is ignored, a broken event dead-lettered with its reason) rather
    than one bad row stopping the drain loop."""
    event_type = _TYPE_OF_SUBJECT.get(row.subject) or json.loads(row.payload)["event_type"]
    if await publish_stored(broker, row.subject, row.payload, dedup_id=row.dedup_id, event_type=event_type) is None:
        await publish_event(broker, decode(row), row.subject)


class OutboxPublisher:
    def __init__(self, store: RegistryStore, broker: NatsBroker, mark_delay: float = MARK_DELAY_SECONDS) -> None:
        self.store = store
        self.broker = broker
        self.mark_delay = mark_delay
        self._to_mark: list[int] = []
        self._marking: asyncio.Task[None] | None = None

    async def publish(self, rows: Sequence[OutboxEvent]) -> None:
        """Publish committed outbox rows; they are marked published shortly after, with the others published
        meanwhile (`mark_published`). Their JetStream acks are awaited together: the publishes leave in order, in
        one burst, instead of one round trip each."""
        if not rows:
            return
        await asyncio.gather(*(publish_row(self.broker, row) for row in rows))
        count_deadline_alerts(row for row in rows if row.published_at is None)
        self._to_mark.extend(row.id for row in rows if row.published_at is None)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_soon(), name="registry-outbox-mark")

    async def _mark_soon(self) -> None:
        await asyncio.sleep(self.mark_delay)
        try:
            await self.mark_published()
        except Exception as error:  # noqa: BLE001 - the rows stay unpublished: the drain loop sends them again
            log.warning("outbox.mark_failed", error=repr(error))

    async def mark_published(self) -> None:
        """Mark every row published so far, in one transaction (a failure leaves them to the drain loop)."""
        ids, self._to_mark = self._to_mark, []
        await self.store.mark_published(ids)

    async def close(self) -> None:
        """At shutdown: mark what was published (else the next start publishes it again, harmlessly)."""
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)  # a short delay, then its transaction
        await self.mark_published()

    async def drain(self) -> int:
        """Publish every row still unpublished; returns how many were published. The rows published meanwhile by
        the units of work are marked first, so that they are not read as unpublished."""
        total = 0
        await self.mark_published()
        while rows := await self.store.unpublished_events():
            await self.publish(rows)
            await self.mark_published()
            total += len(rows)
        return total

    async def run(self, interval_seconds: float, stopping: asyncio.Event) -> None:
        """Drain every `interval_seconds` until `stopping` is set (a flag, not only cancellation: a library
        swallowing a CancelledError must not keep the loop alive)."""
        while not stopping.is_set():
            try:
                published = await self.drain()
                if published:
                    log.info("outbox.drained", events=published)
            except Exception as error:  # noqa: BLE001 - NATS or the database may be down; try again later
                log.warning("outbox.drain_failed", error=repr(error))
            await wait_or_stop(stopping, interval_seconds)


_DEADLINE_SUBJECTS = (streams.SUBJECT_DEADLINE_APPROACHING, streams.SUBJECT_DEADLINE_MISSED)


def count_deadline_alerts(rows: Iterable[OutboxEvent]) -> None:
    """Count the deadline alerts among rows published for the first time (the metric
    `ombudsdesk_deadline_alerts_raised_total`; whichever sweep raised them, issue 15's included). Counted once
    JetStream has them; a row published again because its mark was lost counts again, rarely."""
    for row in rows:
        if row.subject in _DEADLINE_SUBJECTS:
            observability.deadline_alert_raised(row.subject, str(json.loads(row.payload).get("deadline_kind", "")))


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass
