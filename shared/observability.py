"""What an operator sees of a running service (issue 14, "See it running"): the Prometheus metrics, the probes
`/health` (liveness), `/ready` (readiness) and `/metrics`, and the small HTTP server intake and the notifier serve
them with (the registry serves the same three on its API port, `services/registry/api.py`). docs/operations.md
describes every metric, probe and alert.

Two kinds of metrics:

- counters and histograms of what happens (mails taken in and refused, events consumed, processing times, deadline
  alerts raised, notices sent and failed) live in prometheus-client's process-wide registry and are moved where the
  thing happens, by one call of the functions below. Their labels are few and fixed (a channel, a consumer name, a
  reason code, a notice kind): never an address, a message key or a number, so a series never names a person and
  their count stays bounded. The labelled children are cached (`functools.cache`), so a hot path pays a dict
  lookup and prometheus-client's own lock, nothing more;
- gauges of state kept elsewhere (a consumer's pending count, the spool and outbox backlogs, quarantined messages,
  dead letters, readiness) are read when Prometheus scrapes, each read bounded by `SCRAPE_TIMEOUT_SECONDS`: a value
  that could not be read is left out of that scrape (its family is still listed), the scrape itself never hangs.

Readiness (`Probes.ready`): NATS connected, the database answering (where the service has one), every durable
consumer of the service attached here and known to the server. 503 with a JSON body naming what is not ready.
Liveness (`/health`) is separate on purpose: a NATS outage makes a service not ready, not dead — restarting it would
not help.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from shared import streams

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

# The longest one scrape-time read (a JetStream info request, a database count) may take: a scrape of a service
# whose NATS or database hangs answers within seconds, without that value.
SCRAPE_TIMEOUT_SECONDS = 2.0
# The longest a probe request may take in all (the body is read, the checks are bounded themselves).
PROBE_TIMEOUT_SECONDS = 5.0
CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"

# --------------------------------------------------------------------------------------------------- what happens

MAILS_TAKEN_IN = Counter(
    "ombudsdesk_intake_mails_total",
    "Messages through intake's one way in, by channel (smtp, imap, letters) and outcome (processed, duplicate, "
    "quarantined).",
    ["channel", "outcome"],
)
MAILS_REFUSED = Counter(
    "ombudsdesk_intake_mails_refused_total",
    "Mail refused at the door (SMTP answer 4xx/5xx, a letter or scan rejected), by channel and reason.",
    ["channel", "reason"],
)
EVENTS_CONSUMED = Counter(
    "ombudsdesk_events_consumed_total",
    "Deliveries settled by a durable consumer, by consumer and outcome (ok, retried, dead_lettered; the intake "
    "spool's given-up entries are quarantined).",
    ["consumer", "outcome"],
)
PROCESSING_SECONDS = Histogram(
    "ombudsdesk_event_processing_seconds",
    "Time a consumer's handler took for one delivery (failed ones included), by consumer.",
    ["consumer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DEADLINE_ALERTS = Counter(
    "ombudsdesk_deadline_alerts_raised_total",
    "Deadline alerts the registry published, by alert (approaching, missed) and deadline kind.",
    ["alert", "deadline_kind"],
)
NOTICES = Counter(
    "ombudsdesk_notices_total",
    "Notices the notifier's dispatcher settled, by notice kind and outcome (sent, failed, retried; suppressed: "
    "its file erased while it was being sent).",
    ["kind", "outcome"],
)


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    return metric.labels(*labels)


def mail_taken_in(source: str, outcome: str) -> None:
    """One message through intake's pipeline; `source` as the arrival names it (`imap:INBOX` counts as imap)."""
    _child(MAILS_TAKEN_IN, source.partition(":")[0] or "unknown", outcome).inc()


def mail_refused(channel: str, reason: str, count: int = 1) -> None:
    _child(MAILS_REFUSED, channel, reason).inc(count)


