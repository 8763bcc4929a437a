"""The deployment the fault tests break: a three-node JetStream cluster (`NatsCluster`, streams with 3 replicas), a
private PostgreSQL with the registry's and the notifier's databases, two instances of each service as real processes
(`python -m services.<name>`, as `make run` starts them), and the mail catcher as the relay.

Also here: the senders, which behave as a sending MTA does (a 4xx, a refused or dropped connection → the same
message again a little later, possibly to the other intake instance, as an MTA tries the next MX), and the check of
the outcome that every fault test ends with (`Outcome`).
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import os
import random
import re
import smtplib
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path

import asyncpg
import nats
from nats.js.api import ConsumerInfo

from ombudsdesk.embedded_nats import free_port, is_listening
from ombudsdesk.mailcatcher import MailCatcher
from shared import streams
from tests.cluster.nats_faults import PartitionableCluster
from tests.cluster.postgres import PrivatePostgres
from tests.e2e.stack import ServiceProcess

COMPLAINTS = "plaintes@ombudsdesk.localhost"
SERVICES = ("registry", "notifier", "intake")
NUMBER = re.compile(r"\b([A-Z]+)-(\d{4})-(\d{5,})\b")
HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)
BODY = ("Madame, Monsieur,\n\nJe conteste la facture d'eau reçue le 3 novembre : le montant ne correspond pas à ma "
        "consommation. J'ai écrit deux fois au service clientèle, sans réponse.\n\nJeanne Dupont\n")


# ------------------------------------------------------------------------------------------------------ processes


class _Environment:
    """The one method `ServiceProcess` asks of its configuration: the process's environment variables."""

    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables

    def environment(self) -> dict[str, str]:
        return self.variables


