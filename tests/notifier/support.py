"""Test support for the notifier: a real SMTP server (aiosmtpd) that can be told to answer chosen codes on chosen
commands, event factories, and helpers that publish to / read from the real NATS server."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import nats
from aiosmtpd.controller import Controller
from sqlalchemy import text

from ombudsdesk.embedded_nats import free_port
from shared.events import ComplaintRegistered, Event, Party
from shared.messaging import make_broker, publish_event
from shared.stream_admin import ensure_streams
from shared.settings import CommonSettings


class ScriptedHandler:
    """Accepts everything, except that `script[command]` holds replies to give, one per command, before accepting."""

    def __init__(self) -> None:
        self.script: dict[str, deque[str]] = defaultdict(deque)
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.commands: list[str] = []
        self.lock = threading.Lock()

    def fail_next(self, command: str, *replies: str) -> None:
        with self.lock:
            self.script[command.upper()].extend(replies)

    def _scripted(self, command: str) -> str | None:
        with self.lock:
            self.commands.append(command)
            queue = self.script.get(command)
            return queue.popleft() if queue else None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 - aiosmtpd hook
        reply = self._scripted("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self._scripted("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        reply = self._scripted("DATA")
        if reply:
            return reply
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


class SmtpSink:
    def __init__(self) -> None:
        self.handler = ScriptedHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Await a condition the system under test brings about (polling, as SMTP arrives on another thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def publish(nats_url: str, *events: Event) -> None:
    broker = make_broker(CommonSettings(nats_url=nats_url))
    async with broker:
        await broker.connect()
        await ensure_streams(broker.connection.jetstream())
        for event in events:
            await publish_event(broker, event)


async def publish_duplicate(nats_url: str, event: Event) -> None:
    """Publish an event again under a fresh `Nats-Msg-Id`, as after JetStream's duplicate window or a replay, so
    that only the notifier's own outbox stands between the repeat and a second mail."""
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(
            event.subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": f"replay:{uuid.uuid4()}"}
        )
    finally:
        await connection.close()


async def read_stream(nats_url: str, subject: str, expected: int, timeout: float = 10.0) -> list[bytes]:
    """The first `expected` events on `subject` (fails if fewer arrive in time)."""
    connection = await nats.connect(nats_url)
    try:
        subscription = await connection.jetstream().pull_subscribe(subject, durable=None)
        records = []
        while len(records) < expected:
            records.extend(await subscription.fetch(expected - len(records), timeout=timeout))
        return [record.data for record in records]
    finally:
        await connection.close()


async def stream_messages(nats_url: str, stream: str) -> int:
    connection = await nats.connect(nats_url)
    try:
        return (await connection.jetstream().stream_info(stream)).state.messages
    finally:
        await connection.close()


async def consumer_settled(nats_url: str, stream: str, consumer: str) -> bool:
    connection = await nats.connect(nats_url)
    try:
        info = await connection.jetstream().consumer_info(stream, consumer)
        return info.num_ack_pending == 0 and info.num_pending == 0
    finally:
        await connection.close()


def registered_event(number: str = "MED-2026-00001", **changes: object) -> ComplaintRegistered:
    values: dict[str, object] = dict(
        complaint_number=number,
        message_key=f"key-{number}",
        channel="email",
        received_at=datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc),
        legal_start=date(2026, 11, 24),
        complainant=Party(name="Jeanne Dupont", email="jeanne.dupont@example.org"),
        subject_line="Retard de remboursement",
        acknowledgment_due=date(2026, 12, 1),
        answer_due=date(2027, 1, 8),
        reply_to_message_id="<citizen-1@example.org>",
        references=("<citizen-0@example.org>",),
    )
    values.update(changes)
    return ComplaintRegistered(**values)  # type: ignore[arg-type]


async def insert_notice(connection, **values: object) -> None:
    """Store a rendered e-mail notice directly in the outbox (an upgraded schema, no composition): `values` override
    the defaults of a French acknowledgment due now, with a day left before it is given up."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    row: dict[str, object] = dict(
        notice_kind="acknowledgment", channel="email", recipient="citizen@example.org", recipient_name="",
        postal_address="", language="fr", subject="Votre plainte", body_text="Bonjour.\n", body_html="",
        message_id=f"<{uuid.uuid4().hex}@ombudsdesk.test>", references="", status="pending", attempts=0,
        next_attempt_at=now - timedelta(seconds=5), give_up_at=now + timedelta(days=1), created_at=now,
        outcome_published=False)
    row.update(values)
    columns = ", ".join(f'"{name}"' for name in row)
    await connection.execute(text(f"INSERT INTO notices ({columns}) VALUES ({', '.join(f':{n}' for n in row)})"),
                             row)