def event_settled(consumer: str, outcome: str, seconds: float | None = None) -> None:
    """One delivery of `consumer` settled: ok, retried or dead_lettered (quarantined for the intake spool)."""
    _child(EVENTS_CONSUMED, consumer, outcome).inc()
    if seconds is not None:
        _child(PROCESSING_SECONDS, consumer).observe(seconds)


def deadline_alert_raised(subject: str, deadline_kind: str) -> None:
    _child(DEADLINE_ALERTS, subject.rpartition(".")[2], deadline_kind).inc()


def notice_settled(kind: str, outcome: str) -> None:
    _child(NOTICES, kind, outcome).inc()


# Privacy (issue 16, services/registry/privacy/): what retention and erasure did, never to whom.
PRIVACY_ACTIONS = Counter(
    "ombudsdesk_privacy_actions_total",
    "Files anonymised, correspondents erased, held messages deleted, files whose due retention a legal hold "
    "suspended (counted at each run), by action and reason (retention, request).",
    ["action", "reason"],
)
RETENTION_RUNS = Counter(
    "ombudsdesk_retention_runs_total",
    "Daily retention runs of the registry, by outcome (ok, partial: some file failed, failed).",
    ["outcome"],
)


def privacy_action(action: str, reason: str, count: int = 1) -> None:
    _child(PRIVACY_ACTIONS, action, reason).inc(count)


def retention_run(outcome: str) -> None:
    _child(RETENTION_RUNS, outcome).inc()


# ------------------------------------------------------------------------------------------ read when scraped


@dataclass(frozen=True)
class ScrapeGauge:
    """A gauge without labels whose value is read at scrape time (a backlog, a count kept in a store)."""

    name: str
    documentation: str
    read: Callable[[], Awaitable[float]]


@dataclass(frozen=True)
class Consumer:
    """A durable JetStream consumer a service runs: its stream, and whether this process is attached to it now.
    `local` False: a consumer this process only watches (an SMTP-only intake reports the spool's figures, which
    other processes consume); it is no part of this process's readiness."""

    durable: str
    stream: str
    attached: Callable[[], bool]
    local: bool = True


def broker_consumers(broker: Any) -> list[Consumer]:
    """The durable pull consumers declared on a FastStream broker (`shared.messaging.durable_subscriber`)."""
    found = []
    for subscriber in broker.subscribers:
        durable = getattr(getattr(subscriber, "config", None), "durable_name", None)
        stream = getattr(getattr(subscriber, "stream", None), "name", None)
        if durable and stream:
            found.append(Consumer(durable, stream, functools.partial(_subscriber_attached, subscriber)))
    return found


def _subscriber_attached(subscriber: Any) -> bool:
    return bool(getattr(subscriber, "running", False)) and getattr(subscriber, "subscription", None) is not None


def _nats_connected(broker: Any) -> bool:
    try:
        return bool(broker.connection.is_connected)
    except Exception:  # noqa: BLE001 - never connected yet: FastStream raises instead of answering
        return False


async def _bounded(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, SCRAPE_TIMEOUT_SECONDS)


async def database_problem(engine: AsyncEngine) -> str | None:
    """None when the database answers `SELECT 1` in time, else the reason (its error's type only: the text may
    name a host or a user)."""
    # Imported here: intake, which has no database, imports this module on its hot import path (parse workers).
    from sqlalchemy import text

    async def ping() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await _bounded(ping())
    except TimeoutError:
        return "database did not answer in time"
    except Exception as error:  # noqa: BLE001 - the probe reports, it does not fail
        return f"database unreachable ({type(error).__name__})"
    return None


