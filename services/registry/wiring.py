"""Composition of the registry service: settings → engine, store, broker, handlers (`Registry`, their message bus),
consumers, background loops.

`build_registry(settings)` does no I/O; `RegistryService.start()` migrates the database, creates the streams,
starts the consumers, the outbox publisher and the deadline watcher (and the HTTP API when a port is set).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import structlog
import uvicorn
from fastapi import FastAPI
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.access.accounts import AccountStore, identity_policy
from services.registry.api import create_api
from services.registry.backoffice.pages.file_originals import OriginalStore
from services.registry.consumer import subscribe_registry
from services.registry.handlers import Registry, RegistryPolicy
from services.registry.notice_preview import NoticePreviewer
from services.registry.numbering import NumberFormat
from services.registry.publisher import OutboxPublisher
from services.registry.repository import RegistryStore, migrate
from services.registry.screening_files import load_screening_config
from services.registry.settings import RegistrySettings
from services.registry.watcher import DeadlineWatcher
from services.registry.workflow import ReopenPolicy
from shared.database import create_engine
from shared.messaging import ensure_streams, make_broker

log = structlog.get_logger(__name__)

OUTBOX_DRAIN_SECONDS = 2.0
STOP_GRACE_SECONDS = 5.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's loop: SIGINT/SIGTERM belong to `shared.runtime`, not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def policy_from_settings(settings: RegistrySettings) -> RegistryPolicy:
    return RegistryPolicy(
        number_format=NumberFormat(settings.case_number_prefix, settings.case_number_width),
        rules=settings.deadline_rules(),
        timezone=ZoneInfo(settings.registry_timezone),
        reopen=ReopenPolicy(window_days=settings.reopen_window_days),
        screening=load_screening_config(settings.screening_config_path),
    )


@dataclass
class RegistryService:
    settings: RegistrySettings
    engine: AsyncEngine
    broker: NatsBroker
    store: RegistryStore
    registry: Registry
    publisher: OutboxPublisher
    watcher: DeadlineWatcher
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _api_server: uvicorn.Server | None = None
    api: FastAPI | None = None  # the application the API port serves (staff JSON API and back office), once started
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        await migrate(self.engine)
        await self.broker.connect()
        await ensure_streams(self.broker.connection.jetstream(), self.settings.stream_replicas)
        await self.broker.start()
        self._stopping.clear()
        self._tasks.append(asyncio.create_task(self.publisher.run(OUTBOX_DRAIN_SECONDS, self._stopping),
                                               name="registry-outbox"))
        self._tasks.append(asyncio.create_task(
            self.watcher.run(self.settings.deadline_check_interval_seconds, self._stopping),
            name="registry-deadlines"))
        if self.settings.registry_api_port:
            await self._start_api()
        log.info("registry.started", database=self.engine.url.render_as_string(hide_password=True),
                 api_port=self.settings.registry_api_port or None)

    async def _start_api(self) -> None:
        api = create_api(self.registry, self.settings,
                         accounts=AccountStore(self.engine, identity_policy(self.settings)))
        # What the file page reaches over NATS: the notifier's preview of a notice (request/reply), and the raw
        # originals and attachments intake keeps in JetStream object stores (the connection may be re-established,
        # so each is looked up at use).
        api.state.notice_preview = NoticePreviewer(self.broker)
        api.state.originals = OriginalStore(lambda: self.broker.connection.jetstream())
        self.api = api
        config = uvicorn.Config(api, host=self.settings.registry_api_host,
                                port=self.settings.registry_api_port, log_level="warning", lifespan="off")
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(), name="registry-api")
        while not server.started:
            if task.done():
                await task  # raises the start-up error (port taken...)
                raise RuntimeError(f"registry API did not start on port {self.settings.registry_api_port}")
            await asyncio.sleep(0.02)
        self._api_server = server
        self._tasks.append(task)

    async def stop(self) -> None:
        self._stopping.set()
        if self._api_server is not None:
            self._api_server.should_exit = True
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS)
            for task in pending:  # still inside a database or NATS call: cut it short
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        self._tasks.clear()
        self._api_server = None
        try:
            await self.publisher.close()
        except Exception as error:  # noqa: BLE001 - the next start's drain publishes them again, harmlessly
            log.warning("outbox.mark_failed", error=repr(error))
        await self.broker.stop()
        await self.engine.dispose()


def build_registry(settings: RegistrySettings) -> RegistryService:
    engine = create_engine(settings.database_url)
    store = RegistryStore(engine)
    broker = make_broker(settings)
    publisher = OutboxPublisher(store, broker)
    registry = Registry(store, policy_from_settings(settings), publisher)
    subscribe_registry(broker, registry, settings, workers=settings.registry_consumer_workers)
    watcher = DeadlineWatcher(registry, settings.deadline_lead_days)
    return RegistryService(settings, engine, broker, store, registry, publisher, watcher)
