"""The retention run (issue 16): what the schedule makes due today, and doing it — the same code for
`ombudsdesk privacy retention [--dry-run]` and the registry's daily job (`RetentionJob`).

`plan` reads the register (ended files not yet anonymised whose ending is old enough for the shortest period, read
by the indexes on `closed_at` and `answered_at` a page at a time; held messages never attached) and lets the pure
schedule (`schedule.decide`) decide each; a file under a legal hold is listed as suspended. `run` carries out a plan
through the registry's commands (`AnonymiseFile`, `PurgeHeldMessage`), one transaction per file, so a failure leaves
the others done and the next run takes it again; then deletes the published outbox rows past their retention and,
on SQLite, compacts the full-text index so that no deleted token lingers in it. A dry run and a real run on the same
day list the same decisions: the real run returns the plan it carried out.

Each run is counted (`shared.observability`: `ombudsdesk_privacy_actions_total`, `ombudsdesk_retention_runs_total`)
and recorded in the audit trail: one entry per file anonymised or message deleted (its number, the rule, the
erasure id; never a name) and one for the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.registry.access.audit import AuditTrail
from services.registry.commands import AnonymiseFile, PurgeHeldMessage
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.models import Complaint, HeldMessage, LegalHold
from services.registry.privacy.anonymise import prune_outbox
from services.registry.privacy.schedule import (
    ENDED_STATUSES,
    Action,
    Decision,
    FileFacts,
    RetentionSchedule,
    add_years,
    decide,
    held_due,
)
from services.registry.publisher import wait_or_stop
from shared import observability
from shared.database import read_only, refresh_statistics

__all__ = ["PAGE", "RetentionJob", "RetentionReport", "compact", "plan", "run"]

log = structlog.get_logger(__name__)

PAGE = 500
# Held messages deleted by retention: those never attached to a file (the others go with their file).
UNATTACHED = ("pending", "discarded")


@dataclass
class RetentionReport:
    """What a run decided (in subject order) and, for a real run, what came of it."""

    today: date
    dry_run: bool
    decisions: list[Decision]
    done: list[str] = field(default_factory=list)  # subjects anonymised or deleted
    failed: dict[str, str] = field(default_factory=dict)  # subject -> why not (a hold placed meanwhile...)
    outbox_pruned: int = 0

    def count(self, action: Action) -> int:
        return sum(1 for decision in self.decisions if decision.action is action)

    def as_dict(self) -> dict[str, Any]:
        return {"today": self.today.isoformat(), "dry_run": self.dry_run,
                "decisions": [{"subject": d.subject, "action": d.action.value, "rule": d.rule.value,
                               "due_on": d.due_on.isoformat()} for d in self.decisions],
                "done": self.done, "failed": self.failed, "outbox_pruned": self.outbox_pruned}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), timezone.utc)


async def plan(engine: AsyncEngine, today: date, schedule: RetentionSchedule, zone: ZoneInfo) -> list[Decision]:
    """Every decision of the schedule today, files then held messages, in subject order."""
    sessions = async_sessionmaker(read_only(engine), expire_on_commit=False)
    # A day of margin either way for the time zone; `decide` is exact on the local day.
    latest_end = _midnight(add_years(today, -schedule.shortest_years()) + timedelta(days=2))
    ended = or_(Complaint.closed_at < latest_end,
                and_(Complaint.closed_at.is_(None), Complaint.answered_at < latest_end))
    decisions: list[Decision] = []
    after = 0
    async with sessions() as session:
        while True:
            rows = (await session.execute(
                select(Complaint.id, Complaint.number, Complaint.status, Complaint.kind, Complaint.closed_at,
                       Complaint.answered_at)
                .where(Complaint.id.in_(select(Complaint.id).where(ended)), Complaint.id > after,
                       Complaint.anonymised_at.is_(None), Complaint.status.in_(sorted(ENDED_STATUSES)))
                .order_by(Complaint.id).limit(PAGE))).all()
            if not rows:
                break
            held = set((await session.execute(select(LegalHold.complaint_id).where(
                LegalHold.complaint_id.in_([row.id for row in rows]), LegalHold.released_at.is_(None)))).scalars())
            for row in rows:
                moment = row.closed_at or row.answered_at
                facts = FileFacts(row.number, row.status, row.kind, moment.astimezone(zone).date() if moment else None,
                                  on_hold=row.id in held)
                decision = decide(facts, today, schedule)
                if decision is not None:
                    decisions.append(decision)
            after = rows[-1].id
        received_before = _midnight(today - timedelta(days=schedule.held_days) + timedelta(days=2))
        for held_id, received_at in (await session.execute(
                select(HeldMessage.id, HeldMessage.received_at)
                .where(HeldMessage.status.in_(UNATTACHED), HeldMessage.received_at < received_before)
                .order_by(HeldMessage.id))).all():
            decision = held_due(held_id, received_at.astimezone(zone).date(), today, schedule)
            if decision is not None:
                decisions.append(decision)
    return sorted(decisions)


async def compact(engine: AsyncEngine) -> None:
    """SQLite: merge the full-text index's segments (a token of a replaced text otherwise stays in an old segment
    until some later merge) and fold the write-ahead log into the database file (it holds the pages as they were).
    PostgreSQL: sample the statistics again (`pg_stats` holds sampled values, readable through SQL); the replaced rows
    stay as dead tuples in the table files, unreadable through SQL, until the operator's `ANALYZE` + `VACUUM FULL`
    (docs/privacy.md: a plain VACUUM frees their space without overwriting it)."""
    if engine.dialect.name != "sqlite":
        await refresh_statistics(engine)
        return
    async with engine.begin() as connection:
        if (await connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'complaints_fts'"))).first():
            await connection.execute(text("INSERT INTO complaints_fts(complaints_fts) VALUES ('optimize')"))
    # Outside any transaction (the engine's "begin" hook opens one for every SQLAlchemy connection), on the driver's
    # own connection; best effort: a reader holding an old snapshot keeps the log until the next checkpoint.
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        try:
            await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception as error:  # noqa: BLE001 - SQLite checkpoints on its own later
            log.info("privacy.checkpoint_deferred", error=repr(error))


async def run(registry: Registry, audit: AuditTrail, schedule: RetentionSchedule, *, actor: str,
              dry_run: bool = False, outbox_days: int = 30) -> RetentionReport:
    """Plan today's retention and, unless `dry_run`, carry it out (see the module's docstring)."""
    today = registry.today()
    decisions = await plan(registry.store.engine, today, schedule, registry.policy.timezone)
    report = RetentionReport(today, dry_run, decisions)
    if not dry_run:
        for decision in decisions:
            if decision.action is Action.SUSPENDED:
                continue
            try:
                if decision.action is Action.ANONYMISE:
                    event = await registry.handle(AnonymiseFile(decision.subject, actor, "retention",
                                                                decision.rule.value))
                    number = decision.subject
                else:
                    event = await registry.handle(PurgeHeldMessage(int(decision.subject.partition(":")[2]), actor))
                    number = event.complaint_number if event else None
            except (Conflict, NotFound) as error:  # a hold placed, a message resolved since the plan was read
                report.failed[decision.subject] = str(error)
                continue
            if event is None:
                continue
            report.done.append(decision.subject)
            action = "anonymised" if decision.action is Action.ANONYMISE else "held_deleted"
            observability.privacy_action(action, "retention")
            await audit.append(f"change.{action}", actor=actor, number=number, details={
                "rule": decision.rule.value, "erasure_id": event.erasure_id, "subject": decision.subject})
        async with registry.store.transaction() as tx:
            report.outbox_pruned = await prune_outbox(tx, registry.clock.now() - timedelta(days=outbox_days))
        await compact(registry.store.engine)
    for _ in range(report.count(Action.SUSPENDED)):
        observability.privacy_action("suspended", "retention")
    await audit.append("change.retention_run", actor=actor, details={
        "dry_run": dry_run, "anonymise": report.count(Action.ANONYMISE), "delete": report.count(Action.DELETE),
        "suspended": report.count(Action.SUSPENDED), "done": len(report.done), "failed": len(report.failed),
        "outbox_pruned": report.outbox_pruned})
    log.info("privacy.retention_run", dry_run=dry_run, decisions=len(decisions), done=len(report.done),
             failed=len(report.failed), outbox_pruned=report.outbox_pruned)
    return report


def seconds_until(now: datetime, at: time, zone: ZoneInfo) -> float:
    """Seconds from `now` to the next `at` o'clock in `zone` (tomorrow's when today's has passed)."""
    local = now.astimezone(zone)
    target = datetime.combine(local.date(), at, zone)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), at, zone)
    return max((target - local).total_seconds(), 0.0)


