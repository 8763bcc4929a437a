"""Database adapter of the registry: transactions over the schema of `models.py`, nothing else.

Use cases (`handlers.py`) open one `transaction()` per event or staff action and call the small methods of
`Transaction`; everything they write, including the events to publish (the outbox), commits or rolls back together.

Numbers are gap-free because the year's counter is incremented inside the registering transaction
(`UPDATE number_counters SET last = last + 1 ... RETURNING last`): the row lock serialises concurrent registrations
on PostgreSQL (`BEGIN IMMEDIATE` does on SQLite), and a transaction that fails afterwards (for instance on the unique
`message_key` when two processes registered the same message) rolls its increment back with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, text, union, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from services.registry.models import (
    CaseParty,
    ChangeLogEntry,
    Complaint,
    DeadlineAlertRecord,
    HeldMessage,
    NumberCounter,
    OutboxEvent,
    ThreadMessage,
)
from services.registry.numbering import NumberFormat
from services.registry.workflow import TERMINAL_STATUSES, Status
from shared.database import upgrade_to_head
from shared.events import Event

__all__ = ["ComplaintFilter", "IntegrityError", "RegistryStore", "Transaction", "migrate", "normalise_message_id"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def normalise_message_id(value: str | None) -> str | None:
    """`<abc@host>` and ` abc@host ` are the same Message-ID (RFC 5322 3.6.4: the angle brackets are syntax)."""
    if not value:
        return None
    stripped = value.strip().removeprefix("<").removesuffix(">").strip()
    return stripped or None


# How many of the newest complaints a text search looks at first (see `list_complaints`).
SEARCH_WINDOW = 5000


def _text_matches(entity: Any, pattern: str) -> Any:
    """`lower(column) LIKE '%text%'`: the form PostgreSQL's trigram indexes (migration 0002) answer."""
    return or_(
        func.lower(entity.subject_line).like(pattern, escape="\\"),
        func.lower(entity.complainant_name).like(pattern, escape="\\"),
        func.lower(entity.complainant_email).like(pattern, escape="\\"),
    )