class ServiceInstance(ServiceProcess):
    """One of several processes of one service (the end-to-end tests' `ServiceProcess`, with a log of its own);
    `kill()` is a SIGKILL (a crash), counted; `start()` starts it again with the same ports.

    `ready_port` is the port each service opens last in its start, once its consumers are attached: the registry's
    API, the notifier's health probe, and intake's SMTP — last here because this stack gives intake no health port
    (that one would open after SMTP). Listening there means started."""

    def __init__(self, service: str, index: int, environment: dict[str, str], folder: Path, ready_port: int,
                 smtp_port: int | None = None) -> None:
        super().__init__(service, _Environment(environment), folder)  # type: ignore[arg-type]
        self.service = service  # `name`, as in `ServiceProcess`, is the module: `python -m services.<name>`
        self.index = index
        self.log_path = folder / f"{service}-{index}.log"
        self.ready_port = ready_port
        self.smtp_port = smtp_port
        self.kills = 0

    @property
    def ready(self) -> bool:
        return self.running and is_listening(self.ready_port, "127.0.0.1")

    def last_words(self, lines: int = 40) -> str:
        """Its exit code, if it ended (negative: the signal that ended it), and the end of its log: what an assertion
        message must carry, since the test's folder is gone when CI reports."""
        code = self.process.returncode if self.process is not None else None
        text = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return f"--- {self.label} (exit code {code}) ---\n" + "\n".join(text[-lines:])

    @property
    def label(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.running:
            super().kill()
            self.kills += 1


class FaultStack:
    """Cluster, databases, catcher and 2 × 3 service processes, in `folder`; an async context manager."""

    def __init__(self, folder: Path, postgres: PrivatePostgres, instances: int = 2) -> None:
        self.folder = folder
        self.postgres = postgres
        self.instances_per_service = instances
        self.cluster = PartitionableCluster(folder / "nats")
        self.outbox = folder / "outbox"
        self.catcher = MailCatcher(self.outbox, port=free_port())
        # One pair of databases per stack: the numbering (1..N of the year) starts from zero in every test.
        suffix = folder.name.replace("-", "_")[-20:].lower()
        self.registry_database = f"registry_{suffix}"
        self.notifier_database = f"notifier_{suffix}"
        self.instances: list[ServiceInstance] = []
        self.started_at = 0.0

    def environment(self, service: str, index: int, smtp_port: int, ready_port: int) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "OMBUDSDESK_NATS_URL": self.cluster.urls,
            "OMBUDSDESK_STREAM_REPLICAS": "3",
            "OMBUDSDESK_VAR_DIR": str(self.folder / f"var-{service}-{index}"),
            "OMBUDSDESK_LOG_LEVEL": "WARNING",
            "OMBUDSDESK_REGISTRY_DATABASE_URL": self.postgres.url(self.registry_database),
            "OMBUDSDESK_NOTIFIER_DATABASE_URL": self.postgres.url(self.notifier_database),
            "OMBUDSDESK_RELAY_HOST": "127.0.0.1",
            "OMBUDSDESK_RELAY_PORT": str(self.catcher.port),
            "OMBUDSDESK_COMPLAINT_ADDRESSES": COMPLAINTS,
            "OMBUDSDESK_SMTP_PORT": str(smtp_port),
            "OMBUDSDESK_INTAKE_HEALTH_PORT": "0",
            "OMBUDSDESK_REGISTRY_API_PORT": str(ready_port if service == "registry" else 0),
            "OMBUDSDESK_NOTIFIER_HEALTH_PORT": str(ready_port if service == "notifier" else 0),
            "OMBUDSDESK_LETTERS_ENABLED": "false",
            # What a killed instance held comes back to the other one within seconds, not the production half-minute
            # (event ack wait), 50 s (spool: twice the parse limit + 10 s) or ten minutes (a relay's lease).
            "OMBUDSDESK_ACK_WAIT_SECONDS": "10",
            "OMBUDSDESK_PARSE_TIMEOUT_SECONDS": "10",
            "OMBUDSDESK_RELAY_LEASE_SECONDS": "20",
            "OMBUDSDESK_RELAY_POLL_SECONDS": "2",
        }

    def service(self, service: str) -> list[ServiceInstance]:
        return [instance for instance in self.instances if instance.service == service]

    @property
    def smtp_ports(self) -> list[int]:
        return [instance.smtp_port for instance in self.service("intake") if instance.smtp_port]

    async def __aenter__(self) -> FaultStack:
        await self.catcher.start()
        await asyncio.to_thread(self.cluster.start)
        await self.postgres.create_database(self.registry_database)
        await self.postgres.create_database(self.notifier_database)
        ready_ports = self._distinct_ports(len(SERVICES) * self.instances_per_service)
        for service in SERVICES:
            for index in range(1, self.instances_per_service + 1):
                ready_port = ready_ports.pop()
                smtp_port = ready_port if service == "intake" else 0
                instance = ServiceInstance(service, index, self.environment(service, index, smtp_port, ready_port),
                                           self.folder, ready_port, smtp_port=smtp_port or None)
                self.instances.append(instance)
                instance.start()
        await self.wait_until_ready(120)
        self.started_at = time.monotonic()
        return self

    async def wait_until_ready(self, timeout: float) -> None:
        """Every instance started: its consumers attached, its last port open. A fault test's faults must find the
        stack running; a fault that lands while a process is still starting tests its start instead (that start
        fails and, as under systemd's `Restart=on-failure`, would be restarted; here, nobody restarts it)."""
        deadline = time.monotonic() + timeout
        started: set[str] = set()  # not asked again: each ask of the notifier's probe runs its health check
        while len(started) < len(self.instances):
            started.update(instance.label for instance in self.instances
                           if instance.label not in started and instance.ready)
            dead = [instance.label for instance in self.instances if not instance.running]
            if dead:
                raise RuntimeError(f"exited at start: {dead}\n{self.tail_logs(40, dead)}")
            if time.monotonic() > deadline:
                waiting = [instance.label for instance in self.instances if instance.label not in started]
                raise TimeoutError(f"not started after {timeout}s: {waiting}")
            await asyncio.sleep(0.2)

    def _distinct_ports(self, count: int) -> list[int]:
        """`count` free ports, none twice and not the catcher's: each `free_port()` closes its probe socket, so two
        calls can name the same port, and an instance would then look started on another's listener."""
        ports: list[int] = []
        while len(ports) < count:
            port = free_port()
            if port not in ports and port != self.catcher.port:
                ports.append(port)
        return ports

    async def __aexit__(self, *_exc: object) -> None:
        for instance in reversed(self.instances):
            instance.terminate()
        await asyncio.to_thread(self.cluster.stop)
        await self.catcher.stop()

    def dead_instances(self) -> list[str]:
        return [instance.label for instance in self.instances if not instance.running]

    def tail_logs(self, lines: int = 15, labels: Sequence[str] | None = None) -> str:
        """The end of each service's log (or only of those named in `labels`), for an assertion message."""
        return "\n".join(instance.last_words(lines) for instance in self.instances
                         if labels is None or instance.label in labels)


