"""Works through intake's spool: each entry goes through the pipeline (event or quarantine), then is acknowledged.

Any number of intake processes may run a worker: they share one durable consumer, so each entry goes to one of
them, and an entry whose process died is redelivered after `ack_wait` to another (the pipeline is idempotent: the
event's `Nats-Msg-Id` makes the second publish a no-op). Failures:

- a message the parser cannot handle never reaches here: the pipeline quarantines it and returns normally;
- the raw original is read from where the SMTP front stored it (spool.py) and handed to the pipeline with the
  entry's `Arrival`; if the pipeline did not give those bytes a name (a duplicate, a scan that became a letter),
  they are discarded here, so nothing unnamed stays behind;
- NATS unreachable, a publish timed out, parsers all busy: not the message's fault, retried in place with a
  growing delay for as long as it takes. While an entry is in hand, `in_progress` tells JetStream so every third of
  the ack wait, so a slow or waiting entry is not handed to another worker and its delivery count does not grow:
  that count is what tells a crash apart;
- anything else (a bug) is retried `max_deliveries` times, then the message goes to the quarantine with the error,
  where `ombudsdesk intake quarantine replay` takes it again after the fix;
- a message that crashes the process: JetStream's delivery count cannot single it out, since every entry in the
  hands of the dead process comes back with its count raised. So a redelivered entry is worked on alone (`_Gate`:
  fresh entries run together, a redelivered one waits for them and runs with nothing else started) and its start
  is recorded in JetStream (`SpoolAttempts`) before the pipeline sees it. Only the message that kills the process
  while alone accumulates starts; after `max_deliveries` of them it goes to the quarantine ("never finished"),
  while the mails that merely waited beside it are taken in normally (review of issue 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared import observability, streams
from shared.events import Channel
from shared.messaging import DeliveryPolicy
from services.intake.channels.acceptor import MessageAcceptor
from services.intake.arrival import Arrival
from services.intake.pipeline import ParsersBusy
from services.intake.stores import ObjectStorage
from services.intake.channels.spool import SpoolAttempts, SpoolEntryInvalid, SpoolEnvelope, read_envelope

log = structlog.get_logger(__name__)

# Spool entries in flight at once in one process: enough to overlap the JetStream round trips of several messages.
CONCURRENCY = 16
FETCH_WAIT_SECONDS = 1.0
STOP_WAIT_SECONDS = 30.0
# Failures that say nothing about the message: retried for as long as they last, never quarantined. Other OSErrors
# (a rejected-letters folder that cannot be written) are not: they take the bug path and end in the quarantine.
TRANSIENT = (nats.errors.Error, ConnectionError, TimeoutError, ParsersBusy)


class _Gate:
    """Fresh entries run together; a redelivered one runs alone, and fresh ones wait while it waits or runs."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._together = 0
        self._alone_waiting = 0
        self._alone_running = False

    @contextlib.asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        async with self._condition:
            await self._condition.wait_for(lambda: not self._alone_running and not self._alone_waiting)
            self._together += 1
        try:
            yield
        finally:
            async with self._condition:
                self._together -= 1
                self._condition.notify_all()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        async with self._condition:
            self._alone_waiting += 1
            try:
                await self._condition.wait_for(lambda: not self._together and not self._alone_running)
            finally:
                self._alone_waiting -= 1
                self._condition.notify_all()
            self._alone_running = True
        try:
            yield
        finally:
            async with self._condition:
                self._alone_running = False
                self._condition.notify_all()


