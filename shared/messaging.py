"""JetStream plumbing shared by the services: broker construction, typed publishers and durable subscribers,
delivery policy (the streams themselves are created and compared by `shared.stream_admin`).

One style for every event (issue 11): events are the pydantic contracts of `shared.events`; a service declares what
it publishes with `declare_publishers` (FastStream publishers, `broker.publisher(subject, schema=Model)`) and each
subscription with `durable_subscriber`, a FastStream JetStream pull subscriber whose handler takes the event model
as its parameter. The same declarations feed the AsyncAPI document (`python -m ombudsdesk.asyncapi`) and
FastStream's `TestNatsBroker`.

Losing a complaint is the worst failure this product can have, so no subscriber relies on FastStream's default
acknowledgement (which drops a message whose handler raised). Every durable subscriber runs its handler through
`settle_delivery` (a FastStream middleware of its own router): ack after success; on failure a negative ack with a
growing delay; after the configured number of deliveries the event is copied whole to the dead-letter stream (with
the error) and only then acknowledged. A payload that is not a valid event (FastStream validates it against the
handler's model inside the middleware) is dead-lettered at once. The server's own `max_deliver` is left unlimited
so that JetStream never drops a message silently; a message whose previous deliveries never finished (the process
crashed on it) is dead-lettered by the next one.

Events committed in batches (issue 12): `durable_subscriber(..., batch=N)` fetches up to N events at once (waiting
at most `BATCH_WAIT_SECONDS` for companions when fewer are there) and runs their handlers concurrently, each still
settled on its own. Inside those handlers `in_batched_delivery()` is true, and a service's write path hands its
transactional work to a `CommitGroup`, which runs the works of the handlers waiting at that moment in ONE
transaction and answers each caller only after the commit: every event is still acknowledged after its effect is
committed, one commit (one fsync, one round trip) serves the batch. When the batch's transaction fails, it is rolled
back and each work runs again alone, so one poison event meets its own retry and dead letter and the others commit.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
import contextvars
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import nats
import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, NatsRouter, PullSub
from faststream.nats.security import NatsCredentials, NatsSecurity, NatsUserPassword
from faststream.nats.publisher.usecase import LogicPublisher
from faststream.nats.subscriber.usecases import LogicSubscriber
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NotJSMessageError
from nats.js.api import AckPolicy as ServerAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from shared import observability, streams
from shared.events import DeadLettered, Event
from shared.jetstream_producer import PipelinedJetStreamProducer, use_pipelined_publishing
from shared.logging import redact_url
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0


# A process's replies (JetStream API answers, fetched events, a preview's answer) come to inboxes under this prefix
# followed by its NATS user: the server lets each user subscribe to its own inboxes only (ombudsdesk.nats_config).
INBOX_PREFIX = "_INBOX"


def nats_inbox_prefix(user: str) -> str:
    """The inbox prefix of a NATS user (`_INBOX_registry`); nats-py's own `_INBOX` without one."""
    return f"{INBOX_PREFIX}_{user}" if user else INBOX_PREFIX


def nats_tls_context(settings: CommonSettings) -> ssl.SSLContext | None:
    """The TLS context of every NATS connection, or None for plaintext (`make run`). Only the configured CA is
    trusted when one is set (a server certificate signed by any other is refused), else the system's."""
    if not settings.nats_uses_tls():
        return None
    ca_file = settings.nats_tls_ca_file
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.nats_tls_cert_file is not None and settings.nats_tls_key_file is not None:
        context.load_cert_chain(str(settings.nats_tls_cert_file), str(settings.nats_tls_key_file))
    return context


def nats_connect_options(settings: CommonSettings) -> dict[str, Any]:
    """The nats-py `connect` keyword arguments that say who this process is and how it talks to NATS: user and
    password (read from the password file now), or the `.creds` file; the TLS context; the process's inbox prefix.

    With TLS the client speaks TLS from the first byte (`tls_handshake_first`): nats-py otherwise upgrades only when
    the server's INFO asks for it, so a server (or anything in the middle) that did not would receive the password
    in clear. Used by every connection of the code base (`make_broker`, `command_broker`,
    `connect_client_for_command`).
    """
    options: dict[str, Any] = {"inbox_prefix": nats_inbox_prefix(settings.nats_user)}
    if settings.nats_password_file is not None:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password_file.read_text(encoding="utf-8").strip()
    elif settings.nats_credentials_file is not None:
        options["user_credentials"] = str(settings.nats_credentials_file)
    context = nats_tls_context(settings)
    if context is not None:
        options["tls"] = context
        options["tls_handshake_first"] = True
    return options