def escape_like(text: str) -> str:
    """The text matched literally by LIKE ... ESCAPE '\\' (a `%` or `_` typed by staff is not a wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class ComplaintFilter:
    """Filters of the staff list (API and CLI)."""

    status: str | None = None
    kind: str | None = None
    service: str | None = None
    year: int | None = None
    due_before: date | None = None
    overdue_on: date | None = None
    text: str | None = None
    limit: int = 100
    offset: int = 0
    number_format: NumberFormat = NumberFormat()


# Statuses after which no deadline runs any more: answered, or ended (closed, inadmissible, redirected, withdrawn).
FINAL_STATUSES = frozenset({Status.ANSWERED.value, *(s.value for s in TERMINAL_STATUSES)})


class Transaction:
    """One unit of work on the register."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Outbox rows written by this transaction: the use case publishes them right after the commit.
        self.pending_events: list[OutboxEvent] = []

    # --- numbers ---------------------------------------------------------------------------------------------------
    async def next_sequence(self, year: int) -> int:
        table = NumberCounter.__table__
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        first_of_year = insert(table).values(year=year, last=0).on_conflict_do_nothing(index_elements=["year"])
        await self.session.execute(first_of_year)
        result = await self.session.execute(
            update(table).where(table.c.year == year).values(last=table.c.last + 1).returning(table.c.last)
        )
        return int(result.scalar_one())

    # --- complaints ------------------------------------------------------------------------------------------------
    async def add(self, *rows: object) -> None:
        """Insert now (the rows get their ids)."""
        self.session.add_all(rows)
        await self.session.flush()

    def stage(self, *rows: object) -> None:
        """Insert at the next flush or at commit: one round trip for several rows."""
        self.session.add_all(rows)

    async def find_message_key(self, message_key: str) -> tuple[str, int] | None:
        """Where a message already is, in one query: ("complaint", id), ("thread", complaint id), ("held", id)."""
        query = union_all(
            select(literal("complaint").label("place"), Complaint.id.label("ref")).where(
                Complaint.message_key == message_key),
            select(literal("thread"), ThreadMessage.complaint_id).where(ThreadMessage.message_key == message_key),
            select(literal("held"), HeldMessage.id).where(HeldMessage.message_key == message_key),
        )
        rows = (await self.session.execute(query)).all()
        if not rows:
            return None
        # The registering message is also the first entry of its complaint's thread: the complaint wins.
        place, ref = min(rows, key=lambda row: ("complaint", "thread", "held").index(row[0]))
        return str(place), int(ref)

    async def complaint_by_number(self, number: str, *, for_update: bool = False) -> Complaint | None:
        query = select(Complaint).where(Complaint.number == number)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def complaint_by_id(self, complaint_id: int) -> Complaint:
        return (await self.session.execute(select(Complaint).where(Complaint.id == complaint_id))).scalar_one()

    async def complaints_by_numbers(self, numbers: Iterable[str]) -> list[Complaint]:
        wanted = list(dict.fromkeys(numbers))
        if not wanted:
            return []
        return list((await self.session.execute(select(Complaint).where(Complaint.number.in_(wanted)))).scalars())

    async def complaints_by_message_ids(self, message_ids: Iterable[str]) -> list[Complaint]:
        wanted = [m for m in dict.fromkeys(message_ids) if m]
        if not wanted:
            return []
        query = select(Complaint).where(
            Complaint.id.in_(select(ThreadMessage.complaint_id).where(ThreadMessage.message_id.in_(wanted)))
        )
        return list((await self.session.execute(query)).scalars())

    async def complaints_of_party(self, email: str, limit: int = 5) -> list[Complaint]:
        query = (
            select(Complaint)
            .join(CaseParty, CaseParty.complaint_id == Complaint.id)
            .where(CaseParty.email == email.lower())
            .order_by(Complaint.received_at.desc())
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def party_emails(self, complaint_ids: Sequence[int]) -> dict[int, set[str]]:
        result: dict[int, set[str]] = {complaint_id: set() for complaint_id in complaint_ids}
        if complaint_ids:
            rows = await self.session.execute(
                select(CaseParty.complaint_id, CaseParty.email).where(CaseParty.complaint_id.in_(complaint_ids))
            )
            for complaint_id, email in rows:
                result[complaint_id].add(email)
        return result

    async def add_party(self, complaint_id: int, email: str, role: str, added_by: str) -> bool:
        email = email.strip().lower()
        existing = await self.session.execute(
            select(CaseParty.id).where(CaseParty.complaint_id == complaint_id, CaseParty.email == email)
        )
        if existing.first():
            return False
        await self.add(CaseParty(complaint_id=complaint_id, email=email, role=role, added_by=added_by,
                                 added_at=utc_now()))
        return True

    # --- threads ---------------------------------------------------------------------------------------------------
    async def thread_message_by_key(self, message_key: str) -> ThreadMessage | None:
        query = select(ThreadMessage).where(ThreadMessage.message_key == message_key)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def thread(self, complaint_id: int) -> list[ThreadMessage]:
        query = (
            select(ThreadMessage)
            .where(ThreadMessage.complaint_id == complaint_id)
            .order_by(ThreadMessage.occurred_at, ThreadMessage.id)
        )
        return list((await self.session.execute(query)).scalars())

    # --- holding pen -----------------------------------------------------------------------------------------------
    async def held_by_id(self, held_id: int, *, for_update: bool = False) -> HeldMessage | None:
        query = select(HeldMessage).where(HeldMessage.id == held_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    # --- change log and outbox -------------------------------------------------------------------------------------
    async def change_log(self, complaint_id: int) -> list[ChangeLogEntry]:
        query = select(ChangeLogEntry).where(ChangeLogEntry.complaint_id == complaint_id).order_by(ChangeLogEntry.id)
        return list((await self.session.execute(query)).scalars())

    def enqueue(self, event: Event) -> OutboxEvent:
        """Record an event to publish once this transaction commits. Its dedup id is unique: a second enqueue of
        the same event fails the transaction, and the use case's retry finds what was stored."""
        row = OutboxEvent(dedup_id=event.dedup_id(), subject=event.subject, payload=event.model_dump_json(),
                          created_at=utc_now())
        self.stage(row)
        self.pending_events.append(row)
        return row

    async def outbox_by_dedup_id(self, dedup_id: str) -> OutboxEvent | None:
        query = select(OutboxEvent).where(OutboxEvent.dedup_id == dedup_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    # --- deadline alerts -------------------------------------------------------------------------------------------
    async def alert_keys(self, complaint_id: int) -> set[str]:
        rows = await self.session.execute(
            select(DeadlineAlertRecord.alert_key).where(DeadlineAlertRecord.complaint_id == complaint_id)
        )
        return set(rows.scalars())


class RegistryStore:
    """Opens transactions and runs the read-only queries of the staff interfaces."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._sessions() as session, session.begin():
            yield Transaction(session)

    async def complaint(self, number: str) -> Complaint | None:
        async with self.transaction() as tx:
            return await tx.complaint_by_number(number)

    async def complaint_file(self, number: str) -> tuple[Complaint, list[ThreadMessage], list[ChangeLogEntry],
                                                         list[str]] | None:
        async with self.transaction() as tx:
            complaint = await tx.complaint_by_number(number)
            if complaint is None:
                return None
            thread = await tx.thread(complaint.id)
            changes = await tx.change_log(complaint.id)
            parties = sorted((await tx.party_emails([complaint.id]))[complaint.id])
            return complaint, thread, changes, parties

    async def list_complaints(self, criteria: ComplaintFilter) -> list[Complaint]:
        query: Select[tuple[Complaint]] = select(Complaint)
        if criteria.status:
            query = query.where(Complaint.status == criteria.status)
        if criteria.kind:
            query = query.where(Complaint.kind == criteria.kind)
        if criteria.service:
            query = query.where(Complaint.service_concerned == criteria.service)
        if criteria.year:
            query = query.where(Complaint.year == criteria.year)
        if criteria.due_before:
            query = query.where(Complaint.answer_due <= criteria.due_before)
        if criteria.overdue_on:
            query = query.where(Complaint.answer_due < criteria.overdue_on,
                                Complaint.status.not_in(sorted(FINAL_STATUSES)))
        newest_first = (Complaint.year.desc(), Complaint.sequence.desc())
        wanted = criteria.offset + criteria.limit
        async with self._sessions() as session:
            if criteria.text and criteria.number_format.parse(criteria.text):
                query = query.where(Complaint.number == criteria.number_format.normalise(criteria.text))
            elif criteria.text:
                pattern = f"%{escape_like(criteria.text.lower())}%"
                # A common word matches a large share of the register: among the newest complaints the wanted
                # matches are found at once, where the planner would fetch every match through the trigram
                # index and sort them. Exact: when the newest window holds enough matches, no older complaint
                # can be among the newest ones.
                window = aliased(Complaint, query.order_by(*newest_first).limit(SEARCH_WINDOW).subquery())
                recent = (select(window).where(_text_matches(window, pattern))
                          .order_by(window.year.desc(), window.sequence.desc()).limit(wanted))
                found = list((await session.execute(recent)).scalars())
                if len(found) >= wanted:
                    return found[criteria.offset:]
                query = query.where(_text_matches(Complaint, pattern))
            query = query.order_by(*newest_first).limit(criteria.limit).offset(criteria.offset)
            return list((await session.execute(query)).scalars())

    async def held_messages(self, status: str | None = "pending") -> list[HeldMessage]:
        query = select(HeldMessage).order_by(HeldMessage.id)
        if status:
            query = query.where(HeldMessage.status == status)
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())

    async def open_complaints(self, after_id: int = 0, batch: int = 500) -> list[Complaint]:
        """Complaints whose deadlines still run, in id order (the watcher pages through them)."""
        query = (
            select(Complaint)
            .where(Complaint.status.not_in(sorted(FINAL_STATUSES)), Complaint.id > after_id)
            .order_by(Complaint.id)
            .limit(batch)
        )
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())

    async def report_rows(self, year: int) -> list[Any]:
        """The columns the annual indicators need, for every complaint that may count in `year`: received in it,
        or received earlier and still open, ended, answered or falling due in it (extra rows are harmless)."""
        start, end = date(year, 1, 1), date(year, 12, 31)
        # A day of margin: the adapter compares local dates, these timestamps are UTC.
        since = datetime(year, 1, 1, tzinfo=timezone.utc) - timedelta(days=1)
        earlier = Complaint.legal_start < start
        query = select(
            Complaint.number, Complaint.legal_start, Complaint.channel, Complaint.kind, Complaint.status,
            Complaint.admissibility, Complaint.admissibility_reasons, Complaint.redirected_to,
            Complaint.service_concerned, Complaint.theme, Complaint.outcome, Complaint.outcome_category,
            Complaint.acknowledgment_due, Complaint.acknowledged_at, Complaint.answer_due, Complaint.answered_at,
            Complaint.closed_at, Complaint.recommendations,
        ).where(Complaint.id.in_(union(
            # One index-friendly branch per reason to count (a single OR would scan every earlier year).
            select(Complaint.id).where(Complaint.legal_start.between(start, end)),
            select(Complaint.id).where(Complaint.closed_at.is_(None), earlier),
            select(Complaint.id).where(Complaint.closed_at >= since, earlier),
            select(Complaint.id).where(Complaint.answered_at >= since, earlier),
            select(Complaint.id).where(Complaint.answer_due >= start, earlier),
        )))
        async with self._sessions() as session:
            return list((await session.execute(query)).all())

    async def unpublished_events(self, limit: int = 500) -> list[OutboxEvent]:
        query = select(OutboxEvent).where(OutboxEvent.published_at.is_(None)).order_by(OutboxEvent.id).limit(limit)
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        async with self.transaction() as tx:
            await tx.session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_(list(ids))).values(published_at=utc_now())
            )


MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant shared by every registry process: serialises concurrent start-ups on one PostgreSQL database.
_MIGRATION_LOCK_KEY = 0x0B0D_5DE5


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to head. Two registry processes starting together on PostgreSQL would both try to create
    the tables, so they take turns on an advisory lock; SQLite's `BEGIN IMMEDIATE` already makes them take turns."""
    if engine.dialect.name != "postgresql":
        await upgrade_to_head(engine, MIGRATIONS)
        return
    async with engine.connect() as lock:
        await lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        try:
            await upgrade_to_head(engine, MIGRATIONS)
        finally:
            await lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            await lock.commit()
