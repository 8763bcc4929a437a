"""The notifier's outbox in its own database (adapter): record notices once, claim them for sending, record outcomes.

`record` reads the recipient's facts (one query), renders the notice, then stores it fully rendered in one statement
of the transaction that records it as due (INSERT ... SELECT ... WHERE the key is free and the facts unchanged, ON
CONFLICT DO NOTHING on both SQLite and PostgreSQL): a second delivery of the same event is a no-op.
Relays claim notices with a lease, so a relay killed mid-send leaves its notice to be sent again once the lease
runs out: a notice may, in that narrow window, be sent twice, but is never lost.

Rate limits per recipient (follow-up confirmations, acknowledgments) count the notices this outbox recorded: durable
across restarts and shared by every notifier instance on the database. They count by `Notice.limit_key`, the
recipient's mailbox however its address is spelled and the sender's quota (`quota.limit_key`), not by the exact
address. On PostgreSQL the recording transaction takes an advisory lock on that key, so two instances recording for
one mailbox take turns and the second counts the first's notice; SQLite has a single writer already.

Inside a batched delivery (the `ComplaintRegistered` subscriber fetches events in batches, issue 12) the write of
`record` goes through a `shared.messaging.CommitGroup`: the notices of the batch are stored in one transaction, one
commit (one fsync on SQLite) for all, and each `record` returns only after that commit, so each event is still
acknowledged after its notice is recorded. A failing batch is rolled back and each write done again alone.

A notice that carries a citizen's personal or survey link keeps it only while it may still go out (a retry sends the
stored text): the statement that records it sent, failed for good or printed also replaces the link in its stored
text and HTML and drops a letter's PDF, and a notice recorded as never to go out (suppressed, failed at once) is
stored so from the start (`citizen_link.redacted`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, event, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from services.notifier.citizen_link import redacted
from services.notifier.models import ERASED_REASON, AddressFlag, FileAtRisk, Notice, NoticeChannel, NoticeStatus
from shared.database import read_only
from shared.messaging import CommitGroup, in_batched_delivery


COMPOSE_ATTEMPTS = 4  # the first on `USUAL_FACTS`, the others on facts read
# The statuses of a notice that may still go out: it keeps its links until then.
_MAY_GO_OUT = frozenset({NoticeStatus.PENDING, NoticeStatus.SENDING, NoticeStatus.QUEUED})


@dataclass(frozen=True)
class RecipientFacts:
    """What the database knows about a recipient when a notice to them is recorded: whether the address is
    flagged, and how many notices of the counted kind it was sent (or is due) within the counted period."""

    flagged_reason: str | None
    recent: int


# A file-at-risk settled by the notice that answers its deadline (parameters `number`, `kind`, `at`); built once.
_CLEARING = (update(FileAtRisk)
             .where(FileAtRisk.complaint_number == bindparam("number"), FileAtRisk.deadline_kind == bindparam("kind"),
                    FileAtRisk.cleared_at.is_(None))
             .values(cleared_at=bindparam("at")))

# The facts of almost every notice: an address never flagged, nothing yet counted against its limit.
USUAL_FACTS = RecipientFacts(None, 0)

@dataclass(frozen=True)
class CountedNotices:
    """Which notices to count against a limit: those of `kind` with this `limit_key` (`quota.limit_key`: one
    mailbox in one quota) recorded since `since` and not suppressed."""

    kind: str
    since: datetime
    limit_key: str


@dataclass(frozen=True)
class SettledRisk:
    """The file-at-risk a notice answers (its complaint and deadline kind), cleared when the notice is recorded."""

    complaint_number: str
    deadline_kind: str
    at: datetime


@dataclass(frozen=True)
class _Write:
    """One composed notice to store if its key is free and its recipient's facts still hold."""

    notification_key: str
    address: str | None
    values: dict[str, Any]
    counted: CountedNotices | None
    facts: RecipientFacts
    settles: SettledRisk | None