def _broker_options(settings: CommonSettings) -> dict[str, Any]:
    """`nats_connect_options` in FastStream's terms: its NatsBroker takes credentials and TLS as a `security`."""
    options = nats_connect_options(settings)
    tls = {"ssl_context": options.get("tls"), "tls_handshake_first": options.get("tls_handshake_first", False)}
    security: NatsSecurity | None = None
    if "user" in options:
        security = NatsUserPassword(options["user"], options["password"], **tls)
    elif "user_credentials" in options:
        security = NatsCredentials(options["user_credentials"], **tls)
    elif options.get("tls") is not None:
        security = NatsSecurity(**tls)
    return {"security": security, "inbox_prefix": options["inbox_prefix"]}


def make_broker(settings: CommonSettings) -> NatsBroker:
    """A broker that reconnects for ever: a NATS restart must not stop a service."""
    broker = NatsBroker(
        _server_urls(settings),
        connect_timeout=5,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        logger=None,
        **_broker_options(settings),
    )
    use_pipelined_publishing(broker)
    return broker


# A command-line tool must say within seconds that NATS is not there, never wait for it (issue 10).
COMMAND_CONNECT_SECONDS = 4.0


class Unreachable(Exception):
    """A staff command cannot reach what it needs; the text is one line naming it and the setting to check."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, ConnectionRefusedError) or "refused" in text.lower():
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "no answer (timed out)"
    return text[:160] or type(error).__name__


def nats_unreachable(settings: CommonSettings, error: BaseException) -> Unreachable:
    return Unreachable(f"cannot reach NATS at {redact_url(settings.nats_url)} (OMBUDSDESK_NATS_URL): "
                       f"{_first_line(error)}")


def _server_urls(settings: CommonSettings) -> list[str]:
    return [url.strip() for url in settings.nats_url.split(",") if url.strip()]


async def _quiet(_error: Exception) -> None:
    """nats-py prints every connection error with its traceback by default; the command says it in one line."""


async def _probe(settings: CommonSettings) -> None:
    """Open (and close) a TCP connection to each server until one answers: a refused or silent port is told at
    once, in one line, instead of after nats-py's own retries."""
    last: BaseException | None = None
    for url in _server_urls(settings):
        parsed = urlsplit(url if "://" in url else f"nats://{url}")
        try:
            async with asyncio.timeout(COMMAND_CONNECT_SECONDS / 2):
                _reader, writer = await asyncio.open_connection(parsed.hostname or "127.0.0.1", parsed.port or 4222)
        except (OSError, TimeoutError) as error:
            last = error
            continue
        writer.close()
        return
    raise nats_unreachable(settings, last or ConnectionError("no server configured"))


def command_broker(settings: CommonSettings) -> NatsBroker:
    """A broker for a staff command: no reconnection, so that a server that is not there fails at once."""
    broker = NatsBroker(
        _server_urls(settings),
        connect_timeout=2,
        allow_reconnect=False,
        max_reconnect_attempts=0,
        error_cb=_quiet,
        logger=None,
        **_broker_options(settings),
    )
    use_pipelined_publishing(broker)
    return broker


async def connect_for_command(broker: NatsBroker, settings: CommonSettings) -> None:
    """`broker.connect()` within `COMMAND_CONNECT_SECONDS`, or `Unreachable` naming the URL and its setting."""
    await _probe(settings)
    try:
        async with asyncio.timeout(COMMAND_CONNECT_SECONDS):
            await broker.connect()
    except (OSError, TimeoutError, NatsError) as error:
        raise nats_unreachable(settings, error) from None


