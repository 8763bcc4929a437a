"""Builds the notifier from its settings: broker, database, outbox, renderer, relay, consumers, dispatcher and
the optional digest scheduler."""

from __future__ import annotations

from pathlib import Path

import structlog
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.consumer import register_consumers
from services.notifier.digest import DigestScheduler
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import Clock, NotifierHandlers, utc_now
from services.notifier.legal_notices import load_legal_notices
from services.notifier.health import notifier_health, notifier_probes
from services.notifier.outbox import Outbox
from services.notifier.privacy import NotifierPrivacy, subscribe_privacy
from services.notifier.relay import SmtpRelay
from services.notifier.rendering import TemplateRenderer
from services.notifier.settings import NotifierSettings
from shared.database import create_engine, upgrade_to_head
from shared.events import Event
from shared.observability import ProbeServer
from shared.messaging import make_broker, publish_event
from shared.stream_admin import ensure_streams

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class NotifierService:
    def __init__(
        self,
        settings: NotifierSettings,
        broker: NatsBroker,
        engine: AsyncEngine,
        handlers: NotifierHandlers,
        dispatcher: Dispatcher,
        digest: DigestScheduler | None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.engine = engine
        self.handlers = handlers
        self.dispatcher = dispatcher
        self.digest = digest
        self.outbox = handlers.outbox
        self.probes = notifier_probes(self)
        self.health: ProbeServer | None = None
        if settings.notifier_health_port:
            self.health = ProbeServer(settings.notifier_health_host, settings.notifier_health_port,
                                      lambda: notifier_health(self), self.probes.ready, self.probes.metrics)

    async def start(self) -> None:
        await upgrade_to_head(self.engine, MIGRATIONS)
        await self.broker.connect()
        await ensure_streams(self.broker.connection.jetstream(), self.settings)
        await self.broker.start()
        self.dispatcher.start()
        if self.digest:
            self.digest.start()
        if self.health is not None:
            await self.health.start()
        log.info("notifier.ready", relay=f"{self.settings.relay_host}:{self.settings.relay_port}")

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.stop()
        if self.digest:
            await self.digest.stop()
        await self.dispatcher.stop()
        await self.broker.stop()
        await self.engine.dispose()


def build_notifier(settings: NotifierSettings, clock: Clock = utc_now) -> NotifierService:
    broker = make_broker(settings)
    engine = create_engine(settings.database_url)
    outbox = Outbox(engine)
    relay = SmtpRelay(
        settings.relay_host,
        settings.relay_port,
        timeout=settings.relay_timeout_seconds,
        starttls=settings.relay_starttls,
        implicit_tls=settings.relay_implicit_tls,
        ca_file=str(settings.relay_tls_ca_file) if settings.relay_tls_ca_file else None,
        username=settings.relay_username,
        password=settings.relay_password.get_secret_value() if settings.relay_password else None,
    )

    async def publish(event: Event) -> object:
        return await publish_event(broker, event)

    dispatcher = Dispatcher(settings, outbox, relay, publish, clock)
    # The jurisdiction's legal notices are read (and checked) now: a missing or invalid file stops the start.
    renderer = TemplateRenderer(settings.templates_dir,
                                load_legal_notices(settings.jurisdiction, settings.legal_notices_dir))
    handlers = NotifierHandlers(settings, outbox, renderer, dispatcher.wake, clock)
    register_consumers(broker, handlers, settings)
    subscribe_privacy(broker, settings, NotifierPrivacy(engine))  # erasure (issue 16)
    digest = None
    if settings.deadline_digest_hour is not None:
        digest = DigestScheduler(handlers, settings.deadline_digest_hour, settings.deadline_digest_timezone, clock)
    return NotifierService(settings, broker, engine, handlers, dispatcher, digest)