def _gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class Probes:
    """Readiness and scrape-time metrics of one service: its broker (NATS), its database if any, its durable
    consumers (those of the broker plus `consumers`, e.g. intake's spool worker) and its own gauges."""

    def __init__(self, service: str, broker: Any, *, engine: AsyncEngine | None = None,
                 consumers: Iterable[Consumer] = (), gauges: Iterable[ScrapeGauge] = (),
                 use_broker_consumers: bool = True) -> None:
        self.service = service
        self.broker = broker
        self.engine = engine
        self._extra_consumers = tuple(consumers)
        self.gauges = tuple(gauges)
        self.use_broker_consumers = use_broker_consumers

    def consumers(self) -> list[Consumer]:
        declared = broker_consumers(self.broker) if self.use_broker_consumers else []
        return [*declared, *self._extra_consumers]

    def _js(self) -> Any:
        return self.broker.connection.jetstream(timeout=SCRAPE_TIMEOUT_SECONDS)

    # -- readiness ---------------------------------------------------------------------------------------------------

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, str | None] = {}
        connected = _nats_connected(self.broker)
        checks["nats"] = None if connected else "not connected to NATS"
        consumers = [consumer for consumer in self.consumers() if consumer.local]
        detached = [consumer.durable for consumer in consumers if not consumer.attached()]
        if connected and not detached and consumers:
            missing = await self._missing_on_server(consumers)
            checks["consumers"] = f"not known to the server: {', '.join(missing)}" if missing else None
        elif consumers:
            checks["consumers"] = f"not attached: {', '.join(detached)}" if detached else "NATS not connected"
        if self.engine is not None:
            checks["database"] = await database_problem(self.engine)
        not_ready = sorted(name for name, problem in checks.items() if problem)
        body: dict[str, Any] = {
            "status": "ready" if not not_ready else "not ready",
            "service": self.service,
            "checks": {name: problem or "ok" for name, problem in checks.items()},
        }
        if not_ready:
            body["not_ready"] = not_ready
        return not not_ready, body

    async def _missing_on_server(self, consumers: Sequence[Consumer]) -> list[str]:
        js = self._js()

        async def known(consumer: Consumer) -> bool:
            try:
                await _bounded(js.consumer_info(consumer.stream, consumer.durable))
            except Exception:  # noqa: BLE001 - deleted, NATS slow or gone: not ready either way
                return False
            return True

        found = await asyncio.gather(*(known(consumer) for consumer in consumers))
        return [consumer.durable for consumer, ok in zip(consumers, found) if not ok]

    # -- metrics -----------------------------------------------------------------------------------------------------

    async def metrics(self) -> bytes:
        """The exposition text: the process-wide counters, then this service's scrape-time gauges."""
        families = await self.scrape_families()
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(_Families(families))
        return generate_latest(REGISTRY) + generate_latest(scraped)

    async def scrape_families(self) -> list[Metric]:
        consumers = self.consumers()
        ready, report = await self.ready()
        ready_family = _gauge("ombudsdesk_ready", "1 when the service is ready (as /ready answers), else 0.",
                              ["service"])
        ready_family.add_metric([self.service], 1.0 if ready else 0.0)
        check_family = _gauge("ombudsdesk_ready_check",
                              "1 per readiness check passing, 0 failing (nats, database, consumers).", ["check"])
        for name, outcome in report["checks"].items():
            check_family.add_metric([name], 1.0 if outcome == "ok" else 0.0)
        attached = _gauge("ombudsdesk_consumer_attached",
                          "1 when this process is attached to the durable consumer (its subscriber runs).",
                          ["consumer"])
        for consumer in consumers:
            if consumer.local:
                attached.add_metric([consumer.durable], 1.0 if consumer.attached() else 0.0)
        families: list[Metric] = [ready_family, check_family, attached]
        families += await self._jetstream_families(consumers)
        for gauge in self.gauges:
            family = _gauge(gauge.name, gauge.documentation)
            try:
                family.add_metric([], float(await _bounded(gauge.read())))
            except Exception as error:  # noqa: BLE001 - left out of this scrape; the family stays listed
                log.info("metrics.read_failed", metric=gauge.name, error=type(error).__name__)
            families.append(family)
        return families

    async def _jetstream_families(self, consumers: Sequence[Consumer]) -> list[Metric]:
        pending = _gauge("ombudsdesk_consumer_pending",
                         "Events in the stream not yet delivered to the consumer (JetStream num_pending).",
                         ["consumer"])
        ack_pending = _gauge("ombudsdesk_consumer_ack_pending",
                             "Events delivered to the consumer and not yet acknowledged.", ["consumer"])
        waiting = _gauge("ombudsdesk_consumer_waiting_pulls",
                         "Pull requests waiting on the consumer, from every process (0 for long: nobody consumes).",
                         ["consumer"])
        dead = _gauge("ombudsdesk_dead_letters",
                      "Events of the consumer kept in the dead-letter stream (not yet replayed).", ["consumer"])
        families: list[Metric] = [pending, ack_pending, waiting, dead]
        if not _nats_connected(self.broker):
            return families
        js = self._js()

        async def info(consumer: Consumer) -> Any:
            return await _bounded(js.consumer_info(consumer.stream, consumer.durable))

        results = await asyncio.gather(*(info(consumer) for consumer in consumers), return_exceptions=True)
        for consumer, result in zip(consumers, results):
            if isinstance(result, BaseException):
                continue
            pending.add_metric([consumer.durable], float(result.num_pending or 0))
            ack_pending.add_metric([consumer.durable], float(result.num_ack_pending or 0))
            waiting.add_metric([consumer.durable], float(result.num_waiting or 0))
        dead_letter_consumers = [c.durable for c in consumers if c.local and c.stream != streams.STREAM_INTAKE_SPOOL]
        if dead_letter_consumers:
            try:
                counts = await dead_letter_counts(js)
            except Exception as error:  # noqa: BLE001 - left out of this scrape
                log.info("metrics.read_failed", metric="ombudsdesk_dead_letters", error=type(error).__name__)
            else:
                for durable in dead_letter_consumers:
                    dead.add_metric([durable], float(counts.get(durable, 0)))
        return families