def _stored_as_composed(compose: Callable[[RecipientFacts], dict[str, Any]]
                        ) -> Callable[[RecipientFacts], dict[str, Any]]:
    """`compose`, whose notice, when it is never to go out (suppressed, failed at once), loses its personal links
    before it is stored: nothing will send it, so nothing needs them (same columns: the statement's shape holds)."""

    def composed(facts: RecipientFacts) -> dict[str, Any]:
        values = compose(facts)
        if values.get("status") in _MAY_GO_OUT:
            return values
        return {**values, **redacted(values.get("body_text"), values.get("body_html"), values.get("language"),
                                     values.get("letter_pdf"))}

    return composed


def recipient_lock_key(limit_key: str) -> int:
    """A stable PostgreSQL advisory-lock key (signed 64-bit) for one counted key (`quota.limit_key`)."""
    digest = hashlib.sha256(f"ombudsdesk-notifier-recipient:{limit_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _sync_every_commit(dbapi_connection: Any, _record: Any) -> None:
    # The outbox's commits are its promises: "recorded" lets JetStream forget the event, "sent" stops a resend.
    # `shared.database` opens SQLite with synchronous=NORMAL (WAL synced at checkpoints only): after a power loss
    # the last commits could be gone, so notices acknowledged to JetStream lost and notices marked sent sent
    # again — the at-least-once window of docs/notifier.md widened from one notice to many. FULL syncs the WAL at
    # each commit (measured: ~0.8 ms of CPU per notice), so that window stays one notice, whatever stops the machine.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class Outbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        if engine.dialect.name == "sqlite" and not event.contains(engine.sync_engine, "connect", _sync_every_commit):
            event.listen(engine.sync_engine, "connect", _sync_every_commit)
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Reads before a write (the recipient's facts) take no SQLite lock: a WAL snapshot is enough, the write
        # checks the facts again in its own statement.
        self._reader = read_only(engine)
        # SQLite has one writer at a time, and its busy handler waits by sleeping (up to 100 ms a try): queue this
        # process's writers (the consumers and the dispatcher write concurrently) on a lock instead.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._statements: dict[tuple[Any, ...], Any] = {}
        self.group: CommitGroup[_Write, bool] = CommitGroup("notifier-outbox", self._write_together, self._write_alone)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._sqlite_writer or nullcontext():
            async with self.sessions.begin() as session:
                yield session

    @asynccontextmanager
    async def _writing_core(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a bare connection: the hot paths (record a notice, its outcome) need no ORM."""
        async with self._sqlite_writer or nullcontext():
            async with self.engine.begin() as connection:
                yield connection

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
        settles: SettledRisk | None = None,
    ) -> bool:
        """Store the notice `compose` builds, unless one with this key exists. True when this call stored it.

        `compose` (templates, a PDF letter: slow) runs before the write transaction, on facts read (one query)
        without holding SQLite's single writer; the transaction then stores the composed notice in one statement
        only if the key is still free and the facts still hold (a concurrent flag or follow-up changes the route,
        issue 5), composing again otherwise. The first attempt composes on the facts of almost every notice — a
        new key, an address never flagged, nothing counted against its limit — without reading them (issue 12:
        one query and one transaction less per notice); when they do not hold, the statement stores nothing and
        the next attempt reads them. `settles` clears the file-at-risk the notice answers in that same
        transaction. A notice composed as never to go out is stored without its personal links."""
        compose = _stored_as_composed(compose)

        async def read_facts() -> RecipientFacts | None:
            async with self._reader.connect() as connection:
                return await self._facts(connection, notification_key, address, counted)

        for attempt in range(COMPOSE_ATTEMPTS):
            facts = USUAL_FACTS if attempt == 0 else await read_facts()
            if facts is None:
                return False
            try:
                values = compose(facts)
            except Exception:
                # Composed before knowing whether the notice is recorded: a redelivered event whose template has
                # broken since must find its notice recorded, not fail (and be dead-lettered) on the template.
                if attempt == 0 and await read_facts() is None:
                    return False
                raise
            write = _Write(notification_key, address, values, counted, facts, settles)
            if await (self.group.submit(write) if in_batched_delivery() else self._write_alone(write)):
                return True
            # Nothing stored: the key was taken meanwhile (the next read says so) or the facts changed.
        # The facts kept changing under us: compose within the transaction, slow but correct.
        async with self._writing_core() as connection:
            await self._lock_recipient(connection, address, counted)
            facts = await self._facts(connection, notification_key, address, counted)
            if facts is None:
                return False
            statement = self._insert(Notice.__table__).values(notification_key=notification_key, **compose(facts))
            stored = bool((await connection.execute(
                statement.on_conflict_do_nothing(index_elements=["notification_key"]))).rowcount)
            if stored:
                await self._clear_settled(connection, settles)
            return stored

    async def _write_alone(self, write: _Write) -> bool:
        async with self._writing_core() as connection:
            return await self._write(connection, write)

    async def _write_together(self, writes: Sequence[_Write]) -> list[bool]:
        """A batch's notices in one transaction; the files-at-risk they settle cleared in one statement."""
        async with self._writing_core() as connection:
            stored = [await self._write(connection, write, clear=False) for write in writes]
            settled = [write.settles for write, done in zip(writes, stored) if done and write.settles is not None]
            if settled:
                await connection.execute(_CLEARING, [{"number": risk.complaint_number, "kind": risk.deadline_kind,
                                                      "at": risk.at} for risk in settled])
            return stored

    async def _write(self, connection: AsyncConnection, write: _Write, *, clear: bool = True) -> bool:
        await self._lock_recipient(connection, write.address, write.counted)
        if await self._store_if_unchanged(connection, write.notification_key, write.values, write.address,
                                          write.counted, write.facts):
            if clear:
                await self._clear_settled(connection, write.settles)
            return True
        return False

    @staticmethod
    def _fact_parameters(notification_key: str, address: str | None, counted: CountedNotices | None) -> dict[str, Any]:
        parameters: dict[str, Any] = {"key": notification_key}
        if address:
            parameters["address"] = address.lower()
        if address and counted is not None:
            parameters.update(limit_key=counted.limit_key, kind=counted.kind, since=counted.since)
        return parameters

    def _statement(self, shape: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The statement of this shape, built once: per notice only its parameters change (building and hashing a
        statement of thirty parameters cost as much as running it)."""
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._statements[shape] = build()
        return statement

    @staticmethod
    def _fact_columns(address: bool, counted: bool) -> list[Any]:
        """Whether the key is recorded, the address's flag, the count of notices against its limit (parameters
        `key`, `address`, `limit_key`, `kind`, `since`)."""
        columns: list[Any] = [select(Notice.id).where(Notice.notification_key == bindparam("key")).exists()]
        if address:
            columns.append(select(AddressFlag.reason).where(AddressFlag.address == bindparam("address"))
                           .scalar_subquery())
            if counted:
                columns.append(select(func.count(Notice.id)).where(
                    Notice.limit_key == bindparam("limit_key"),
                    Notice.notice_kind == bindparam("kind"),
                    Notice.created_at >= bindparam("since"),
                    Notice.status != NoticeStatus.SUPPRESSED,
                ).scalar_subquery())
        return columns

    async def _facts(self, connection: AsyncConnection, notification_key: str, address: str | None,
                     counted: CountedNotices | None) -> RecipientFacts | None:
        """The recipient's facts, or None when a notice with this key is already recorded: one query."""
        shape = ("facts", bool(address), counted is not None)
        statement = self._statement(shape, lambda: select(*self._fact_columns(*shape[1:])))
        row = (await connection.execute(statement,
                                        self._fact_parameters(notification_key, address, counted))).one()
        if row[0]:
            return None
        flag = row[1] if address else None
        recent = int(row[2] or 0) if address and counted is not None else 0
        return RecipientFacts(flag, recent)

    async def _store_if_unchanged(self, connection: AsyncConnection, notification_key: str, values: dict[str, Any],
                                  address: str | None, counted: CountedNotices | None, facts: RecipientFacts) -> bool:
        """INSERT ... SELECT the composed notice WHERE its key is free and the recipient's facts are those it was
        composed on: the check and the write in one statement. True when stored."""
        names = ("notification_key", *values)
        shape = ("store", names, bool(address), counted is not None)

        def build() -> Any:
            table = Notice.__table__
            # Typed: PostgreSQL must know the type of a bare parameter in a SELECT list.
            selected = select(*(bindparam(f"v_{name}", type_=table.c[name].type) for name in names))
            known, *recipient = self._fact_columns(bool(address), counted is not None)
            conditions = [~known]
            if recipient:
                conditions.append(recipient[0].is_not_distinct_from(
                    bindparam("known_flag", type_=AddressFlag.reason.type)))
            if len(recipient) > 1:
                conditions.append(recipient[1] == bindparam("known_recent"))
            statement = self._insert(table).from_select(list(names), selected.where(and_(*conditions)))
            return statement.on_conflict_do_nothing(index_elements=["notification_key"])

        parameters = self._fact_parameters(notification_key, address, counted)
        parameters.update({f"v_{name}": value for name, value in zip(names, (notification_key, *values.values()))},
                          known_flag=facts.flagged_reason, known_recent=facts.recent)
        return bool((await connection.execute(self._statement(shape, build), parameters)).rowcount)

    @staticmethod
    async def _clear_settled(connection: AsyncConnection, settles: SettledRisk | None) -> None:
        if settles is not None:
            await connection.execute(_CLEARING, {"number": settles.complaint_number, "kind": settles.deadline_kind,
                                                 "at": settles.at})

    async def _lock_recipient(self, connection: AsyncConnection, address: str | None,
                              counted: CountedNotices | None) -> None:
        """PostgreSQL: hold the counted key's advisory lock until the transaction ends, when a limit is counted."""
        if address and counted is not None and self.engine.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": recipient_lock_key(counted.limit_key)})

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

    async def release(self, notice: Notice) -> None:
        """Give a claimed notice back, unless its lease already ran out and another relay holds it now (one erased
        meanwhile is withdrawn instead: `_settled`)."""
        async with self._writing() as session:
            await session.execute(
                update(Notice)
                .where(Notice.id == notice.id, Notice.status == NoticeStatus.SENDING,
                       Notice.lease_until == notice.lease_until)
                .values(lease_until=None, **_settled(NoticeStatus.PENDING, Notice.status_reason))
            )

    async def mark_sent(self, notice: Notice, now: datetime) -> bool:
        """Record the relay's acceptance; the notice's personal links (`citizen_link.redacted` of the notice as
        claimed) are removed in the same statement, so no sent notice keeps one — but only from texts still as they
        were claimed: an erasure that blanked the notice while it was being sent stays blanked (`_unless_erased`)
        and keeps its reason. Returns whether it was so erased (its outcome is then reported without what the
        dispatcher still holds of the recipient: `dispatcher.erased_outcome`).
        The statement is built once per shape (the columns that lose links, those that were empty): per notice only
        its parameters change."""
        read = _as_claimed(notice)
        without_links = redacted(*read.values())
        empty = tuple(column for column in without_links if read[column] is None)

        def build() -> Any:
            table = Notice.__table__
            # Named apart from the columns: a parameter named after a column would also be read as its SET value.
            read_as = {column: None if column in empty else bindparam(f"read_{column}", type_=table.c[column].type)
                       for column in without_links}
            new_as = {column: bindparam(f"new_{column}", type_=table.c[column].type) for column in without_links}
            return update(Notice).where(Notice.id == bindparam("sent_id")).values(
                status=NoticeStatus.SENT, sent_at=bindparam("sent_moment", type_=table.c.sent_at.type),
                lease_until=None, attempts=Notice.attempts + 1,
                status_reason=case((_ERASED, Notice.status_reason), else_=None),
                **_unless_erased(read_as, new_as)).returning(Notice.status_reason)

        parameters: dict[str, Any] = {"sent_id": notice.id, "sent_moment": now}
        parameters.update({f"read_{column}": read[column] for column in without_links if column not in empty})
        parameters.update({f"new_{column}": value for column, value in without_links.items()})
        statement = self._statement(("sent", tuple(without_links), empty), build)
        async with self._writing_core() as connection:
            return _was_erased(await connection.execute(statement, parameters))

    async def mark_retry(self, notice_id: int, next_attempt_at: datetime, error: str) -> bool:
        """Put the notice back in the queue for `next_attempt_at`; returns whether it was erased meanwhile (then it
        is withdrawn instead: `_settled`)."""
        async with self._writing_core() as connection:
            return _was_erased(await connection.execute(
                update(Notice).where(Notice.id == notice_id).values(
                    next_attempt_at=next_attempt_at, lease_until=None, attempts=Notice.attempts + 1,
                    **_settled(NoticeStatus.PENDING, error)).returning(Notice.status_reason)))

    async def mark_failed(self, notice_id: int, reason: str) -> bool:
        """Fail the notice for good, and remove its personal links from what is kept (read in the same transaction:
        a bounce may fail a notice the caller did not claim). Returns whether the notice was erased: then it keeps
        its status and reason (one being sent is withdrawn: `_settled`), and no failure is to be reported."""
        async with self._writing_core() as connection:
            without_links = await self._without_links(connection, notice_id)
            return _was_erased(await connection.execute(update(Notice).where(Notice.id == notice_id).values(
                lease_until=None, outcome_published=case((_ERASED, Notice.outcome_published), else_=False),
                **_settled(NoticeStatus.FAILED, reason), **without_links).returning(Notice.status_reason)))

    @staticmethod
    async def _without_links(connection: AsyncConnection, notice_id: int,
                             *conditions: Any) -> dict[str, Any]:
        """The link-free columns of a notice read in this transaction, written only where the row still holds what
        was read (on PostgreSQL's READ COMMITTED an erasure may commit between this read and the update)."""
        row = (await connection.execute(
            select(*(getattr(Notice, column) for column in _LINK_COLUMNS))
            .where(Notice.id == notice_id, *conditions))).first()
        if row is None:
            return {}
        read = dict(zip(_LINK_COLUMNS, row, strict=True))
        return _unless_erased(read, redacted(*read.values()))

    async def mark_published(self, notice_ids: Sequence[int]) -> None:
        async with self._writing_core() as connection:
            await connection.execute(update(Notice).where(Notice.id.in_(notice_ids)).values(outcome_published=True))

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

    def _flag(self, address: str, reason: str, notification_key: str | None, now: datetime) -> Any:
        """The statement that flags an address (a first flag stays: an address flagged is flagged)."""
        return self._insert(AddressFlag.__table__).values(
            address=address.lower(), reason=reason, flagged_at=now, notification_key=notification_key
        ).on_conflict_do_nothing(index_elements=["address"])

    async def flag_address(self, address: str, reason: str, notification_key: str | None, now: datetime) -> None:
        async with self._writing() as session:
            await session.execute(self._flag(address, reason, notification_key, now))

    async def flag_recipient(self, notice_id: int, reason: str, now: datetime) -> bool:
        """Flag the address a notice went to (refused at RCPT TO, or bounced), read from the notice under its row lock
        in the same transaction: a file erased meanwhile has no address left to flag, and an erasure that comes
        after waits for this commit and then deletes the flag with the file's others (`privacy.NotifierPrivacy`).
        True when the address is flagged (now or before)."""
        async with self._writing_core() as connection:
            row = (await connection.execute(select(Notice.recipient, Notice.status_reason, Notice.notification_key)
                                            .where(Notice.id == notice_id).with_for_update())).first()
            if row is None or not row.recipient or row.status_reason == ERASED_REASON:
                return False
            await connection.execute(self._flag(row.recipient, reason, row.notification_key, now))
            return True

    async def flagged_addresses(self) -> list[AddressFlag]:
        async with self.sessions() as session:
            return list((await session.scalars(select(AddressFlag).order_by(AddressFlag.flagged_at))).all())

    async def recipient_facts(self, address: str | None) -> RecipientFacts:
        """The address's flag as `record` would read it (nothing counted): a preview routes with it, read only."""
        if not address:
            return RecipientFacts(None, 0)
        async with self._reader.connect() as connection:
            flag = (await connection.execute(
                select(AddressFlag.reason).where(AddressFlag.address == address.lower()))).scalar_one_or_none()
        return RecipientFacts(flag, 0)

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
        """Record a letter as printed and posted; a letter that carried a personal link keeps its text without it,
        and no PDF (to post it again, staff issue a new link: `citizen_link.py`)."""
        queued = (Notice.id == notice_id, Notice.channel == NoticeChannel.LETTER, Notice.status == NoticeStatus.QUEUED)
        async with self._writing_core() as connection:
            without_links = await self._without_links(connection, notice_id, *queued[1:])
            result = await connection.execute(
                update(Notice)
                .where(*queued)
                # The running notifier reports the posted letter as sent (the registry records the acknowledgment).
                .values(status=NoticeStatus.PRINTED, printed_by=printed_by, sent_at=now, outcome_published=False,
                        **without_links)
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
        async with self._writing_core() as connection:
            await self._clear_settled(connection, SettledRisk(complaint_number, deadline_kind, now))

    async def open_risks(self) -> list[FileAtRisk]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(FileAtRisk)
                .where(FileAtRisk.cleared_at.is_(None))
                .order_by(FileAtRisk.handler_email, FileAtRisk.due, FileAtRisk.complaint_number)
            )
            return list(rows.all())


# The columns a personal link can be in, in the order `citizen_link.redacted` takes them.
_LINK_COLUMNS = ("body_text", "body_html", "language", "letter_pdf")


def _as_claimed(notice: Notice) -> dict[str, Any]:
    return {column: getattr(notice, column) for column in _LINK_COLUMNS}


# A notice blanked by an erasure (`privacy.NotifierPrivacy`); NULL for a notice without a reason, read as false.
_ERASED = Notice.status_reason == ERASED_REASON


def _settled(status: NoticeStatus, reason: Any) -> dict[str, Any]:
    """The status and reason a relay's outcome writes, as expressions evaluated on the row as it is when written: an
    erasure may commit while the relay talks (it withdraws only notices not yet claimed). An erased notice keeps its
    reason (the SMTP reply may quote the address that was erased) and, if it was being sent, is withdrawn
    (`suppressed`): never back in the queue with a blank recipient, never a failure reported for an erased file."""
    withdrawn = case((Notice.status == NoticeStatus.SENDING, NoticeStatus.SUPPRESSED.value), else_=Notice.status)
    return {"status": case((_ERASED, withdrawn), else_=status.value),
            "status_reason": case((_ERASED, Notice.status_reason), else_=reason)}


def _was_erased(result: Any) -> bool:
    """Whether the row an outcome's UPDATE wrote (its RETURNING status_reason) is an erased notice's."""
    row = result.first()
    return row is not None and row[0] == ERASED_REASON


def _unless_erased(read: dict[str, Any], without_links: dict[str, Any]) -> dict[str, Any]:
    """Each link-free column as an expression that keeps the column as it is when it no longer holds what was read:
    a notice erased meanwhile (`privacy.NotifierPrivacy`) is never written back with its old text."""
    values: dict[str, Any] = {}
    for column, replacement in without_links.items():
        current, before = getattr(Notice, column), read[column]
        unchanged = current.is_(None) if before is None else current == before
        values[column] = case((unchanged, replacement), else_=current)
    return values