class RetentionJob:
    """The registry's daily retention run, at `at` o'clock in the register's time zone (not at start-up: a restart
    must not run it again, and a night run keeps the day's work fast). Several registry processes may each run it:
    every step is idempotent (an anonymised file is skipped, a deleted message is gone)."""

    def __init__(self, registry: Registry, audit: AuditTrail, schedule: RetentionSchedule, *, at: time,
                 outbox_days: int, clock: Callable[[], datetime] | None = None) -> None:
        self.registry = registry
        self.audit = audit
        self.schedule = schedule
        self.at = at
        self.outbox_days = outbox_days
        self.clock = clock or registry.clock.now

    async def run_once(self) -> RetentionReport:
        try:
            report = await run(self.registry, self.audit, self.schedule, actor="registry:retention",
                               outbox_days=self.outbox_days)
        except Exception:
            observability.retention_run("failed")
            raise
        observability.retention_run("ok" if not report.failed else "partial")
        return report

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await wait_or_stop(stopping, seconds_until(self.clock(), self.at, self.registry.policy.timezone))
            if stopping.is_set():
                return
            try:
                await self.run_once()
            except Exception as error:  # noqa: BLE001 - tomorrow's run takes what is left
                log.warning("privacy.retention_failed", error=repr(error))
            await wait_or_stop(stopping, 60.0)  # past the minute: never twice for the same `at`