async def connect_client_for_command(settings: CommonSettings) -> Client:
    """A bare nats-py connection for a staff command (same rules as `connect_for_command`)."""
    await _probe(settings)
    try:
        async with asyncio.timeout(COMMAND_CONNECT_SECONDS):
            return await nats.connect(_server_urls(settings), connect_timeout=2, allow_reconnect=False,
                                      max_reconnect_attempts=0, error_cb=_quiet, **nats_connect_options(settings))
    except (OSError, TimeoutError, NatsError) as error:
        raise nats_unreachable(settings, error) from None


def stream_for_subject(subject: str) -> str:
    for definition in streams.STREAMS:
        for pattern in definition.subjects:
            if subject.startswith(pattern.removesuffix(">")):
                return definition.name
    raise ValueError(f"no stream captures subject {subject!r}")


def declare_publishers(broker: NatsBroker | NatsRouter, events: Iterable[type[Event]]) -> None:
    """Declare a FastStream publisher for each event type a service publishes (its AsyncAPI `send` operations)."""
    for event_type in events:
        _declare_publisher(broker, event_type.subject, event_type)


def _declare_publisher(broker: NatsBroker | NatsRouter, subject: str, event_type: type[Event]) -> LogicPublisher:
    return broker.publisher(
        subject,
        schema=event_type,
        stream=JStream(stream_for_subject(subject), declare=False),
        timeout=PUBLISH_TIMEOUT_SECONDS,
        title=f"{subject}:{event_type.__name__}",
        description=(event_type.__doc__ or "").strip() or None,
    )


def _publisher_for(broker: NatsBroker, subject: str, event_type: type[Event]) -> LogicPublisher:
    """The publisher declared for `subject`; declared now for a caller that did not (a tool, a test, a benchmark)."""
    known = _PUBLISHERS.setdefault(broker, {})
    publisher = known.get(subject)
    if publisher is None:
        declared = (p for p in broker.publishers if isinstance(p, LogicPublisher) and p.subject.template == subject)
        publisher = known[subject] = next(declared, None) or _declare_publisher(broker, subject, event_type)
    return publisher


_PUBLISHERS: weakref.WeakKeyDictionary[NatsBroker, dict[str, LogicPublisher]] = weakref.WeakKeyDictionary()


def event_headers(event: Event) -> dict[str, str]:
    """`Nats-Msg-Id`: JetStream drops a second publish with the same id within the stream's duplicate window."""
    return stored_event_headers(event.dedup_id(), getattr(event, "event_type", ""))


def stored_event_headers(dedup_id: str, event_type: str) -> dict[str, str]:
    return {"Nats-Msg-Id": dedup_id, "Ombudsdesk-Event": event_type}


async def publish_event(broker: NatsBroker, event: Event, subject: str | None = None) -> bool:
    """Publish through the subject's FastStream publisher and wait for JetStream's acknowledgement.

    Returns False when JetStream saw it as a duplicate. Publishes are pipelined (`shared.jetstream_producer`):
    several callers awaiting at once (`asyncio.gather`) go out in one write instead of one round trip each.
    """
    target = subject or event.publish_subject()
    ack = await _publisher_for(broker, target, type(event)).publish(
        event, headers=event_headers(event), stream=stream_for_subject(target), timeout=PUBLISH_TIMEOUT_SECONDS)
    return ack is None or not ack.duplicate  # None: FastStream's TestNatsBroker, which has no JetStream


async def publish_stored(broker: NatsBroker, subject: str, payload: str, *, dedup_id: str,
                         event_type: str) -> bool | None:
    """Publish an event stored already encoded (the registry's outbox rows: `event.model_dump_json()`, its dedup id
    and type) as `publish_event` would publish the event: same subject, body, `Nats-Msg-Id`, acknowledgement. It
    skips what would cost more than the publish itself (issue 12's profile: about 5 % of the registry's CPU):
    decoding the stored JSON into its model, FastStream's per-publish middleware stack, encoding it again.

    Returns False when JetStream saw it as a duplicate; None, publishing nothing, when the broker's producer is not
    the pipelined one (FastStream's `TestNatsBroker` swaps in its own): the caller then uses `publish_event`."""
    producer = broker.config.broker_config.js_producer
    if not isinstance(producer, PipelinedJetStreamProducer):
        return None
    ack = await producer.publish_encoded(
        subject, payload.encode(), stream=stream_for_subject(subject), timeout=PUBLISH_TIMEOUT_SECONDS,
        headers={"content-type": JSON_CONTENT_TYPE, **stored_event_headers(dedup_id, event_type)})
    return not ack.duplicate


