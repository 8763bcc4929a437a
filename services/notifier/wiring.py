"""Builds the notifier from its settings: broker, database, outbox, renderer, relay, consumers, dispatcher."""

from __future__ import annotations

from pathlib import Path

import structlog
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.consumer import register_consumers
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import Clock, NotifierHandlers, utc_now
from services.notifier.outbox import Outbox
from services.notifier.relay import SmtpRelay
from services.notifier.rendering import TemplateRenderer
from services.notifier.settings import NotifierSettings
from shared.database import create_engine, upgrade_to_head
from shared.events import Event
from shared.messaging import ensure_streams, make_broker, publish_event

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
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.engine = engine
        self.handlers = handlers
        self.dispatcher = dispatcher
        self.outbox = handlers.outbox

    async def start(self) -> None:
        await upgrade_to_head(self.engine, MIGRATIONS)
        await self.broker.connect()
        await ensure_streams(self.broker.connection.jetstream())
        await self.broker.start()
        self.dispatcher.start()
        log.info("notifier.ready", relay=f"{self.settings.relay_host}:{self.settings.relay_port}")

    async def stop(self) -> None:
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
        username=settings.relay_username,
        password=settings.relay_password.get_secret_value() if settings.relay_password else None,
    )

    async def publish(event: Event) -> object:
        return await publish_event(broker, event)

    dispatcher = Dispatcher(settings, outbox, relay, publish, clock)
    handlers = NotifierHandlers(settings, outbox, TemplateRenderer(settings.templates_dir), dispatcher.wake, clock)
    register_consumers(broker, handlers, settings)
    return NotifierService(settings, broker, engine, handlers, dispatcher)
