"""The notifier's outbox in its own database (adapter): record notices once, claim them for sending, record outcomes.

`record` renders a notice, then stores it fully rendered in the transaction that records it as due; the unique notification key
makes a second delivery of the same event a no-op (INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL).
Relays claim notices with a lease, so a relay killed mid-send leaves its notice to be sent again once the lease
runs out: a notice may, in that narrow window, be sent twice, but is never lost.

Rate limits per recipient (follow-up confirmations, acknowledgments) count the notices this outbox recorded: durable
across restarts and shared by every notifier instance on the database. They count by `Notice.limit_key`, the
recipient's mailbox however its address is spelled and the sender's quota (`quota.limit_key`), not by the exact
address. On PostgreSQL the recording transaction takes an advisory lock on that key, so two instances recording for
one mailbox take turns and the second counts the first's notice; SQLite has a single writer already.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notifier.models import AddressFlag, FileAtRisk, Notice, NoticeChannel, NoticeStatus


COMPOSE_ATTEMPTS = 3


@dataclass(frozen=True)
class RecipientFacts:
    """What the database knows about a recipient when a notice to them is recorded: whether the address is
    flagged, and how many notices of the counted kind it was sent (or is due) within the counted period."""

    flagged_reason: str | None
    recent: int


@dataclass(frozen=True)
class CountedNotices:
    """Which notices to count against a limit: those of `kind` with this `limit_key` (`quota.limit_key`: one
    mailbox in one quota) recorded since `since` and not suppressed."""

    kind: str
    since: datetime
    limit_key: str


def recipient_lock_key(limit_key: str) -> int:
    """A stable PostgreSQL advisory-lock key (signed 64-bit) for one counted key (`quota.limit_key`)."""
    digest = hashlib.sha256(f"ombudsdesk-notifier-recipient:{limit_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Outbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time, and its busy handler waits by sleeping (up to 100 ms a try): queue this
        # process's writers (the consumers and the dispatcher write concurrently) on a lock instead.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sqlite_writer or nullcontext():
            async with self.sessions.begin() as session:
                yield session

    def _insert(self, table: Any) -> Any:
        """INSERT with the dialect's ON CONFLICT support (both SQLite and PostgreSQL have it)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    async def record(
        self,
        notification_key: str,
        address: str | None,
        compose: Callable[[RecipientFacts], dict[str, Any]],
        counted: CountedNotices | None = None,
    ) -> bool:
        """Store the notice `compose` builds, unless one with this key exists. True when this call stored it.

        `compose` (templates, a PDF letter: slow) runs before the write transaction, on facts read without holding
        SQLite's single writer; the transaction then re-reads the facts and only stores the composed notice if they
        still hold (a concurrent flag or follow-up changes the route), composing again otherwise (issue 5)."""
        for _ in range(COMPOSE_ATTEMPTS):
            async with self.sessions() as session:
                if await self._exists(session, notification_key):
                    return False
                facts = await self._facts(session, address, counted)
            values = compose(facts)
            async with self._writing() as session:
                await self._lock_recipient(session, address, counted)
                if await self._exists(session, notification_key):
                    return False
                if await self._facts(session, address, counted) != facts:
                    continue
                statement = self._insert(Notice.__table__).values(notification_key=notification_key, **values)
                result = await session.execute(statement.on_conflict_do_nothing(index_elements=["notification_key"]))
                return bool(result.rowcount)
        # The facts kept changing under us: compose within the transaction, slow but correct.
        async with self._writing() as session:
            await self._lock_recipient(session, address, counted)
            if await self._exists(session, notification_key):
                return False
            values = compose(await self._facts(session, address, counted))
            statement = self._insert(Notice.__table__).values(notification_key=notification_key, **values)
            result = await session.execute(statement.on_conflict_do_nothing(index_elements=["notification_key"]))
            return bool(result.rowcount)

    @staticmethod
    async def _exists(session: AsyncSession, notification_key: str) -> bool:
        return await session.scalar(select(Notice.id).where(Notice.notification_key == notification_key)) is not None

    async def _lock_recipient(self, session: AsyncSession, address: str | None,
                              counted: CountedNotices | None) -> None:
        """PostgreSQL: hold the counted key's advisory lock until the transaction ends, when a limit is counted."""
        if address and counted is not None and self.engine.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                  {"key": recipient_lock_key(counted.limit_key)})

    async def _facts(self, session: AsyncSession, address: str | None,
                     counted: CountedNotices | None) -> RecipientFacts:
        if not address:
            return RecipientFacts(None, 0)
        flag = await session.scalar(select(AddressFlag.reason).where(AddressFlag.address == address.lower()))
        if counted is None:
            return RecipientFacts(flag, 0)
        recent = await session.scalar(
            select(func.count(Notice.id)).where(
                Notice.limit_key == counted.limit_key,
                Notice.notice_kind == counted.kind,
                Notice.created_at >= counted.since,
                Notice.status != NoticeStatus.SUPPRESSED,
            )
        )
        return RecipientFacts(flag, int(recent or 0))

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Notice]:
        """Notices due now (or whose previous relay's lease expired), each claimed by exactly one relay.

        One UPDATE ... RETURNING: a concurrent relay's update of the same row re-checks the condition after ours
        commits (PostgreSQL READ COMMITTED; SQLite serialises writers), so no notice is claimed twice."""
        due = or_(
            and_(Notice.status == NoticeStatus.PENDING, Notice.next_attempt_at <= now),
            and_(Notice.status == NoticeStatus.SENDING, Notice.lease_until < now),
        )
        candidates = select(Notice.id).where(due).order_by(Notice.id).limit(limit).scalar_subquery()
        async with self._writing() as session:
            claimed = await session.scalars(
                update(Notice)
                .where(Notice.id.in_(candidates), due)
                .values(status=NoticeStatus.SENDING, lease_until=now + lease)
                .returning(Notice)
                .execution_options(synchronize_session=False)
            )
            return sorted(claimed.all(), key=lambda notice: notice.id)

    async def _update(self, notice_id: int, **values: Any) -> None:
        async with self._writing() as session:
            await session.execute(update(Notice).where(Notice.id == notice_id).values(**values))

    async def release(self, notice: Notice) -> None:
        """Give a claimed notice back, unless its lease already ran out and another relay holds it now."""
        async with self._writing() as session:
            await session.execute(
                update(Notice)
                .where(Notice.id == notice.id, Notice.status == NoticeStatus.SENDING,
                       Notice.lease_until == notice.lease_until)
                .values(status=NoticeStatus.PENDING, lease_until=None)
            )

    async def mark_sent(self, notice_id: int, now: datetime) -> None:
        await self._update(notice_id, status=NoticeStatus.SENT, sent_at=now, lease_until=None,
                           attempts=Notice.attempts + 1, status_reason=None)

    async def mark_retry(self, notice_id: int, next_attempt_at: datetime, error: str) -> None:
        await self._update(notice_id, status=NoticeStatus.PENDING, next_attempt_at=next_attempt_at,
                           lease_until=None, attempts=Notice.attempts + 1, status_reason=error)

    async def mark_failed(self, notice_id: int, reason: str) -> None:
        await self._update(notice_id, status=NoticeStatus.FAILED, lease_until=None, status_reason=reason,
                           outcome_published=False)

    async def mark_published(self, notice_ids: Sequence[int]) -> None:
        async with self._writing() as session:
            await session.execute(update(Notice).where(Notice.id.in_(notice_ids)).values(outcome_published=True))

    async def unpublished_outcomes(self, limit: int = 100) -> list[Notice]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Notice)
                .where(
                    Notice.status.in_([NoticeStatus.SENT, NoticeStatus.FAILED, NoticeStatus.PRINTED]),
                    Notice.outcome_published.is_(False),
                )
                .order_by(Notice.id)
                .limit(limit)
            )
            return list(rows.all())

    async def flag_address(self, address: str, reason: str, notification_key: str | None, now: datetime) -> None:
        statement = self._insert(AddressFlag.__table__).values(
            address=address.lower(), reason=reason, flagged_at=now, notification_key=notification_key
        )
        async with self._writing() as session:
            await session.execute(statement.on_conflict_do_nothing(index_elements=["address"]))

    async def flagged_addresses(self) -> list[AddressFlag]:
        async with self.sessions() as session:
            return list((await session.scalars(select(AddressFlag).order_by(AddressFlag.flagged_at))).all())

    async def by_message_id(self, message_id: str) -> Notice | None:
        async with self.sessions() as session:
            return await session.scalar(select(Notice).where(Notice.message_id == message_id))

    async def by_key(self, notification_key: str) -> Notice | None:
        async with self.sessions() as session:
            return await session.scalar(select(Notice).where(Notice.notification_key == notification_key))

    async def notices(self, complaint_number: str | None = None) -> Sequence[Notice]:
        query = select(Notice).order_by(Notice.id)
        if complaint_number:
            query = query.where(Notice.complaint_number == complaint_number)
        async with self.sessions() as session:
            return (await session.scalars(query)).all()

    async def print_queue(self, include_printed: bool = False) -> Sequence[Notice]:
        statuses = [NoticeStatus.QUEUED, NoticeStatus.PRINTED] if include_printed else [NoticeStatus.QUEUED]
        async with self.sessions() as session:
            return (
                await session.scalars(
                    select(Notice)
                    .where(Notice.channel == NoticeChannel.LETTER, Notice.status.in_(statuses))
                    .order_by(Notice.id)
                )
            ).all()

    async def mark_printed(self, notice_id: int, printed_by: str, now: datetime) -> bool:
        async with self._writing() as session:
            result = await session.execute(
                update(Notice)
                .where(Notice.id == notice_id, Notice.channel == NoticeChannel.LETTER,
                       Notice.status == NoticeStatus.QUEUED)
                # The running notifier reports the posted letter as sent (the registry records the acknowledgment).
                .values(status=NoticeStatus.PRINTED, printed_by=printed_by, sent_at=now, outcome_published=False)
            )
            return result.rowcount == 1

    async def record_risk(self, values: dict[str, Any]) -> None:
        """Remember an open deadline alert for the digest; a late "approaching" never downgrades a "missed"."""
        async with self._writing() as session:
            risk = await session.get(FileAtRisk, (values["complaint_number"], values["deadline_kind"]))
            if risk is None:
                session.add(FileAtRisk(**values))
                return
            if risk.state == "missed" and values["state"] == "approaching" and risk.due == values["due"]:
                return
            for key, value in values.items():
                setattr(risk, key, value)

    async def clear_risk(self, complaint_number: str, deadline_kind: str, now: datetime) -> None:
        async with self._writing() as session:
            await session.execute(
                update(FileAtRisk)
                .where(FileAtRisk.complaint_number == complaint_number, FileAtRisk.deadline_kind == deadline_kind,
                       FileAtRisk.cleared_at.is_(None))
                .values(cleared_at=now)
            )

    async def open_risks(self) -> list[FileAtRisk]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(FileAtRisk)
                .where(FileAtRisk.cleared_at.is_(None))
                .order_by(FileAtRisk.handler_email, FileAtRisk.due, FileAtRisk.complaint_number)
            )
            return list(rows.all())
