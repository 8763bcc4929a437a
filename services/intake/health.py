"""Intake's probes and scrape-time metrics (served by `shared.observability.ProbeServer` on
`intake_health_host:intake_health_port`, docs/operations.md):

- `/health` (liveness, `IntakeService.health_report`): 503 only when a restart is what helps — parse processes
  stuck at their cap, or the spool worker's loop ended; the JSON keeps the counters since start, the quarantine and
  spool figures, each channel's state;
- `/ready`: NATS connected and, in a process that parses (`intake_role` all or parser), the spool consumer attached
  here and known to the server; 503 with `not_ready` naming what is missing;
- `/metrics`: the process-wide counters, plus the spool backlog and the quarantined messages read at scrape time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import streams
from shared.observability import Consumer, Probes, ScrapeGauge
from services.intake.channels.spool import spool_backlog

if TYPE_CHECKING:
    from services.intake.wiring import IntakeService


def intake_probes(service: IntakeService) -> Probes:
    worker = service.spool_worker
    # A process without a spool worker (`intake_role` front) still reports the spool consumer's figures: whether
    # any parser pulls from it is what the alert "no parser consuming the spool" watches (deploy/prometheus/).
    consumers = [Consumer(streams.CONSUMER_INTAKE_SPOOL, streams.STREAM_INTAKE_SPOOL,
                          lambda: worker is not None and worker.alive, local=worker is not None)]

    async def backlog() -> float:
        return await spool_backlog(service.stores.js_context())

    async def quarantined() -> float:
        return await service.stores.quarantine.count()

    return Probes("intake", service.broker, consumers=consumers, gauges=(
        ScrapeGauge("ombudsdesk_intake_spool_backlog",
                    "Mail accepted (SMTP 250) and not yet understood: waiting in the spool or in progress.", backlog),
        ScrapeGauge("ombudsdesk_intake_quarantined",
                    "Messages kept in intake's quarantine (ombudsdesk intake quarantine list).", quarantined),
    ))