async def dead_letter_counts(js: Any) -> dict[str, int]:
    """Dead letters kept per consumer (the last part of their subject), in one stream-info request."""
    info = await _bounded(js.stream_info(streams.STREAM_DEAD_LETTER,
                                         subjects_filter=f"{streams.SUBJECT_DEAD_LETTER}.>"))
    subjects = getattr(info.state, "subjects", None) or {}
    prefix = f"{streams.SUBJECT_DEAD_LETTER}."
    return {subject.removeprefix(prefix): int(count) for subject, count in subjects.items()}


class _Families:
    """A collector handing prometheus-client families already read (it collects synchronously)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


# -------------------------------------------------------------------------------------------- the probe server

Report = tuple[bool, dict[str, Any]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass
class ProbeServer:
    """`GET /health`, `/ready` (JSON, 200 or 503) and `/metrics` (Prometheus text) on plain asyncio streams: three
    read-only routes need no web framework. `/` answers as `/health` (the route intake served before)."""

    host: str
    port: int
    health: Callable[[], Awaitable[Report]]
    ready: Callable[[], Awaitable[Report]]
    metrics: Callable[[], Awaitable[bytes]]
    server: asyncio.base_events.Server | None = field(default=None, init=False)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("probes.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "application/json", b'{"error": "method not allowed"}'
        if path == "/metrics":
            return 200, CONTENT_TYPE_METRICS, await asyncio.wait_for(self.metrics(), PROBE_TIMEOUT_SECONDS)
        probe = {"/health": self.health, "/": self.health, "/ready": self.ready}.get(path)
        if probe is None:
            return 404, "application/json", b'{"error": "not found"}'
        good, body = await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
        return (200 if good else 503), "application/json", json.dumps(body, default=str).encode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        request_line = b""
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            method = parts[0] if parts else "GET"
            path = (parts[1] if len(parts) > 1 else "/").split("?")[0]
            status, content_type, payload = await self._answer(method, path)
        except Exception as error:  # noqa: BLE001 - a probe must always get an answer
            status, content_type = 503, "application/json"
            payload = json.dumps({"status": "error", "error": type(error).__name__}).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            writer.write(head if request_line.startswith(b"HEAD ") else head + payload)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        if time.monotonic() - started > PROBE_TIMEOUT_SECONDS:
            log.warning("probes.slow_answer", seconds=round(time.monotonic() - started, 2))

