"""The notifier's probes and scrape-time metrics (served by `shared.observability.ProbeServer` on
`notifier_health_host:notifier_health_port`, docs/operations.md):

- `/health` (liveness): 503 only when the dispatcher's loop has ended (a restart is what helps);
- `/ready`: NATS connected, the database answering, the notifier's durable consumers attached and known to the
  server; 503 with `not_ready` naming what is missing;
- `/metrics`: the process-wide counters, plus the outbox backlog (notices waiting for the relay, or in its hands)
  read at scrape time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from services.notifier.models import Notice, NoticeStatus
from shared.observability import Probes, ScrapeGauge

if TYPE_CHECKING:
    from services.notifier.wiring import NotifierService


def notifier_probes(service: NotifierService) -> Probes:
    async def waiting_notices() -> float:
        query = select(func.count()).select_from(Notice).where(
            Notice.status.in_([NoticeStatus.PENDING, NoticeStatus.SENDING]))
        async with service.engine.connect() as connection:
            return float((await connection.execute(query)).scalar_one())

    return Probes("notifier", service.broker, engine=service.engine, gauges=(
        ScrapeGauge("ombudsdesk_outbox_backlog",
                    "Outbox backlog: notices waiting for the relay or being sent (notifier); events committed and "
                    "not yet published (registry).", waiting_notices),
    ))


async def notifier_health(service: NotifierService) -> tuple[bool, dict[str, Any]]:
    dispatching = service.dispatcher.running
    return dispatching, {"status": "ok" if dispatching else "dispatcher stopped: restart the notifier",
                         "dispatcher_running": dispatching}