# What FastStream's codec names a pydantic body (`publish_event`'s), and its subscribers decode as JSON.
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How a durable consumer treats failures; see the module docstring."""

    durable: str
    max_deliveries: int = 8
    ack_wait_seconds: float = 30.0
    first_retry_seconds: float = 0.5
    longest_retry_seconds: float = 60.0

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=ServerAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_seconds,
            max_deliver=-1,
            max_ack_pending=1000,
        )

    def retry_delay(self, delivery: int) -> float:
        # The exponent is bounded: 2 ** 1025 as a float overflows after enough retries (hours of NATS trouble).
        return min(self.first_retry_seconds * 2 ** min(max(delivery - 1, 0), 32), self.longest_retry_seconds)


class PermanentError(Exception):
    """An event that can never succeed however often it is retried (malformed, contradicts the register)."""


def describe_error(error: BaseException) -> str:
    """The error for a log line or a dead letter, without the data that caused it: a pydantic error names each
    field and what is wrong with it, never the value given (an event carries names, addresses, complaint text)."""
    if isinstance(error, ValidationError):
        problems = "; ".join(f"{'.'.join(str(part) for part in problem['loc']) or '(event)'}: {problem['type']}"
                             for problem in error.errors(include_input=False, include_url=False)[:10])
        return f"ValidationError: {error.error_count()} problem(s): {problems}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class _Delivery:
    """Where one delivery stands in its stream: the how-manyth, and the stream sequence of the event."""

    number: int
    sequence: int

    @classmethod
    def of(cls, message: NatsMessage) -> _Delivery:
        try:
            metadata = message.raw_message.metadata
        except NotJSMessageError:  # FastStream's TestNatsBroker: no JetStream, every delivery is the first
            return cls(1, 0)
        return cls(metadata.num_delivered or 1, metadata.sequence.stream if metadata.sequence else 0)


async def settle_delivery(
    broker: NatsBroker,
    message: NatsMessage,
    policy: DeliveryPolicy,
    process: Callable[[], Awaitable[Any]],
) -> None:
    """Run `process` for one delivery and settle it with JetStream according to `policy`."""
    delivery = _Delivery.of(message)
    subject = message.raw_message.subject
    if delivery.number > policy.max_deliveries:
        await _dead_letter(broker, message, policy, delivery, "previous deliveries never finished (crash or timeout)")
        return
    started = time.monotonic()
    try:
        await process()
    except (PermanentError, ValidationError, json.JSONDecodeError) as error:
        log.error("event.rejected", consumer=policy.durable, subject=subject, sequence=delivery.sequence,
                  error=describe_error(error))
        await _dead_letter(broker, message, policy, delivery, describe_error(error))
        return
    except Exception as error:  # noqa: BLE001 - any failure must lead to a retry, never to a lost event
        if delivery.number >= policy.max_deliveries:
            log.error("event.failed.giving_up", consumer=policy.durable, subject=subject, sequence=delivery.sequence,
                      delivery=delivery.number, error=describe_error(error))
            await _dead_letter(broker, message, policy, delivery, describe_error(error))
            return
        delay = policy.retry_delay(delivery.number)
        log.warning("event.failed.will_retry", consumer=policy.durable, subject=subject, sequence=delivery.sequence,
                    delivery=delivery.number, retry_in_seconds=delay, error=describe_error(error))
        await message.nack(delay=delay)
        observability.event_settled(policy.durable, "retried", time.monotonic() - started)
        return
    await message.ack()
    observability.event_settled(policy.durable, "ok", time.monotonic() - started)


async def _dead_letter(
    broker: NatsBroker, message: NatsMessage, policy: DeliveryPolicy, delivery: _Delivery, error: str
) -> None:
    record = DeadLettered(
        consumer=policy.durable,
        original_subject=message.raw_message.subject,
        stream_sequence=delivery.sequence,
        deliveries=delivery.number,
        error=error,
        payload=message.raw_message.data.decode("utf-8", errors="replace"),
    )
    # Published before the ack: if this fails the original stays unacknowledged and comes back.
    await publish_event(broker, record)
    await message.ack()
    observability.event_settled(policy.durable, "dead_lettered")
    log.error("event.dead_lettered", consumer=policy.durable, sequence=record.stream_sequence, error=error)


class _SettledDelivery(BaseMiddleware):
    """The middleware of one durable subscriber: its handler (FastStream's validation of the event included) runs
    inside `settle_delivery`, which alone acknowledges."""

    def __init__(self, msg: Any, /, *, context: Any, broker: NatsBroker, policy: DeliveryPolicy,
                 batched: bool = False) -> None:
        super().__init__(msg, context=context)
        self.broker = broker
        self.policy = policy
        self.batched = batched

    async def consume_scope(self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]],
                            msg: StreamMessage[Any]) -> None:
        # FastStream runs each delivery in a task of its own: the flag is this delivery's, not the process's.
        token = _BATCHED_DELIVERY.set(self.batched)
        try:
            with structlog.contextvars.bound_contextvars(consumer=self.policy.durable):
                await settle_delivery(self.broker, msg, self.policy, lambda: call_next(msg))  # type: ignore[arg-type]
        finally:
            _BATCHED_DELIVERY.reset(token)


# ----------------------------------------------------------------------------------- events committed in batches

# The longest a batched subscriber's fetch may wait for companions of the events it has: the bound on what batching
# adds to a lone event's latency, and the period of an idle subscriber's fetches (20 a second). Measured with
# nats-py 2.16 and nats-server 2.15, a fetch returns a partial batch as soon as its first event is there (2 ms after
# the publish, with a 2 s timeout): the bound is a guarantee, not the usual cost.
BATCH_WAIT_SECONDS = 0.05
# The most works one transaction of a `CommitGroup` takes (a larger queue is served in several transactions).
COMMIT_GROUP_LIMIT = 64
# A group gathers the works submitted while the event loop turns this many times without a new one arriving.
_GATHER_TICKS = 2

_BATCHED_DELIVERY: ContextVar[bool] = ContextVar("ombudsdesk_batched_delivery", default=False)


def in_batched_delivery() -> bool:
    """True inside the handler of a batched durable subscriber: its writes may share a transaction with the other
    events of the batch (`CommitGroup`)."""
    return _BATCHED_DELIVERY.get()


WorkT = TypeVar("WorkT")
ResultT = TypeVar("ResultT")


class CommitGroup(Generic[WorkT, ResultT]):
    """Group commit: the works submitted at about the same moment run together in one transaction.

    `together(works)` runs a list of works in one transaction and returns their results in order, after the commit
    (and whatever must follow it, such as publishing the events it stored); `alone(work)` runs one work in a
    transaction of its own. `submit(work)` returns the work's result once it is committed. A batch whose
    `together` raises is rolled back by it; every work of that batch then runs `alone`, so that each caller gets
    its own result or its own error (works must be safe to run again on fresh state, as a unique-key retry does).

    No timer: a batch is what is waiting when the previous one ends (plus what arrives within `_GATHER_TICKS`
    turns of the event loop), so a lone work starts at once and a batch grows only with the load.
    """

    def __init__(self, name: str, together: Callable[[Sequence[WorkT]], Awaitable[Sequence[ResultT]]],
                 alone: Callable[[WorkT], Awaitable[ResultT]], limit: int = COMMIT_GROUP_LIMIT) -> None:
        self.name = name
        self._together = together
        self._alone = alone
        self.limit = limit
        self._waiting: list[tuple[WorkT, asyncio.Future[ResultT]]] = []
        self._runner: asyncio.Task[None] | None = None
        # What happened, for tests and benchmarks: transactions run together, the works in them, batches rolled back.
        self.batches = 0
        self.works_together = 0
        self.fallbacks = 0

    async def submit(self, work: WorkT) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._runner is None or self._runner.done():
            # A context of its own: the runner serves every caller, its logs must not carry the first one's fields.
            self._runner = asyncio.create_task(self._run(), name=f"commit-group-{self.name}",
                                               context=contextvars.Context())
        return await future

    async def _gather(self) -> None:
        quiet = 0
        while quiet < _GATHER_TICKS and len(self._waiting) < self.limit:
            count = len(self._waiting)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._waiting) == count else 0

    async def _run(self) -> None:
        batch: list[tuple[WorkT, asyncio.Future[ResultT]]] = []
        try:
            while self._waiting:
                await self._gather()
                batch = [entry for entry in self._waiting[:self.limit] if not entry[1].done()]
                del self._waiting[:self.limit]
                if batch:
                    await self._settle(batch)
                batch = []
        except BaseException:
            # Cancelled (the service stops): nobody may wait for ever on a work that will not run.
            for _work, future in [*batch, *self._waiting]:
                if not future.done():
                    future.cancel()
            self._waiting.clear()
            raise

    async def _settle(self, batch: list[tuple[WorkT, asyncio.Future[ResultT]]]) -> None:
        if len(batch) > 1:
            try:
                results = await self._together([work for work, _future in batch])
            except Exception as error:  # noqa: BLE001 - the batch is rolled back; each work is tried alone below
                self.fallbacks += 1
                log.warning("commit_group.batch_failed", group=self.name, size=len(batch),
                            error=describe_error(error))
            else:
                self.batches += 1
                self.works_together += len(batch)
                for (_work, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for work, future in batch:
            try:
                result = await self._alone(work)
            except Exception as error:  # noqa: BLE001 - handed to its caller, whose delivery retries it
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)


def durable_subscriber(
    broker: NatsBroker,
    settings: CommonSettings,
    *,
    subject: str,
    durable: str,
    workers: int = 1,
    batch: int = 1,
) -> LogicSubscriber[Any]:
    """A durable JetStream pull subscriber for `subject`, to decorate the handler of one event type:

        @durable_subscriber(broker, settings, subject=streams.SUBJECT_X, durable=streams.CONSUMER_Y)
        async def x_happened(event: XHappened) -> None: ...

    FastStream validates the payload against the handler's event model; the handler must be idempotent (an event
    can come twice). Deliveries are settled by `settle_delivery` (`DeliveryPolicy` from the settings); the
    consumer's dead-letter subject gets its publisher here. With `workers` > 1, that many events are in flight at
    once in this process (FastStream runs a fetched batch concurrently). With `batch` > 1, up to that many events
    are fetched at once (at most `BATCH_WAIT_SECONDS` spent waiting for companions), their handlers run
    concurrently with `in_batched_delivery()` true, and the next fetch waits for all of them: the handlers' writes
    can share one transaction (`CommitGroup`). No I/O: it starts with the broker.
    """
    policy = DeliveryPolicy(durable=durable, max_deliveries=settings.max_deliveries,
                            ack_wait_seconds=settings.ack_wait_seconds)
    batched = batch > 1
    # A router of its own: FastStream attaches middlewares to a broker or a router, and the policy names the consumer.
    router = NatsRouter(middlewares=(functools.partial(_SettledDelivery, broker=broker, policy=policy,
                                                       batched=batched),))
    # A batched subscriber is FastStream's plain pull subscriber (fetch, run the fetched events concurrently, wait
    # for all): its whole fetch is in flight together, so the group commit sees all of it.
    concurrency = {"max_workers": workers} if workers > 1 and not batched else {}
    pull = PullSub(batch_size=batch, timeout=BATCH_WAIT_SECONDS) if batched else PullSub(batch_size=workers,
                                                                                          timeout=1.0)
    subscriber = router.subscriber(
        subject,
        stream=JStream(stream_for_subject(subject), declare=False),
        durable=durable,
        config=policy.consumer_config(),
        pull_sub=pull,
        ack_policy=AckPolicy.MANUAL,
        # FastStream gives pull subscriptions nats-py's default inbox, not the connection's: the user's own.
        inbox_prefix=f"{nats_inbox_prefix(settings.nats_user)}.".encode(),
        title=f"{subject}:{durable}",
        **concurrency,
    )
    _declare_publisher(router, streams.dead_letter_subject(durable), DeadLettered)
    broker.include_router(router)
    return subscriber