# --------------------------------------------------------------------------------------------------------- senders


def seeded() -> tuple[int, random.Random]:
    """The random generator of a fault test's moments and victims, and its seed (printed; `OMBUDSDESK_FAULT_SEED`
    replays a run)."""
    seed = int(os.environ.get("OMBUDSDESK_FAULT_SEED") or random.SystemRandom().randrange(1, 10**9))
    print(f"\nfault seed: {seed} (OMBUDSDESK_FAULT_SEED={seed} replays the same moments and victims)")
    return seed, random.Random(seed)


@dataclass(frozen=True)
class Complaint:
    index: int
    message_id: str
    sender: str
    raw: bytes


def complaints(run: str, count: int) -> list[Complaint]:
    """`count` ordinary complaints, each from its own citizen (no per-recipient acknowledgment limit applies)."""
    made = []
    for index in range(count):
        mail = EmailMessage()
        sender = f"citoyen.{run}.{index}@example.org"
        mail["From"] = f"Citoyen {index} <{sender}>"
        mail["To"] = COMPLAINTS
        mail["Subject"] = f"Plainte : facture d'eau contestée ({index})"
        mail["Message-ID"] = message_id = f"<{run}.{index}@faults.example.org>"
        mail["Date"] = formatdate(localtime=True)
        mail.set_content(BODY)
        made.append(Complaint(index, message_id, sender, mail.as_bytes(policy=SMTP_POLICY)))
    return made


@dataclass
class SendReport:
    sent: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    refused_for_good: list[str] = field(default_factory=list)
    seconds: float = 0.0