class SpoolWorker:
    def __init__(
        self,
        js: Callable[[], JetStreamContext],
        front: MessageAcceptor,
        give_up: Callable[..., Awaitable[None]],
        policy: DeliveryPolicy,
        attempts: SpoolAttempts | None = None,
        objects: ObjectStorage | None = None,
    ) -> None:
        self._js = js
        self.attempts = attempts or SpoolAttempts(js)
        # Where the SMTP front stored the raw originals (injected by wiring.py: the process's one `IntakeStores`).
        self.objects = objects or ObjectStorage(js)
        self._gate = _Gate()
        self.front = front
        # `IntakePipeline.quarantine_unprocessable`: keeps the raw message with the reason, for a later replay.
        self.give_up = give_up
        self.policy = policy
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self.counters = {"done": 0, "retried": 0, "given_up": 0}

    async def start(self) -> None:
        self._subscription = await self._js().pull_subscribe_bind(streams.CONSUMER_INTAKE_SPOOL,
                                                                  streams.STREAM_INTAKE_SPOOL)
        self._task = asyncio.create_task(self._run(self._subscription), name="intake-spool-worker")
        self._task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("intake.spool_worker_died", error=repr(task.exception()))

    @property
    def alive(self) -> bool:
        """False once the fetch loop ended other than by `stop` (the health endpoint then answers 503)."""
        return self._task is not None and (not self._task.done() or self._stopping.is_set())

    async def stop(self) -> None:
        """Take no more entries, let those in flight finish (an unfinished one is redelivered later anyway)."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=FETCH_WAIT_SECONDS * 3)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=STOP_WAIT_SECONDS)
        left = [task for task in (*self._in_flight, *([self._task] if self._task else [])) if not task.done()]
        for task in left:
            task.cancel()  # its entry is not acknowledged: JetStream redelivers it after the ack wait
        await asyncio.gather(*left, return_exceptions=True)
        if self._subscription is not None:
            # Left subscribed, the connection's drain at shutdown waits out its whole timeout for it.
            try:
                await self._subscription.unsubscribe()
            except Exception as error:  # noqa: BLE001 - stopping while NATS is away must still end
                log.warning("intake.spool_unsubscribe_failed", error=repr(error))
            self._subscription = None

    def status(self) -> dict[str, Any]:
        return {"spool_worker": dict(self.counters, in_flight=len(self._in_flight))}

    async def _run(self, subscription: Any) -> None:
        while not self._stopping.is_set():
            room = CONCURRENCY - len(self._in_flight)
            if room <= 0:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await subscription.fetch(room, timeout=FETCH_WAIT_SECONDS)
            except (nats.errors.TimeoutError, TimeoutError):  # nothing waiting (nats-py raises either)
                continue
            except Exception as error:  # noqa: BLE001 - NATS away: the entries wait in the spool meanwhile
                log.warning("intake.spool_fetch_failed", error=repr(error))
                await asyncio.sleep(FETCH_WAIT_SECONDS)
                continue
            for message in messages:
                task = asyncio.create_task(self._settle(message))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _settle(self, message: Msg) -> None:
        # From the fetch on, also while waiting at the gate: JetStream must not hand the entry to another worker.
        heartbeat = asyncio.create_task(self._keep_in_progress(message))
        redelivered = (message.metadata.num_delivered or 1) > 1
        try:
            async with (self._gate.alone() if redelivered else self._gate.together()):
                await self._settle_entry(message, redelivered)
        except Exception as error:  # noqa: BLE001 - never lose the worker to one entry: it comes back later
            log.error("intake.spool_entry_failed", error=repr(error))
        finally:
            heartbeat.cancel()

    async def _keep_in_progress(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(self.policy.ack_wait_seconds / 3)
            try:
                await message.in_progress()
            except Exception:  # noqa: BLE001, S110 - NATS away: nothing to tell it; the entry is still ours
                pass

    async def _settle_entry(self, message: Msg, redelivered: bool) -> None:
        metadata = message.metadata
        delivery = metadata.num_delivered or 1
        sequence = metadata.sequence.stream if metadata.sequence else 0
        if self._stopping.is_set():
            await self._release(message, sequence, redelivered=False)
            return
        try:
            envelope = read_envelope(message.headers)
        except SpoolEntryInvalid as invalid:
            await self._give_up(message, None, str(invalid))
            return
        with structlog.contextvars.bound_contextvars(spool_id=envelope.spool_id[:16], source=envelope.source):
            if redelivered:
                starts = await self.attempts.started(sequence)
                if starts > self.policy.max_deliveries:
                    await self._give_up(message, envelope,
                                        f"{starts - 1} earlier attempts never finished (the process died?)")
                    return
            started = time.monotonic()
            try:
                if not await self._accept_despite_transient_failures(message, envelope):
                    await self._release(message, sequence, redelivered)  # stopping: back to the spool
                    return
            except Exception as error:  # noqa: BLE001 - a bug: retried a few times, then kept in the quarantine
                if delivery >= self.policy.max_deliveries:
                    await self._give_up(message, envelope, f"failed {delivery} times: {type(error).__name__}: {error}")
                else:
                    await self._retry(message, delivery, error)
                return
            await self._ack(message)
            if redelivered:
                await self.attempts.forget(sequence)
            self.counters["done"] += 1
            observability.event_settled(streams.CONSUMER_INTAKE_SPOOL, "ok", time.monotonic() - started)

    async def _accept_despite_transient_failures(self, message: Msg, envelope: SpoolEnvelope) -> bool:
        """Run the entry through the pipeline, waiting out NATS trouble; False if the worker stops meanwhile."""
        attempt = 0
        arrival = envelope.arrival()
        while True:
            try:
                outcome = await self.front.accept(await self._raw(message, envelope), arrival=arrival)
                if envelope.stored_raw is not None and not getattr(outcome, "kept_stored_raw", False):
                    await self.objects.discard_chunks(streams.BUCKET_RAW_MESSAGES, envelope.stored_raw.nuid)
                return True
            except TRANSIENT as error:
                attempt += 1
                delay = self.policy.retry_delay(attempt)
                log.warning("intake.spool_waiting", attempt=attempt, retry_in_seconds=delay, error=repr(error))
                self.counters["retried"] += 1
                observability.event_settled(streams.CONSUMER_INTAKE_SPOOL, "retried")
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    return False
                except TimeoutError:
                    continue

    async def _raw(self, message: Msg, envelope: SpoolEnvelope) -> bytes:
        if envelope.stored_raw is None:  # an entry of an earlier version: the raw is its payload
            return bytes(message.data)
        return await self.objects.read_chunks(streams.BUCKET_RAW_MESSAGES, envelope.stored_raw)

    async def _retry(self, message: Msg, delivery: int, error: BaseException) -> None:
        delay = self.policy.retry_delay(delivery)
        log.warning("intake.spool_retry", delivery=delivery, retry_in_seconds=delay, error=repr(error))
        self.counters["retried"] += 1
        observability.event_settled(streams.CONSUMER_INTAKE_SPOOL, "retried")
        try:
            await message.nak(delay=delay)
        except Exception as failure:  # noqa: BLE001 - without the nak JetStream redelivers after ack_wait anyway
            log.warning("intake.spool_nak_failed", error=repr(failure))

    async def _give_up(self, message: Msg, envelope: SpoolEnvelope | None, reason: str) -> None:
        received_at = envelope.received_at if envelope else (message.metadata.timestamp or datetime.now(timezone.utc))
        arrival = envelope.arrival() if envelope else Arrival.of(
            channel=Channel.EMAIL, received_at=received_at, envelope_sender=None, envelope_recipients=(),
            source="spool")
        try:
            raw = await self._raw(message, envelope) if envelope else bytes(message.data)
            await self.give_up(raw, arrival, reason=reason)
        except Exception as error:  # noqa: BLE001 - not kept yet: the entry stays in the spool and comes back
            log.error("intake.spool_quarantine_failed", error=repr(error))
            await self._retry(message, message.metadata.num_delivered or 1, error)
            return
        log.error("intake.spool_given_up", reason=reason)
        self.counters["given_up"] += 1
        observability.event_settled(streams.CONSUMER_INTAKE_SPOOL, "quarantined")
        await self._ack(message)
        if message.metadata.sequence is not None and (message.metadata.num_delivered or 1) > 1:
            await self.attempts.forget(message.metadata.sequence.stream)

    async def _release(self, message: Msg, sequence: int, redelivered: bool) -> None:
        """Hand the entry back on a graceful stop; a stop is no crash, so its recorded start is taken back."""
        if redelivered:
            await self.attempts.undo_start(sequence)
        try:
            await message.nak()
        except Exception as error:  # noqa: BLE001 - redelivered after the ack wait all the same
            log.warning("intake.spool_nak_failed", error=repr(error))

    async def _ack(self, message: Msg) -> None:
        try:
            await message.ack()
        except Exception as error:  # noqa: BLE001 - redelivered after ack_wait; the pipeline sees a duplicate
            log.warning("intake.spool_ack_failed", error=repr(error))
