"""The deadline-alert handler: publish the alerts now due for one complaint, each once.

The complaint is read again, locked, inside the transaction: the watcher's page of open complaints was read before,
and a complaint acknowledged, answered or paused since must not raise an alert on its old state. Each alert's key is
stored in the same transaction as its event; a concurrent watcher in another process hits the unique key, and the
unit of work's retry then finds the alert raised.

The alert of a data-protection complaint names only its number and dates: its subject line and the service it
concerns go to no one but a DPO, and the alert (and the digest built from it) reaches the supervisor too (issues 13,
16).
"""

from __future__ import annotations

from services.registry import deadlines
from services.registry.commands import RaiseDeadlineAlerts
from services.registry.handlers.ports import RegisterClock
from services.registry.handlers.records import state_of
from services.registry.models import DeadlineAlertRecord
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from shared.events import DeadlineApproaching, DeadlineMissed, Party


async def raise_deadline_alerts(command: RaiseDeadlineAlerts, *, uow: UnitOfWork, clock: RegisterClock) -> int:
    """Returns how many alerts went out."""

    async def raise_due(tx: Transaction) -> int:
        complaint = await tx.complaint_by_id(command.complaint_id, for_update=True)
        alerts = state_of(complaint).alerts_due(clock.today(), command.lead_days)
        raised = await tx.alert_keys(complaint.id) if alerts else set()
        fresh = [alert for alert in alerts if alert.key not in raised]
        for alert in fresh:
            tx.stage(DeadlineAlertRecord(complaint_id=complaint.id, alert_key=alert.key, raised_at=clock.now()))
            event_class = DeadlineMissed if alert.alert is deadlines.AlertKind.MISSED else DeadlineApproaching
            tx.enqueue(event_class(
                complaint_number=complaint.number,
                deadline_kind=alert.deadline.value,
                due=alert.due,
                handler=Party(email=complaint.handler) if complaint.handler else None,
                service_concerned=None if complaint.data_protection else complaint.service_concerned,
                subject_line="" if complaint.data_protection else complaint.subject_line,
                lead_days=alert.lead_days or 0,
            ))
        return len(fresh)

    return await uow.run(f"deadline alerts of complaint {command.complaint_id}", raise_due)
