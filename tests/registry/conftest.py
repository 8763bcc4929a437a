"""Fixtures of the registry tests: settings on a temporary database, a running registry, event factories."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext

from services.registry.settings import RegistrySettings
from services.registry.wiring import RegistryService, build_registry
from shared.events import Event, MessageReceived, Party
from shared.stream_admin import ensure_streams

_keys = itertools.count(1)


def received(
    *,
    email: str | None = "jeanne.dupont@example.org",
    name: str = "Jeanne Dupont",
    key: str | None = None,
    at: datetime = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc),
    subject: str = "Plainte: facture incorrecte",
    **fields: object,
) -> MessageReceived:
    serial = next(_keys)
    return MessageReceived(
        message_key=key or f"msg-{serial}",
        received_at=at,
        sender=Party(name=name, email=email),
        recipients=("plaintes@ombudsdesk.localhost",),
        subject_line=subject,
        text="Madame, Monsieur, je conteste la facture.",
        message_id=fields.pop("message_id", f"<m{serial}@mail.example.org>"),
        **fields,
    )


def registry_settings(tmp_path: Path, nats_url: str, database_url: str, **overrides: object) -> RegistrySettings:
    return RegistrySettings(nats_url=nats_url, registry_database_url=database_url, var_dir=tmp_path / "var",
                            registry_api_port=0, **overrides)


@pytest.fixture
async def running_registry(tmp_path, nats_server, database_url) -> AsyncIterator[RegistryService]:
    service = build_registry(registry_settings(tmp_path, nats_server.url, database_url))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def js(nats_server) -> AsyncIterator[JetStreamContext]:
    connection = await nats.connect(nats_server.url)
    context = connection.jetstream()
    await ensure_streams(context)
    try:
        yield context
    finally:
        await connection.close()


async def publish(js: JetStreamContext, event: Event, msg_id: str | None = None) -> None:
    await js.publish(event.subject, event.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": msg_id or event.dedup_id()})


async def publish_all(js: JetStreamContext, events: list[Event], window: int = 100) -> None:
    """Publish many events, `window` acknowledgments outstanding at a time: thousands of concurrent publishes on a
    loaded 2-core machine can leave the last ones waiting past nats-py's 5 s publish timeout."""
    for start in range(0, len(events), window):
        await asyncio.gather(*(publish(js, e) for e in events[start:start + window]))


async def next_events(js: JetStreamContext, subject: str, count: int, durable: str, timeout: float = 10.0
                      ) -> list[bytes]:
    """Wait for `count` messages on `subject` (a fresh durable per call site reads from the start)."""
    subscription = await js.pull_subscribe(subject, durable=durable)
    payloads: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(payloads) < count:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"only {len(payloads)} of {count} messages on {subject}")
        try:
            batch = await subscription.fetch(count - len(payloads), timeout=min(remaining, 1.0))
        except nats.errors.TimeoutError:
            continue
        for message in batch:
            payloads.append(message.data)
            await message.ack()
    return payloads


async def stream_count(js: JetStreamContext, subject: str) -> int:
    """How many messages of `subject` the stream holds now."""
    from shared.messaging import stream_for_subject

    info = await js.stream_info(stream_for_subject(subject), subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


class Clock:
    """A settable clock for use cases that depend on today's date."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


class CapturingPublisher:
    """The `EventPublisher` port without NATS: keeps the events a use case published, decoded from the outbox."""

    def __init__(self) -> None:
        self.store = None
        self.events: list[Event] = []

    async def publish(self, rows) -> None:
        from services.registry.publisher import decode

        if rows:
            self.events.extend(decode(row) for row in rows)
            await self.store.mark_published([row.id for row in rows])

    def of(self, event_type: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, event_type)]


class LostRace:
    """Makes the first `Transaction.add_party` of a test lose a unique-key race, as when another process admitted the
    same party between our check and our insert; `calls` counts every attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from services.registry.repository import IntegrityError, Transaction

        self.calls = 0
        original = Transaction.add_party

        async def racing(tx, complaint_id, email, role, added_by):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 1:
                raise IntegrityError("INSERT INTO case_parties", {}, Exception("duplicate key"))
            return await original(tx, complaint_id, email, role, added_by)

        monkeypatch.setattr(Transaction, "add_party", racing)


@pytest.fixture
async def registry_on_db(database_url):
    """A `Registry` on a migrated database (SQLite and PostgreSQL), with a settable clock and captured events."""
    async with registry_on(database_url) as registry:
        yield registry


@pytest.fixture
async def registry_on_postgres(postgres_url):
    """`registry_on_db` on PostgreSQL only: for what only several writers at once can show (SQLite has one)."""
    async with registry_on(postgres_url) as registry:
        yield registry


@contextlib.asynccontextmanager
async def registry_on(database_url: str):
    from services.registry.handlers import Registry
    from services.registry.repository import RegistryStore, migrate
    from services.registry.wiring import policy_from_settings
    from shared.database import create_engine

    engine = create_engine(database_url)
    await migrate(engine)
    store = RegistryStore(engine)
    publisher = CapturingPublisher()
    publisher.store = store
    clock = Clock(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    registry = Registry(store, policy_from_settings(RegistrySettings()), publisher, clock=clock)
    try:
        yield registry, publisher, clock
    finally:
        await engine.dispose()
