"""Assembly of the intake service: broker, JetStream streams and buckets, stores, pipeline, spool, SMTP listener,
spool worker, health endpoint (and, when configured, the IMAP pollers and the letters folder watcher), as
`intake_role` asks. The stores are built here, once, and handed to each part that needs them. Every channel ends in
the same call, `IntakePipeline.accept(raw, arrival)`: SMTP through the spool and its worker, IMAP, scan-to-email and
the letters folder through the scan-to-email router (docs/intake.md, "One way in"). Nothing here does I/O before
`start()`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from faststream.nats import NatsBroker

from shared import streams
from shared.messaging import DeliveryPolicy, declare_publishers, make_broker
from shared.stream_admin import ensure_streams
from services.intake.health import intake_probes
from shared.observability import ProbeServer
from services.intake.publishing import PUBLISHES
from services.intake.channels.imap_poller import ImapIntake, PollerTiming, PositionStore
from services.intake.letters.folder import REJECTED, LetterFolder, letters_today
from services.intake.pipeline import MAX_STUCK_PARSES, IntakePipeline
from services.intake.letters.scan_to_email import ScanToEmail
from services.intake.settings import IntakeSettings
from services.intake.channels.smtp_server import SmtpListener
from services.intake.web.channel import PublicWeb
from services.intake.channels.spool import Spool, SpoolAttempts, ensure_spool, spool_backlog
from services.intake.channels.spool_worker import SpoolWorker
from services.intake.stores import IntakeStores, ensure_intake_buckets
from services.intake.privacy import IntakePrivacy, subscribe_privacy
from services.intake.retention import IntakeRetention, RetentionJob

log = structlog.get_logger(__name__)


class IntakeService:
    def __init__(self, settings: IntakeSettings, broker: NatsBroker) -> None:
        self.settings = settings
        self.broker = broker
        self.stores = IntakeStores(lambda: broker.connection.jetstream(timeout=5), settings.stream_replicas)
        self.pipeline = IntakePipeline(broker, settings, stores=self.stores)
        # Scan-to-email: mail for a copier's address (SMTP or IMAP) takes the letter path; all other mail passes on.
        self.scan_to_email = ScanToEmail(self.pipeline, settings.letters_scan_addresses,
                                         settings.letters_path() / REJECTED, today=letters_today(settings),
                                         language=settings.letters_staff_language,
                                         scan_senders=settings.letters_scan_senders,
                                         max_age_days=settings.letters_scan_max_age_days)
        self.spool = Spool(self.stores.js_context, self.stores.objects)
        takes_mail_in = settings.intake_role in ("all", "front")
        self.smtp: SmtpListener | None = None
        if takes_mail_in:
            self.smtp = SmtpListener(self.spool, settings)
        self.spool_worker: SpoolWorker | None = None
        if settings.intake_role in ("all", "parser"):
            policy = DeliveryPolicy(durable=streams.CONSUMER_INTAKE_SPOOL, max_deliveries=settings.max_deliveries,
                                    ack_wait_seconds=settings.spool_ack_wait_seconds())
            self.spool_worker = SpoolWorker(self.stores.js_context, self.scan_to_email,
                                            self.pipeline.quarantine_unprocessable, policy,
                                            SpoolAttempts(self.stores.js_context, settings.stream_replicas),
                                            self.stores.objects)
        # Erasure (issue 16): intake erases its own copies of an erased file's messages.
        self.privacy = IntakePrivacy(self.stores.js_context, settings.letters_path())
        self.retention_job: RetentionJob | None = None
        if settings.intake_role in ("all", "parser"):  # the back end's work, like the spool (an SMTP front has none)
            subscribe_privacy(broker, settings, self.privacy)
            self.retention_job = RetentionJob(intake_retention(settings, self.stores),
                                              settings.intake_retention_interval_hours * 3600)
        self.probes = intake_probes(self)
        self.health: ProbeServer | None = None
        if settings.intake_health_port:
            self.health = ProbeServer(settings.intake_health_host, settings.intake_health_port, self.health_report,
                                      self.ready_report, self.probes.metrics)
        # Further channels (IMAP pollers, letters folder) register here: objects with async start() and stop().
        self.channels: list[Any] = []
        if takes_mail_in and settings.imap_mailboxes:
            positions = PositionStore(self.stores.js_context, replicas=settings.stream_replicas)
            timing = PollerTiming(poll_seconds=settings.imap_poll_seconds, idle_seconds=settings.imap_idle_seconds)
            self.channels.append(ImapIntake(settings.imap_mailboxes, self.scan_to_email, positions,
                                            keyword=settings.imap_processed_keyword, timing=timing))
        if takes_mail_in and settings.public_web_port:
            self.channels.append(PublicWeb(settings, self.pipeline, lambda: broker.connection))
        if takes_mail_in and settings.letters_enabled:
            self.channels.append(LetterFolder(
                settings.letters_path(), self.pipeline, today=letters_today(settings),
                poll_seconds=settings.letters_poll_seconds, settle_seconds=settings.letters_settle_seconds,
                incomplete_seconds=settings.letters_incomplete_seconds, language=settings.letters_staff_language,
            ))

    @property
    def smtp_port(self) -> int | None:
        return self.smtp.port if self.smtp is not None else None

    async def start(self) -> None:
        await self.broker.connect()
        js = self.broker.connection.jetstream()
        await ensure_streams(js, self.settings)
        await ensure_intake_buckets(js, self.settings.stream_replicas)
        await ensure_spool(js, self.settings.stream_replicas, self.settings.spool_ack_wait_seconds())
        await self.broker.start()  # the durable consumers (privacy)
        # The worker first: what an earlier run left in the spool is taken up before new mail comes.
        if self.spool_worker is not None:
            await self.spool_worker.start()
        for channel in self.channels:
            await channel.start()
        if self.smtp is not None:
            await self.smtp.start()
        if self.health is not None:
            await self.health.start()
        if self.retention_job is not None:
            await self.retention_job.start()

    async def stop(self) -> None:
        if self.retention_job is not None:
            await self.retention_job.stop()
        if self.smtp is not None:
            await self.smtp.stop()
        if self.health is not None:
            await self.health.stop()
        for channel in reversed(self.channels):
            await channel.stop()
        if self.spool_worker is not None:
            await self.spool_worker.stop()
        await self.pipeline.drain()
        self.pipeline.close()
        try:
            await self.broker.stop()
        except Exception as error:  # noqa: BLE001 - stopping while NATS is down must still end cleanly
            log.warning("intake.disconnect_failed", error=repr(error))

    async def health_report(self) -> tuple[bool, dict[str, Any]]:
        connected = bool(self.broker.connection.is_connected)
        # Liveness: only what a restart cures (NATS down makes intake not ready, `/ready`, not dead). Parse threads
        # stuck past their limit cannot be killed: at the cap every large mail waits (SMTP 451, the spool worker
        # retrying), and only a restart of this process frees them. Say so, so that monitoring acts.
        parsers_stuck = self.pipeline.stuck_parses >= MAX_STUCK_PARSES
        worker_dead = self.spool_worker is not None and not self.spool_worker.alive
        healthy = not parsers_stuck and not worker_dead
        if not connected:
            status = "nats unreachable"
        elif parsers_stuck:
            status = "parsers stuck: restart intake"
        else:
            status = "spool worker stopped: restart intake" if worker_dead else "ok"
        report: dict[str, Any] = {
            "status": status,
            "nats_connected": connected,
            "stuck_parses": self.pipeline.stuck_parses,
            "role": self.settings.intake_role,
            "smtp_port": self.smtp_port,
            "accepted_since_start": dict(self.pipeline.counters),
            "spooled_since_start": dict(self.spool.counters),
        }
        if self.spool_worker is not None:
            report.update(self.spool_worker.status())
        for channel in self.channels:  # IMAP mailboxes and the letters folder report their own state
            report.update(channel.status())
        if connected:
            try:
                report["quarantined"] = await asyncio.wait_for(self.stores.quarantine.count(), 3)
            except Exception as error:  # noqa: BLE001 - the probe reports, it does not fail
                report["quarantined"] = None
                report["quarantine_error"] = type(error).__name__
            try:
                report["spool_backlog"] = await asyncio.wait_for(spool_backlog(self.stores.js_context()), 3)
            except Exception as error:  # noqa: BLE001 - the probe reports, it does not fail
                report["spool_backlog"] = None
                report["spool_error"] = type(error).__name__
        return healthy, report

    async def ready_report(self) -> tuple[bool, dict[str, Any]]:
        ready, report = await self.probes.ready()
        return ready, {**report, "nats_connected": report["checks"]["nats"] == "ok", "role": self.settings.intake_role}

    async def spool_backlog(self) -> int:
        """Spool entries not yet understood (waiting or in progress), in every intake process."""
        return await spool_backlog(self.stores.js_context())


def intake_retention(settings: IntakeSettings, stores: IntakeStores) -> IntakeRetention:
    """Intake's retention of quarantine entries and rejected letters, as the settings schedule it."""
    return IntakeRetention(stores.js_context, stores.quarantine, stores.seen, settings.letters_path(),
                           quarantine_days=settings.quarantine_retention_days,
                           rejected_letters_days=settings.rejected_letters_retention_days)


def build_intake(settings: IntakeSettings) -> IntakeService:
    broker = make_broker(settings)
    declare_publishers(broker, PUBLISHES)
    return IntakeService(settings, broker)
