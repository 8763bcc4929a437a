"""Composition of the registry service: settings → engine, store, broker, handlers (`Registry`, their message bus),
consumers, background loops.

`build_registry(settings)` does no I/O; `RegistryService.start()` migrates the database, creates the streams,
starts the consumers, the outbox publisher and the deadline watcher (and the HTTP API when a port is set).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import time
from zoneinfo import ZoneInfo

import structlog
import uvicorn
from fastapi import FastAPI
from faststream.nats import NatsBroker
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.access.accounts import AccountStore, identity_policy
from services.registry.api import create_api
from services.registry.backoffice.pages.file_originals import OriginalStore
from services.registry.access.audit import AuditTrail
from services.registry.public.case_lookup import answer_case_lookups
from services.registry.public.citizen_responder import answer_citizen_requests
from services.registry.public.orientation import answer_orientations
from services.registry.consumer import subscribe_registry
from services.registry.handlers import Registry, RegistryPolicy
from services.registry.notice_preview import NoticePreviewer
from services.registry.numbering import NumberFormat
from services.registry.models import OutboxEvent
from services.registry.publisher import OutboxPublisher
from services.registry.privacy.retention import RetentionJob
from services.registry.repository import RegistryStore, migrate
from services.registry.screening_files import load_screening_config
from services.registry.settings import RegistrySettings
from services.registry.watcher import DeadlineWatcher
from services.registry.workflow import ReopenPolicy
from shared.database import create_engine
from shared.observability import Probes, ScrapeGauge
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from shared.web_server import start_server

log = structlog.get_logger(__name__)

OUTBOX_DRAIN_SECONDS = 2.0
STOP_GRACE_SECONDS = 5.0


def policy_from_settings(settings: RegistrySettings) -> RegistryPolicy:
    return RegistryPolicy(
        number_format=NumberFormat(settings.case_number_prefix, settings.case_number_width),
        rules=settings.deadline_rules(),
        timezone=ZoneInfo(settings.registry_timezone),
        reopen=ReopenPolicy(window_days=settings.reopen_window_days),
        duplicate_window_days=settings.duplicate_window_days,
        information=settings.information_policy(),
        citizen=settings.citizen_policy(),
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
    retention: RetentionJob | None = None  # the daily retention run (issue 16); None: switched off

    async def start(self) -> None:
        await migrate(self.engine)
        await self.broker.connect()
        await ensure_streams(self.broker.connection.jetstream(), self.settings)
        await self.broker.start()
        self._stopping.clear()
        self._tasks.append(asyncio.create_task(self.publisher.run(OUTBOX_DRAIN_SECONDS, self._stopping),
                                               name="registry-outbox"))
        self._tasks.append(asyncio.create_task(
            self.watcher.run(self.settings.deadline_check_interval_seconds, self._stopping),
            name="registry-deadlines"))
        if self.retention is not None:
            self._tasks.append(asyncio.create_task(self.retention.run(self._stopping), name="registry-retention"))
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
        api.state.probes = registry_probes(self)  # /ready and /metrics (docs/operations.md)
        self.api = api
        # Staff reach the back office directly or through a reverse proxy on this host: uvicorn's default trusts
        # X-Forwarded-For from loopback only (FORWARDED_ALLOW_IPS), so the audit trail records the staff member's
        # address behind a local proxy.
        server, task = await start_server(api, self.settings.registry_api_host, self.settings.registry_api_port,
                                          name="registry-api", trust_local_proxy=True)
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


def registry_probes(service: RegistryService) -> Probes:
    """Readiness (NATS, database, the registry's consumers) and scrape-time metrics, the outbox backlog with them."""
    async def unpublished() -> float:
        query = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        async with service.engine.connect() as connection:
            return float((await connection.execute(query)).scalar_one())

    return Probes("registry", service.broker, engine=service.engine, gauges=(ScrapeGauge(
        "ombudsdesk_outbox_backlog", "Outbox backlog: events committed and not yet published (registry); notices "
        "waiting for the relay or being sent (notifier).", unpublished),))


def build_registry(settings: RegistrySettings) -> RegistryService:
    engine = create_engine(settings.database_url)
    store = RegistryStore(engine)
    broker = make_broker(settings)
    publisher = OutboxPublisher(store, broker)
    registry = Registry(store, policy_from_settings(settings), publisher)
    subscribe_registry(broker, registry, settings, workers=settings.registry_consumer_workers)
    answer_case_lookups(broker, store)
    answer_orientations(broker, registry.policy.screening)
    answer_citizen_requests(broker, registry, AuditTrail(engine))  # the citizen's link and survey (issue 17)
    watcher = DeadlineWatcher(registry, settings.deadline_lead_days)
    service = RegistryService(settings, engine, broker, store, registry, publisher, watcher)
    if settings.retention_enabled:
        service.retention = RetentionJob(registry, AuditTrail(engine), settings.retention_schedule(),
                                         at=time.fromisoformat(settings.retention_run_at),
                                         outbox_days=settings.retention_outbox_days)
    return service
