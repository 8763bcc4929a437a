"""JetStream plumbing shared by the services: broker construction, stream set-up, publishing, delivery policy.

Losing a complaint is the worst failure this product can have, so no consumer relies on FastStream's default
acknowledgement (which drops a message whose handler raised). Every consumer runs its handler through
`settle_delivery`: ack after success; on failure a negative ack with a growing delay; after the configured number
of deliveries the event is copied whole to the dead-letter stream (with the error) and only then acknowledged.
The server's own `max_deliver` is left unlimited so that JetStream never drops a message silently; a message whose
previous deliveries never finished (the process crashed on it) is dead-lettered by the next one.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from urllib.parse import urlsplit
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as ServerAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy, ObjectStoreConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import ValidationError

from shared import streams
from shared.events import DeadLettered, Event
from shared.logging import redact_url
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0


def make_broker(settings: CommonSettings) -> NatsBroker:
    """A broker that reconnects for ever: a NATS restart must not stop a service."""
    return NatsBroker(
        [url.strip() for url in settings.nats_url.split(",") if url.strip()],
        connect_timeout=5,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        logger=None,
    )


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
    return NatsBroker(
        [url.strip() for url in settings.nats_url.split(",") if url.strip()],
        connect_timeout=2,
        allow_reconnect=False,
        max_reconnect_attempts=0,
        error_cb=_quiet,
        logger=None,
    )


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
                                      max_reconnect_attempts=0, error_cb=_quiet)
    except (OSError, TimeoutError, NatsError) as error:
        raise nats_unreachable(settings, error) from None


def stream_for_subject(subject: str) -> str:
    for definition in streams.STREAMS:
        for pattern in definition.subjects:
            if subject.startswith(pattern.removesuffix(">")):
                return definition.name
    raise ValueError(f"no stream captures subject {subject!r}")


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update every stream and object-store bucket; safe to run from every service at every start.

    `replicas` is 1 on a single server and 3 on a JetStream cluster (`OMBUDSDESK_STREAM_REPLICAS`).
    """
    for definition in streams.STREAMS:
        config = StreamConfig(
            name=definition.name,
            description=definition.description,
            subjects=list(definition.subjects),
            storage=StorageType.FILE,
            duplicate_window=definition.duplicate_window_seconds,
            max_age=definition.max_age_seconds,
            num_replicas=replicas,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    for bucket in (streams.BUCKET_RAW_MESSAGES, streams.BUCKET_ATTACHMENTS):
        try:
            await js.object_store(bucket)
        except (NotFoundError, BadRequestError):
            await js.create_object_store(bucket, config=ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas))


async def publish_event(broker: NatsBroker, event: Event, subject: str | None = None) -> bool:
    """Publish and wait for JetStream's acknowledgement. Returns False when JetStream saw it as a duplicate.

    Straight through nats-py's asynchronous JetStream publish (one shared reply subscription per connection)
    rather than a request per event: the ack is awaited all the same, and several callers publishing at once
    (`asyncio.gather`) go out in one write instead of one round trip each (docs/benchmarks-intake.md).
    """
    target = subject or event.publish_subject()
    ack = await _jetstream(broker).publish_async(
        target,
        event.model_dump_json().encode(),
        stream=stream_for_subject(target),
        headers={"Nats-Msg-Id": event.dedup_id(), "Ombudsdesk-Event": getattr(event, "event_type", "")},
    )
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            result = await ack
    finally:
        ack.cancel()
    return not result.duplicate


_JETSTREAM_CONTEXTS: weakref.WeakKeyDictionary[Client, JetStreamContext] = weakref.WeakKeyDictionary()


def _jetstream(broker: NatsBroker) -> JetStreamContext:
    """The connection's JetStream context for publishing, made once (each one subscribes its own reply inbox)."""
    connection = broker.connection
    context = _JETSTREAM_CONTEXTS.get(connection)
    if context is None:
        context = _JETSTREAM_CONTEXTS[connection] = connection.jetstream(timeout=PUBLISH_TIMEOUT_SECONDS)
    return context


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


async def settle_delivery(
    broker: NatsBroker,
    message: NatsMessage,
    policy: DeliveryPolicy,
    process: Callable[[], Awaitable[None]],
) -> None:
    """Run `process` for one delivery and settle it with JetStream according to `policy`."""
    metadata = message.raw_message.metadata
    delivery = metadata.num_delivered or 1
    sequence = metadata.sequence.stream if metadata.sequence else 0
    subject = message.raw_message.subject
    if delivery > policy.max_deliveries:
        await _dead_letter(broker, message, policy, delivery, "previous deliveries never finished (crash or timeout)")
        return
    try:
        await process()
    except (PermanentError, ValidationError, json.JSONDecodeError) as error:
        log.error("event.rejected", consumer=policy.durable, subject=subject, sequence=sequence,
                  error=describe_error(error))
        await _dead_letter(broker, message, policy, delivery, describe_error(error))
        return
    except Exception as error:  # noqa: BLE001 - any failure must lead to a retry, never to a lost event
        if delivery >= policy.max_deliveries:
            log.error("event.failed.giving_up", consumer=policy.durable, subject=subject, sequence=sequence,
                      delivery=delivery, error=describe_error(error))
            await _dead_letter(broker, message, policy, delivery, describe_error(error))
            return
        delay = policy.retry_delay(delivery)
        log.warning("event.failed.will_retry", consumer=policy.durable, subject=subject, sequence=sequence,
                    delivery=delivery, retry_in_seconds=delay, error=describe_error(error))
        await message.nack(delay=delay)
        return
    await message.ack()


async def _dead_letter(
    broker: NatsBroker, message: NatsMessage, policy: DeliveryPolicy, delivery: int, error: str
) -> None:
    metadata = message.raw_message.metadata
    record = DeadLettered(
        consumer=policy.durable,
        original_subject=message.raw_message.subject,
        stream_sequence=metadata.sequence.stream if metadata.sequence else 0,
        deliveries=delivery,
        error=error,
        payload=message.raw_message.data.decode("utf-8", errors="replace"),
    )
    # Published before the ack: if this fails the original stays unacknowledged and comes back.
    await publish_event(broker, record)
    await message.ack()
    log.error("event.dead_lettered", consumer=policy.durable, sequence=record.stream_sequence, error=error)


def subscribe_durable(
    broker: NatsBroker,
    settings: CommonSettings,
    *,
    subject: str,
    durable: str,
    handle: Callable[[bytes, str], Awaitable[None]],
    workers: int = 1,
) -> None:
    """Declare one durable pull consumer on `broker` whose deliveries are settled by `settle_delivery`.

    `handle(data, subject)` decodes and applies one event; it must be idempotent. With `workers` > 1, that many
    events are in flight at once in this process (FastStream runs a fetched batch concurrently). No I/O here: the
    consumer starts with the broker.
    """
    policy = DeliveryPolicy(durable=durable, max_deliveries=settings.max_deliveries,
                            ack_wait_seconds=settings.ack_wait_seconds)
    concurrency = {"max_workers": workers} if workers > 1 else {}

    @broker.subscriber(
        subject,
        stream=JStream(stream_for_subject(subject), declare=False),
        durable=durable,
        config=policy.consumer_config(),
        pull_sub=PullSub(batch_size=workers, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        **concurrency,
    )
    async def on_message(msg: NatsMessage) -> None:
        with structlog.contextvars.bound_contextvars(consumer=durable):
            await settle_delivery(broker, msg, policy, lambda: handle(msg.raw_message.data, msg.raw_message.subject))