class RetryingSenders:
    """`connections` SMTP clients sending their share of the complaints, each retrying as an MTA would.

    A transaction refused with a 4xx, a connection refused, dropped or silent: the client closes, waits (0.5 s,
    doubling to 4 s), and sends the same bytes again, to the other intake instance (the next MX). Intake recognises
    a resent message by its bytes (`smtp.spooled duplicate`), so a message answered 250 whose answer was lost is
    not registered twice. A 5xx is a permanent refusal: recorded, never retried, and the test fails on it.
    `rate` (mails/s over all connections, 0 = as fast as possible) spreads the sending over the faults.
    """

    def __init__(self, ports: list[int], mails: list[Complaint], connections: int = 4, rate: float = 0.0,
                 give_up_seconds: float = 300.0) -> None:
        self.ports = ports
        self.mails = mails
        self.connections = connections
        self.rate = rate
        self.give_up_seconds = give_up_seconds
        self.report = SendReport()
        self._lock = threading.Lock()
        self.done = threading.Event()

    def _retry(self, reason: str) -> None:
        with self._lock:
            self.report.retries[reason] += 1

    def _work(self, offset: int, started: float) -> None:
        port_index = offset % len(self.ports)
        client: smtplib.SMTP | None = None
        deadline = started + self.give_up_seconds
        for position in range(offset, len(self.mails), self.connections):
            mail = self.mails[position]
            if self.rate:
                delay = started + position / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            backoff = 0.5
            while True:
                if time.monotonic() > deadline:
                    with self._lock:
                        self.report.refused_for_good.append(f"{mail.message_id}: gave up after {self.give_up_seconds}s")
                    break
                try:
                    if client is None:
                        client = smtplib.SMTP("127.0.0.1", self.ports[port_index], timeout=30)
                    client.sendmail(mail.sender, [COMPLAINTS], mail.raw)
                except smtplib.SMTPResponseException as error:
                    if 400 <= error.smtp_code < 500:
                        self._retry(f"{error.smtp_code} answer")
                    else:
                        with self._lock:
                            self.report.refused_for_good.append(f"{mail.message_id}: {error.smtp_code}")
                        client = _close(client)
                        break
                except smtplib.SMTPRecipientsRefused as error:
                    codes = {code for code, _text in error.recipients.values()}
                    if all(400 <= code < 500 for code in codes):
                        self._retry("4xx at RCPT")
                    else:
                        with self._lock:
                            self.report.refused_for_good.append(f"{mail.message_id}: {sorted(codes)}")
                        client = _close(client)
                        break
                except ConnectionRefusedError:
                    self._retry("connection refused")
                except (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, OSError):
                    self._retry("connection dropped or silent")
                else:
                    with self._lock:
                        self.report.sent += 1
                    break
                client = _close(client)
                port_index = (port_index + 1) % len(self.ports)
                time.sleep(backoff)
                backoff = min(backoff * 2, 4.0)
        _close(client)

    def run(self) -> SendReport:
        """Send everything (blocking; call it in a thread)."""
        started = time.monotonic()
        threads = [threading.Thread(target=self._work, args=(offset, started), daemon=True)
                   for offset in range(self.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.give_up_seconds + 60)
        self.report.seconds = time.monotonic() - started
        self.done.set()
        return self.report


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
    return None


# --------------------------------------------------------------------------------------------------------- outcome


async def registered_count(stack: FaultStack) -> int:
    try:
        rows = await stack.postgres.fetch(stack.registry_database, "SELECT count(*) AS n FROM complaints")
    except asyncpg.UndefinedTableError:
        return 0
    return int(rows[0]["n"])


def acknowledgment_files(outbox: Path) -> list[Path]:
    return [Path(entry.path) for entry in os.scandir(outbox) if entry.name.endswith(".eml")] if outbox.exists() else []


async def _quiet(_error: Exception) -> None:
    """A node that is down (killed on purpose) is not news: nats-py would log a traceback for each."""


async def consumers(urls: str) -> list[ConsumerInfo]:
    """Every durable consumer of every stream, as the cluster reports it now."""
    connection = await nats.connect(urls.split(","), connect_timeout=5, max_reconnect_attempts=3, error_cb=_quiet)
    try:
        js = connection.jetstream(timeout=5)
        found: list[ConsumerInfo] = []
        for name in await js.streams_info():
            found.extend(await js.consumers_info(name.config.name))
        return found
    finally:
        await connection.close()


async def dead_letters(urls: str) -> int:
    connection = await nats.connect(urls.split(","), connect_timeout=5, max_reconnect_attempts=3, error_cb=_quiet)
    try:
        info = await connection.jetstream(timeout=5).stream_info(streams.STREAM_DEAD_LETTER)
        return int(info.state.messages)
    finally:
        await connection.close()


async def wait_until_settled(stack: FaultStack, expected: int, timeout: float) -> float:
    """Until `expected` complaints are registered, as many acknowledgments caught and every consumer drained;
    returns the seconds waited. Raises TimeoutError with what was missing."""
    started = time.monotonic()
    deadline = started + timeout
    state = ""
    while time.monotonic() < deadline:
        count = await registered_count(stack)
        acknowledged = len(acknowledgment_files(stack.outbox))
        if count >= expected and acknowledged >= expected:
            try:
                busy = [(c.name, c.num_pending, c.num_ack_pending) for c in await consumers(stack.cluster.urls)
                        if c.num_pending or c.num_ack_pending]
            except Exception as error:  # noqa: BLE001 - the cluster may still be electing: look again
                busy = [("cluster", str(error), 0)]
            if not busy:
                return time.monotonic() - started
            state = f"consumers busy: {busy}"
        else:
            state = f"{count} registered, {acknowledged} acknowledgments of {expected}"
        await asyncio.sleep(1.0)
    dead = stack.dead_instances()
    raise TimeoutError(f"not settled after {timeout}s: {state}; dead instances: {dead}\n"
                       f"{stack.tail_logs(40, dead) if dead else ''}")


@dataclass
class Outcome:
    """What the register, the catcher and the cluster hold at the end, compared with what was sent."""

    sent: int
    registered: int
    distinct_senders_registered: int
    lost: list[str]
    numbers_ok: bool
    number_problems: list[str]
    acknowledged: int
    unacknowledged: list[str]
    duplicate_acknowledgments: int
    consumers_busy: list[str]
    dead_letters: int

    def figures(self) -> dict[str, object]:
        return {"complaints sent": self.sent, "registered": self.registered,
                "lost": len(self.lost), "complaints without acknowledgment": len(self.unacknowledged),
                "duplicate acknowledgments": self.duplicate_acknowledgments,
                "dead letters": self.dead_letters, "consumers not drained": len(self.consumers_busy)}


async def outcome(stack: FaultStack, mails: list[Complaint], quiet_seconds: float = 5.0) -> Outcome:
    """Read the register, the catcher's folder and the consumers (after `quiet_seconds` in which a late duplicate
    acknowledgment would have arrived)."""
    await asyncio.sleep(quiet_seconds)
    rows = await stack.postgres.fetch(
        stack.registry_database, "SELECT number, year, sequence, complainant_email FROM complaints")
    senders = {mail.sender for mail in mails}
    registered_senders = Counter(str(row["complainant_email"]) for row in rows)
    problems: list[str] = []
    by_year: dict[int, list[int]] = {}
    for row in rows:
        by_year.setdefault(int(row["year"]), []).append(int(row["sequence"]))
        match = NUMBER.fullmatch(str(row["number"]))
        if not match or int(match.group(2)) != int(row["year"]) or int(match.group(3)) != int(row["sequence"]):
            problems.append(f"number {row['number']} does not match year {row['year']} sequence {row['sequence']}")
    year = datetime.now(timezone.utc).year
    for registered_year, sequences in by_year.items():
        # The registry numbers in its own timezone: a run across midnight of 31 December may start a new year.
        if abs(registered_year - year) > 1 or sorted(sequences) != list(range(1, len(sequences) + 1)):
            problems.append(f"year {registered_year}: {len(sequences)} numbers, not 1..{len(sequences)} "
                            f"(first gaps: {sorted(set(range(1, max(sequences) + 1)) - set(sequences))[:10]})")
    problems.extend(f"{sender} registered {count} times" for sender, count in registered_senders.items()
                    if count > 1)
    problems.extend(f"unexpected complainant {sender}" for sender in registered_senders if sender not in senders)

    answered: Counter[str] = Counter()
    for path in acknowledgment_files(stack.outbox):
        with open(path, "rb") as handle:
            headers = HEADERS.parse(handle)
        if str(headers.get("Auto-Submitted", "")) == "auto-replied" and headers.get("In-Reply-To"):
            answered[str(headers["In-Reply-To"]).strip()] += 1
    message_ids = {mail.message_id for mail in mails}
    busy = [f"{c.stream_name}/{c.name}: pending {c.num_pending}, ack pending {c.num_ack_pending}"
            for c in await consumers(stack.cluster.urls) if c.num_pending or c.num_ack_pending]
    return Outcome(
        sent=len(mails),
        registered=len(rows),
        distinct_senders_registered=len(registered_senders.keys() & senders),
        lost=sorted(senders - registered_senders.keys()),
        numbers_ok=not problems,
        number_problems=problems,
        acknowledged=len(answered.keys() & message_ids),
        unacknowledged=sorted(message_ids - answered.keys()),
        duplicate_acknowledgments=sum(count - 1 for key, count in answered.items() if key in message_ids),
        consumers_busy=busy,
        dead_letters=await dead_letters(stack.cluster.urls),
    )


def assert_nothing_lost(result: Outcome, allowed_duplicate_acknowledgments: int, stack: FaultStack) -> None:
    """The common verdict of every fault test (issue 14): each complaint registered once, numbers 1..N with no gap,
    one acknowledgment each (duplicates only within the documented notifier-kill exception), every consumer
    drained, no dead letter."""
    assert result.lost == [], f"{len(result.lost)} complaints never registered, e.g. {result.lost[:5]}"
    assert result.registered == result.sent, f"{result.registered} rows for {result.sent} complaints"
    assert result.numbers_ok, f"numbering: {result.number_problems[:10]}"
    assert result.unacknowledged == [], (
        f"{len(result.unacknowledged)} complaints without acknowledgment, e.g. {result.unacknowledged[:5]}")
    assert result.duplicate_acknowledgments <= allowed_duplicate_acknowledgments, (
        f"{result.duplicate_acknowledgments} duplicate acknowledgments, at most {allowed_duplicate_acknowledgments} "
        "allowed (the notifier-kill exception)")
    assert result.consumers_busy == [], f"consumers not drained: {result.consumers_busy}"
    assert result.dead_letters == 0, f"{result.dead_letters} events in the dead-letter stream"
    dead = stack.dead_instances()
    # Their exit code and the end of their log: what a failure on CI leaves to read (the folder is gone by then).
    assert dead == [], f"instances died on their own: {dead}\n{stack.tail_logs(40, dead)}"
