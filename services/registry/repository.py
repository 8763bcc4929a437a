"""Database adapter of the registry: transactions over the schema of `models.py`, nothing else.

Handlers (`handlers/`) change the register through `unit_of_work.UnitOfWork`, one `transaction()` per event or staff
action, and call the small methods of `Transaction`; everything they write, including the events to publish (the
outbox), commits or rolls back together. `RegistryStore`'s own methods are the read-only queries of the staff views.

Numbers are gap-free because the year's counter is incremented inside the registering transaction, in one statement
(`INSERT ... VALUES (year, 1) ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last`): the row lock (or,
for a year's first number, the unique index) serialises concurrent registrations on PostgreSQL (`BEGIN IMMEDIATE`
does on SQLite), and a transaction that fails afterwards (for instance on the unique `message_key` when two processes
registered the same message) rolls its increment back with it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Date,
    Integer,
    Interval,
    Select,
    Text,
    and_,
    case,
    cast,
    column,
    delete,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
    type_coerce,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from services.registry.access.roles import VisibilityScope
from services.registry.models import (
    CaseParty,
    ChangeLogEntry,
    Complaint,
    ComplaintLink,
    ComplaintMerge,
    ComplaintNote,
    DeadlineAlertRecord,
    HeldMessage,
    NumberCounter,
    OutboxEvent,
    SavedSearch,
    ThreadMessage,
)
from services.registry.numbering import NumberFormat
from services.registry.workflow import TERMINAL_STATUSES, Status
from shared.database import read_only, upgrade_to_head
from shared.events import Event

__all__ = [
    "SORTS",
    "ComplaintFile",
    "ComplaintFilter",
    "DeadlineOverview",
    "FileExtras",
    "HandlerCounts",
    "LinkedFile",
    "IndicatorGroups",
    "IntegrityError",
    "RegistryStore",
    "Transaction",
    "UtcOffsets",
    "migrate",
    "normalise_message_id",
]


RowT = TypeVar("RowT")


def locking(query: Select[Any]) -> Select[Any]:
    """`query` with `FOR UPDATE` (PostgreSQL; SQLite's writer already excludes others), its rows read afresh even
    when the session holds them: a look-ahead may have loaded the row earlier in the batch, before another process
    committed a change to it (issue 12). Autoflush writes this session's own pending changes first."""
    return query.with_for_update().execution_options(populate_existing=True)

_MESSAGE_KEYS = "message_keys"


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


# SQLite's FTS5 trigram index of the searched columns (migration 0004), when the SQLite library could build it,
# and the most candidates a search reads from it (see `list_complaints`).
FTS_TABLE = table("complaints_fts", column("rowid"))
FTS_CANDIDATES_MAX = 2000

# Bounds of what a saved search keeps (the query is the list's query string, already bounded by the page).
SAVED_SEARCH_NAME_MAX = 200
SAVED_SEARCH_QUERY_MAX = 4000


def _fts_candidates(fragment: str) -> Any:
    """The ids of the complaints whose subject, name or email contain `fragment` in any case: a superset of the `LIKE`
    of `_text_matches` (the tokenizer folds case in Unicode, SQLite's `lower` only in ASCII) found by the index."""
    phrase = '"' + fragment.lower().replace('"', '""') + '"'  # an FTS5 string: every character literal
    return select(FTS_TABLE.c.rowid).where(literal_column(FTS_TABLE.name).op("MATCH")(phrase))


def _sort_text(value: str) -> str:
    """"Énergie" next to "energie", before "Mes": the base letters, case-folded."""
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)).casefold()


def escape_like(text: str) -> str:
    """The text matched literally by LIKE ... ESCAPE '\\' (a `%` or `_` typed by staff is not a wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# How the staff list may be sorted: by number (the register's order), date received, answer deadline or status.
SORTS = ("number", "received", "answer_due", "status")


@dataclass(frozen=True)
class ComplaintFilter:
    """Filters of the staff list (API, CLI, back office).

    `handler`: None any, "" the unassigned files. `screening_pending`: only files whose screening staff have not
    decided yet (False: no filter). `scope`: what the person listing may see (`VisibilityScope`, applied in SQL to
    the list, its count and its text search alike); None: no restriction (the command line, run by the operator).
    """

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
    channel: str | None = None
    theme: str | None = None
    handler: str | None = None
    screening_pending: bool = False
    sender_verdict: str | None = None
    data_protection: bool | None = None
    scope: VisibilityScope | None = None
    sort: str = "number"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}; expected one of: {', '.join(SORTS)}")


def scope_condition(entity: Any, scope: VisibilityScope, dialect: str = "postgresql") -> Any | None:
    """The rows `scope` admits, as SQL (None: every row), mirroring `VisibilityScope.admits`.

    Excluding data-protection files keeps nearly every row: written `data_protection IS NOT true`, a form no
    planner answers with the data_protection index (SQLite's, without statistics, took `NOT data_protection` for an
    equality and walked most of the register through that index, sorting it for any other order); only a list of
    data-protection files (`= true`, a small share) should use that index (migration 0010). The column is NOT NULL:
    both forms select the same rows.

    A staff member's services admit most of the register too. On SQLite, `service_concerned IN (...) OR
    service_concerned IS NULL` is answered by both lookups of the service index (MULTI-INDEX OR), and the rows found
    (some 590,000 of 1,000,000 in bench/backoffice) are then sorted for a page of 50: 1.8 s. Written
    `coalesce(service_concerned IN (...), 1)` — the same rows: NULL IN (...) is NULL, so a file of no service is
    admitted, and any other value is in the list or not — no index answers it, and SQLite walks the list's order
    and filters. PostgreSQL keeps the plain form: the expression hides its selectivity, and it then scanned and sorted
    the whole table (page 200: 841 ms instead of 6 ms)."""
    if scope.ordinary == "all":
        ordinary: Any = true()
    elif scope.ordinary == "services" and not scope.services:
        ordinary = entity.service_concerned.is_(None)
    elif scope.ordinary == "services" and dialect == "sqlite":
        ordinary = func.coalesce(entity.service_concerned.in_(list(scope.services)), 1) == 1
    elif scope.ordinary == "services":
        ordinary = or_(entity.service_concerned.in_(list(scope.services)), entity.service_concerned.is_(None))
    else:
        ordinary = false()
    if scope.data_protection:
        if scope.ordinary == "all":
            return None
        if scope.ordinary == "none":
            return entity.data_protection == true()
        return or_(entity.data_protection == true(), ordinary)
    excluded = entity.data_protection.is_not(true())
    if scope.ordinary == "all":
        return excluded
    return and_(excluded, ordinary)


def _order(entity: Any, criteria: ComplaintFilter) -> list[Any]:
    """The list's order: a total one (ties broken by id), the same in the search window and around it."""
    keys = {
        "number": [entity.year, entity.sequence],
        "received": [entity.received_at, entity.id],
        "answer_due": [entity.answer_due, entity.id],
        "status": [entity.status, entity.year, entity.sequence],
    }[criteria.sort]
    return [key.desc() if criteria.descending else key.asc() for key in keys]


@dataclass(frozen=True)
class LinkedFile:
    """A file linked to another: its number, and who linked them when (the other file's content stays there)."""

    number: str
    linked_by: str
    linked_at: datetime


@dataclass(frozen=True)
class FileExtras:
    """What the back office adds to a file: staff's notes, linked files, merges (`views.complaint_file`)."""

    notes: list[ComplaintNote]
    links: list[LinkedFile]
    merged_from: list[str]  # numbers of the files merged into this one (merges not undone)
    merges: list[ComplaintMerge]  # every merge this file took part in, either side, undone ones too


class ComplaintFile(tuple):  # type: ignore[type-arg]
    """`RegistryStore.complaint_file`: unpacks as (complaint, thread, changes, parties) as it always did; the back
    office's additions ride along as `.extras` (`views.complaint_file(*found, found.extras)`)."""

    extras: FileExtras

    def __new__(cls, complaint: Complaint, thread: list[ThreadMessage], changes: list[ChangeLogEntry],
                parties: list[str], extras: FileExtras) -> ComplaintFile:
        record = super().__new__(cls, (complaint, thread, changes, parties))
        record.extras = extras
        return record


@dataclass(frozen=True)
class HandlerCounts:
    """How many of one handler's files (None: unassigned) are overdue, due today, due later this week."""

    handler: str | None
    overdue: int = 0
    due_today: int = 0
    due_this_week: int = 0


@dataclass(frozen=True)
class DeadlineOverview:
    """The deadlines dashboard (the digest mail's data): open files by their earliest open deadline, each list in
    due order and cut at the overview's limit (the counts are not cut)."""

    today: date
    week_end: date
    overdue: list[Complaint]
    due_today: list[Complaint]
    due_this_week: list[Complaint]
    by_handler: list[HandlerCounts]
    # number -> (deadline kind "acknowledgment" or "answer", due date) of every file listed
    deadlines: dict[str, tuple[str, date]]


# Statuses after which no deadline runs any more: answered, or ended (closed, inadmissible, redirected, withdrawn).
FINAL_STATUSES = frozenset({Status.ANSWERED.value, *(s.value for s in TERMINAL_STATUSES)})


@dataclass(frozen=True)
class UtcOffsets:
    """A time zone's UTC offset, in seconds, as a step function: `first` before the first change, then the offset
    of each `(instant, offset)` change from its instant on. Lets SQL take the local date of a UTC timestamp the way
    `zoneinfo` does, on SQLite (no time zones) as on PostgreSQL. Exact for the instants of the window it was
    computed for (`reports.utc_offsets`); outside it, within a day of the truth."""

    first: int
    changes: tuple[tuple[datetime, int], ...] = ()


@dataclass(frozen=True)
class IndicatorGroups:
    """The register counted and grouped by the database for the annual indicators of a year (`reports.py` turns
    them into the figures of `indicators.annual_indicators`; "local" dates are in the service's time zone)."""

    # Received in the year: (channel, kind, service, theme, admissibility, reasons JSON if inadmissible,
    # status if redirected or withdrawn, redirected_to, count).
    received: list[tuple[Any, ...]]
    # Ended in the year (local date of `closed_at`) with an outcome: (outcome, outcome category, count).
    outcomes: list[tuple[Any, ...]]
    # The same complaints when they have improvement actions: (number, recommendations JSON, data-protection flag),
    # in register order.
    actions: list[tuple[Any, ...]]
    # Answered in the year (local date): (calendar days from the legal start, count).
    handling_days: list[tuple[Any, ...]]
    # Received by the period end and not ended by then: (received in the year, count).
    open_at_end: list[tuple[Any, ...]]
    # Deadlines falling due from 1 January to the period end: (due, met).
    acknowledgment: tuple[int, int]
    answer: tuple[int, int]


def _local_date(column: Any, offsets: UtcOffsets, dialect: str) -> Any:
    """The local date of a UTC timestamp column, in SQL (NULL stays NULL)."""
    shift: Any = literal(f"{offsets.first:+d} seconds")
    if offsets.changes:
        steps, previous = [], offsets.first
        for instant, offset in offsets.changes:
            steps.append((column < instant, f"{previous:+d} seconds"))
            previous = offset
        shift = case(*steps, else_=literal(f"{previous:+d} seconds"))
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column) + cast(shift, Interval), Date)
    return type_coerce(func.date(column, shift), Date)


def _days_between(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return later - earlier  # date - date is an integer number of days
    return cast(func.round(func.julianday(later) - func.julianday(earlier)), Integer)


class Transaction:
    """One unit of work on the register."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Outbox rows to publish right after the commit: written by this transaction, or found again by a replay.
        self.pending_events: list[OutboxEvent] = []
        # Per year: the last number this transaction took, and the counter's value as the database has it.
        self._last_numbers: dict[int, int] = {}
        self._stored_numbers: dict[int, int] = {}
        # What a batch's look-ahead read for all its works at once (issue 12), by kind, then by key: each work takes
        # its own answer from here instead of querying (`UnitOfWork.run(..., ahead=...)`).
        self.read_ahead: dict[str, dict[Any, Any]] = {}
        self._written: list[object] = []  # every row staged or added, for `staged`

    # --- numbers ---------------------------------------------------------------------------------------------------
    async def next_sequence(self, year: int) -> int:
        """The year's next number. The transaction's first number of a year is one round trip (its first number
        creates the counter, the others increment it: PostgreSQL and SQLite >= 3.35 both take `ON CONFLICT ... DO
        UPDATE ... RETURNING`); from then on the transaction holds the counter (PostgreSQL's row lock, SQLite's
        write lock) until it ends, so its next numbers are counted here and written once by `settle`, before the
        commit: a batch of registrations costs one numbering statement, not one each (issue 12). A rollback undoes
        all of them together: the numbers stay gap-free."""
        last = self._last_numbers.get(year)
        if last is None:
            table = NumberCounter.__table__
            dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            next_number = (insert(table).values(year=year, last=1)
                           .on_conflict_do_update(index_elements=["year"], set_={"last": table.c.last + 1})
                           .returning(table.c.last))
            last = self._stored_numbers[year] = int((await self.session.execute(next_number)).scalar_one())
        else:
            last += 1
        self._last_numbers[year] = last
        return last

    async def settle(self) -> None:
        """Write what the transaction counted in memory (the years' last numbers), just before its commit."""
        table = NumberCounter.__table__
        for year, last in self._last_numbers.items():
            if last != self._stored_numbers[year]:
                await self.session.execute(update(table).where(table.c.year == year).values(last=last))
                self._stored_numbers[year] = last

    def staged(self, kind: type[RowT]) -> list[RowT]:
        """The rows of `kind` this transaction staged or added, inserted by a flush since or not yet (a batch's
        earlier registrations): what a look-up read before them (`read_ahead`) cannot know."""
        return [row for row in self._written if isinstance(row, kind)]

    # --- complaints ------------------------------------------------------------------------------------------------
    async def add(self, *rows: object) -> None:
        """Insert now (the rows get their ids)."""
        self.stage(*rows)
        await self.session.flush()

    def stage(self, *rows: object) -> None:
        """Insert at the next flush or at commit: one round trip for several rows."""
        self.session.add_all(rows)
        self._written.extend(rows)

    async def find_message_key(self, message_key: str) -> tuple[str, int] | None:
        """Where a message already is: ("complaint", id), ("thread", complaint id), ("held", id); one query, or
        none when the batch's look-ahead read it (`read_message_keys`).

        Of what is committed or flushed only (no autoflush: a batch's registrations are inserted together at its
        commit): a message twice in one batch breaks the unique key there, and each is then handled alone."""
        known = self.read_ahead.get(_MESSAGE_KEYS)
        if known is not None and message_key in known:
            return known.pop(message_key)  # taken once: a second lookup of the same key asks the database
        return (await self._places_of([message_key])).get(message_key)

    async def read_message_keys(self, message_keys: Iterable[str]) -> None:
        """Where each of these messages already is (None: nowhere), in one query, for `find_message_key`."""
        keys = list(dict.fromkeys(message_keys))
        if keys:
            places = await self._places_of(keys)
            self.read_ahead.setdefault(_MESSAGE_KEYS, {}).update({key: places.get(key) for key in keys})

    async def _places_of(self, message_keys: list[str]) -> dict[str, tuple[str, int]]:
        query = union_all(
            select(literal("complaint").label("place"), Complaint.id.label("ref"), Complaint.message_key).where(
                Complaint.message_key.in_(message_keys)),
            select(literal("thread"), ThreadMessage.complaint_id, ThreadMessage.message_key).where(
                ThreadMessage.message_key.in_(message_keys)),
            select(literal("held"), HeldMessage.id, HeldMessage.message_key).where(
                HeldMessage.message_key.in_(message_keys)),
        )
        with self.session.no_autoflush:
            rows = (await self.session.execute(query)).all()
        places: dict[str, tuple[str, int]] = {}
        # The registering message is also the first entry of its complaint's thread: the complaint wins.
        for place, ref, key in sorted(rows, key=lambda row: -("complaint", "thread", "held").index(row[0])):
            places[key] = (str(place), int(ref))
        return places

    async def complaint_by_number(self, number: str, *, for_update: bool = False) -> Complaint | None:
        query = select(Complaint).where(Complaint.number == number)
        return (await self.session.execute(locking(query) if for_update else query)).scalar_one_or_none()

    async def complaint_by_id(self, complaint_id: int, *, for_update: bool = False) -> Complaint:
        query = select(Complaint).where(Complaint.id == complaint_id)
        return (await self.session.execute(locking(query) if for_update else query)).scalar_one()

    async def complaints_by_numbers(self, numbers: Iterable[str]) -> list[Complaint]:
        wanted = list(dict.fromkeys(numbers))
        if not wanted:
            return []
        return list((await self.session.execute(select(Complaint).where(Complaint.number.in_(wanted)))).scalars())

    async def complaints_by_message_ids(self, message_ids: Iterable[str], *, direction: str | None = None
                                        ) -> list[Complaint]:
        """The complaints whose thread holds one of these Message-IDs (`direction` "out": only our own mail)."""
        wanted = [m for m in dict.fromkeys(message_ids) if m]
        if not wanted:
            return []
        in_thread = select(ThreadMessage.complaint_id).where(ThreadMessage.message_id.in_(wanted))
        if direction is not None:
            in_thread = in_thread.where(ThreadMessage.direction == direction)
        query = select(Complaint).where(Complaint.id.in_(in_thread))
        return list((await self.session.execute(query)).scalars())

    async def notices_by_message_id(self, message_id: str) -> list[tuple[str, str | None, str | None]]:
        """Our notices (outgoing thread entries) with this Message-ID: (case number, recipient, notice kind)."""
        if not message_id:
            return []
        query = (
            select(Complaint.number, ThreadMessage.recipient, ThreadMessage.notice_kind)
            .join(Complaint, Complaint.id == ThreadMessage.complaint_id)
            .where(ThreadMessage.message_id == message_id, ThreadMessage.direction == "out")
            .order_by(ThreadMessage.id)
        )
        return [(number, recipient, kind) for number, recipient, kind in (await self.session.execute(query)).all()]

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

    async def thread_messages_by_keys(self, *message_keys: str) -> dict[str, ThreadMessage]:
        """The thread entries filed under any of these keys, by key, in one query."""
        query = select(ThreadMessage).where(ThreadMessage.message_key.in_(message_keys))
        return {row.message_key: row for row in (await self.session.execute(query)).scalars()}

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
        the same event fails the transaction, and the unit of work's retry finds what was stored."""
        row = OutboxEvent(dedup_id=event.dedup_id(), subject=event.subject, payload=event.model_dump_json(),
                          created_at=utc_now())
        self.stage(row)
        self.pending_events.append(row)
        return row

    def republish(self, row: OutboxEvent) -> None:
        """Publish again, after this transaction, an event stored before (a replay sends the very same event)."""
        self.pending_events.append(row)

    async def outbox_by_dedup_id(self, dedup_id: str) -> OutboxEvent | None:
        query = select(OutboxEvent).where(OutboxEvent.dedup_id == dedup_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    # --- the back office's notes, links and merges ------------------------------------------------------------------
    async def note_by_request_key(self, request_key: str) -> ComplaintNote | None:
        query = select(ComplaintNote).where(ComplaintNote.request_key == request_key)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def link_between(self, first_id: int, second_id: int) -> ComplaintLink | None:
        low, high = sorted((first_id, second_id))
        query = select(ComplaintLink).where(ComplaintLink.first_id == low, ComplaintLink.second_id == high)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def delete_row(self, row: object) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def active_merge(self, *, source_id: int | None = None, target_id: int | None = None
                           ) -> list[ComplaintMerge]:
        """Merges not undone, of a source or into a target, oldest first."""
        query = select(ComplaintMerge).where(ComplaintMerge.undone_at.is_(None)).order_by(ComplaintMerge.id)
        if source_id is not None:
            query = query.where(ComplaintMerge.source_id == source_id)
        if target_id is not None:
            query = query.where(ComplaintMerge.target_id == target_id)
        return list((await self.session.execute(query.with_for_update())).scalars())

    async def move_thread(self, message_ids: Sequence[int], to_complaint_id: int) -> None:
        if message_ids:
            await self.session.execute(update(ThreadMessage).where(ThreadMessage.id.in_(list(message_ids)))
                                       .values(complaint_id=to_complaint_id))

    async def party_ids(self, complaint_id: int) -> dict[str, int]:
        rows = await self.session.execute(select(CaseParty.email, CaseParty.id)
                                          .where(CaseParty.complaint_id == complaint_id))
        return {email: party_id for email, party_id in rows}

    async def delete_parties(self, party_ids: Sequence[int]) -> None:
        if party_ids:
            await self.session.execute(delete(CaseParty).where(CaseParty.id.in_(list(party_ids))))

    async def file_extras(self, complaint_id: int) -> FileExtras:
        """Staff's notes on the file (oldest first), the files linked to it (by number), its merges."""
        notes = list((await self.session.execute(
            select(ComplaintNote).where(ComplaintNote.complaint_id == complaint_id)
            .order_by(ComplaintNote.created_at, ComplaintNote.id))).scalars())
        other = case((ComplaintLink.first_id == complaint_id, ComplaintLink.second_id), else_=ComplaintLink.first_id)
        links = [LinkedFile(number, by, at) for number, by, at in (await self.session.execute(
            select(Complaint.number, ComplaintLink.linked_by, ComplaintLink.linked_at)
            .join(Complaint, Complaint.id == other)
            .where(or_(ComplaintLink.first_id == complaint_id, ComplaintLink.second_id == complaint_id))
            .order_by(Complaint.year, Complaint.sequence))).all()]
        merges = list((await self.session.execute(
            select(ComplaintMerge).where(or_(ComplaintMerge.source_id == complaint_id,
                                             ComplaintMerge.target_id == complaint_id))
            .order_by(ComplaintMerge.id))).scalars())
        source_ids = [m.source_id for m in merges if m.target_id == complaint_id and m.undone_at is None]
        merged_from = list((await self.session.execute(
            select(Complaint.number).where(Complaint.id.in_(source_ids)).order_by(Complaint.year, Complaint.sequence)
        )).scalars()) if source_ids else []
        return FileExtras(notes=notes, links=links, merged_from=merged_from, merges=merges)

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
        self._writes = async_sessionmaker(engine, expire_on_commit=False)
        # The staff views' queries only read: on SQLite they take no write lock (`shared.database.read_only`).
        self._sessions = async_sessionmaker(read_only(engine), expire_on_commit=False)
        self._has_fts: bool | None = None

    async def _fts_available(self, session: AsyncSession) -> bool:
        if self._has_fts is None:
            self._has_fts = self.engine.dialect.name == "sqlite" and (await session.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": FTS_TABLE.name}
            )).first() is not None
        return self._has_fts

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work that writes (on SQLite it holds the write lock from its BEGIN)."""
        async with self._writes() as session, session.begin():
            tx = Transaction(session)
            yield tx
            await tx.settle()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Transaction]:
        """A unit of work that only reads (one consistent snapshot); the store's own queries and the read-only
        services beside it (the public pages' answers, exports) use it."""
        async with self._sessions() as session, session.begin():
            yield Transaction(session)

    async def complaint(self, number: str) -> Complaint | None:
        async with self.reading() as tx:
            return await tx.complaint_by_number(number)

    async def complaint_file(self, number: str) -> ComplaintFile | None:
        """The whole file: (complaint, thread, changes, parties), with `.extras` (notes, links, merges)."""
        async with self.reading() as tx:
            complaint = await tx.complaint_by_number(number)
            if complaint is None:
                return None
            thread = await tx.thread(complaint.id)
            changes = await tx.change_log(complaint.id)
            parties = sorted((await tx.party_emails([complaint.id]))[complaint.id])
            return ComplaintFile(complaint, thread, changes, parties, await tx.file_extras(complaint.id))

    def _filtered(self, entity: Any, criteria: ComplaintFilter) -> Select[Any]:
        """The criteria but the text, on the complaints table or on a subset of its rows."""
        query = select(entity)
        if criteria.scope is not None:
            admitted = scope_condition(entity, criteria.scope, self.engine.dialect.name)
            if admitted is not None:
                query = query.where(admitted)
        if criteria.status:
            query = query.where(entity.status == criteria.status)
        if criteria.kind:
            query = query.where(entity.kind == criteria.kind)
        if criteria.service:
            query = query.where(entity.service_concerned == criteria.service)
        if criteria.year:
            query = query.where(entity.year == criteria.year)
        if criteria.due_before:
            query = query.where(entity.answer_due <= criteria.due_before)
        if criteria.overdue_on:
            query = query.where(entity.answer_due < criteria.overdue_on,
                                entity.status.not_in(sorted(FINAL_STATUSES)))
        if criteria.channel:
            query = query.where(entity.channel == criteria.channel)
        if criteria.theme:
            query = query.where(entity.theme == criteria.theme)
        if criteria.handler == "":
            query = query.where(entity.handler.is_(None))
        elif criteria.handler is not None:
            query = query.where(entity.handler == criteria.handler)
        if criteria.screening_pending:
            query = query.where(entity.admissibility == "pending")
        if criteria.sender_verdict:
            query = query.where(entity.sender_verdict == criteria.sender_verdict)
        if criteria.data_protection is not None:
            query = query.where(entity.data_protection == (true() if criteria.data_protection else false()))
        return query

    async def _matching(self, session: AsyncSession, criteria: ComplaintFilter) -> tuple[Any, Select[Any]]:
        """(the rows to select from, the query of every complaint matching the criteria, text included)."""
        rows: Any = Complaint
        query = self._filtered(Complaint, criteria)
        if criteria.text and criteria.number_format.parse(criteria.text):
            return rows, query.where(Complaint.number == criteria.number_format.normalise(criteria.text))
        if criteria.text:
            pattern = f"%{escape_like(criteria.text.lower())}%"
            # SQLite has no trigram index of its own: its FTS5 table lists the rows to check for a fragment of
            # three characters or more (trigrams), and the same LIKE decides, so the results do not change. A
            # fragment found in very many rows is left to the scan in list order, which meets its matches
            # early, where reading and sorting every candidate would take longer. The candidates are
            # materialised first: else SQLite may prefer walking a filter's index in list order.
            if len(criteria.text) >= 3 and await self._fts_available(session):
                candidates = list((await session.execute(
                    _fts_candidates(criteria.text).limit(FTS_CANDIDATES_MAX + 1))).scalars())
                if len(candidates) <= FTS_CANDIDATES_MAX:
                    rows = aliased(Complaint, select(Complaint).where(Complaint.id.in_(candidates))
                                   .cte("fts_candidates").prefix_with("MATERIALIZED"))
                    query = self._filtered(rows, criteria)
            query = query.where(_text_matches(rows, pattern))
        return rows, query

    async def list_complaints(self, criteria: ComplaintFilter) -> list[Complaint]:
        def page(entity: Any, query: Select[Any], limit: int, offset: int = 0) -> Select[Any]:
            return query.order_by(*_order(entity, criteria)).limit(limit).offset(offset)

        async with self._sessions() as session:
            if criteria.text and not criteria.number_format.parse(criteria.text):
                pattern = f"%{escape_like(criteria.text.lower())}%"
                # A common word matches a large share of the register: among the first complaints in list order
                # the wanted matches are found at once, where the planner would fetch every match through the
                # trigram index and sort them. Exact: when the first window holds enough matches, no complaint
                # after it can be among the first ones (the order is total). The window is read in the list's
                # order, with the filters and the scope: a complaint the reader may not see is never in it.
                wanted = criteria.offset + criteria.limit
                window = aliased(Complaint, page(Complaint, self._filtered(Complaint, criteria),
                                                 SEARCH_WINDOW).subquery())
                recent = page(window, select(window).where(_text_matches(window, pattern)), wanted)
                found = list((await session.execute(recent)).scalars())
                if len(found) >= wanted:
                    return found[criteria.offset:]
            rows, query = await self._matching(session, criteria)
            return list((await session.execute(page(rows, query, criteria.limit, criteria.offset))).scalars())

    async def count_complaints(self, criteria: ComplaintFilter, at_most: int | None = None) -> int:
        """How many complaints the criteria select (limit and offset aside), within the same scope as the list; with
        `at_most`, no more than that: the database stops at the `at_most`-th match (`count(*)` of a subquery with
        `LIMIT`, in no order), where an exact count reads every match (on 1,000,000 complaints: 0.4-1.4 s for a
        staff member's register, 2-22 ms bounded to ten pages past the current one; docs/benchmarks.md)."""
        if at_most is not None and at_most < 0:
            raise ValueError("at_most is a number of rows, 0 or more")
        async with self._sessions() as session:
            _rows, query = await self._matching(session, criteria)
            query = query.order_by(None)
            if at_most is not None:
                query = query.limit(at_most)
            counted = select(func.count()).select_from(query.subquery())
            return int((await session.execute(counted)).scalar_one())

    # --- the deadlines dashboard -----------------------------------------------------------------------------------
    async def deadline_overview(self, today: date, scope: VisibilityScope | None, *, week_end: date,
                                limit: int = 500) -> DeadlineOverview:
        """Open files by their earliest open deadline (as `ComplaintState.open_deadlines` counts them: the
        acknowledgment until sent, the answer until given and not while the clock is paused): overdue (before
        `today`), due today, due later up to `week_end`; and the same counted by handler."""
        ack_open = Complaint.acknowledged_at.is_(None)
        answer_open = and_(Complaint.answered_at.is_(None), Complaint.status != Status.WAITING_FOR_CITIZEN.value)
        earliest = case(
            (and_(ack_open, answer_open),
             case((Complaint.acknowledgment_due <= Complaint.answer_due, Complaint.acknowledgment_due),
                  else_=Complaint.answer_due)),
            (ack_open, Complaint.acknowledgment_due),
            else_=Complaint.answer_due,
        )
        kind = case(
            (and_(ack_open, or_(~answer_open, Complaint.acknowledgment_due <= Complaint.answer_due)),
             literal("acknowledgment")),
            else_=literal("answer"),
        )
        conditions = [
            Complaint.status.not_in(sorted(FINAL_STATUSES)),
            # Each branch answered by its deadline's index.
            or_(and_(ack_open, Complaint.acknowledgment_due <= week_end),
                and_(answer_open, Complaint.answer_due <= week_end)),
        ]
        if scope is not None:
            admitted = scope_condition(Complaint, scope, self.engine.dialect.name)
            if admitted is not None:
                conditions.append(admitted)
        listed = select(Complaint, earliest.label("due"), kind.label("deadline_kind")).where(*conditions).subquery()
        entry = aliased(Complaint, listed)
        counted = select(Complaint.handler, earliest.label("due")).where(*conditions).subquery()
        counted_bucket = case((counted.c.due < today, literal("overdue")),
                              (counted.c.due == today, literal("due_today")), else_=literal("due_this_week"))
        lists: dict[str, list[Complaint]] = {}
        deadlines: dict[str, tuple[str, date]] = {}
        async with self._sessions() as session:
            for name, condition in (("overdue", listed.c.due < today), ("due_today", listed.c.due == today),
                                    ("due_this_week", and_(listed.c.due > today, listed.c.due <= week_end))):
                query = (select(entry, listed.c.due, listed.c.deadline_kind).where(condition)
                         .order_by(listed.c.due, entry.year, entry.sequence).limit(limit))
                lists[name] = []
                for complaint, due_on, deadline_kind in (await session.execute(query)).all():
                    lists[name].append(complaint)
                    deadlines[complaint.number] = (str(deadline_kind), due_on)
            totals = (await session.execute(
                select(counted.c.handler, counted_bucket.label("bucket"), func.count())
                .where(counted.c.due <= week_end).group_by(counted.c.handler, "bucket"))).all()
        per_handler: dict[str | None, dict[str, int]] = {}
        for handler, name, count in totals:
            per_handler.setdefault(handler, {})[str(name)] = int(count)
        by_handler = [HandlerCounts(handler, **per_handler[handler])
                      for handler in sorted(per_handler, key=lambda h: (h is None, h or ""))]
        return DeadlineOverview(today=today, week_end=week_end, overdue=lists["overdue"],
                                due_today=lists["due_today"], due_this_week=lists["due_this_week"],
                                by_handler=by_handler, deadlines=deadlines)

    # --- saved searches --------------------------------------------------------------------------------------------
    async def saved_searches(self, account_id: int) -> list[SavedSearch]:
        """The account's own saved searches and those others shared, by name (accents and case aside: the
        databases' own collations differ)."""
        query = (select(SavedSearch)
                 .where(or_(SavedSearch.owner_account_id == account_id, SavedSearch.shared == true())))
        async with self._sessions() as session:
            found = list((await session.execute(query)).scalars())
        return sorted(found, key=lambda search: (_sort_text(search.name), search.id))

    async def save_search(self, account_id: int, name: str, query: str, shared: bool) -> int:
        """Save a search under a name; the account's search of the same name is replaced. Returns its id."""
        name = " ".join(name.split())
        if not name:
            raise ValueError("a saved search needs a name")
        if len(name) > SAVED_SEARCH_NAME_MAX or len(query) > SAVED_SEARCH_QUERY_MAX:
            raise ValueError(f"a saved search has a name of at most {SAVED_SEARCH_NAME_MAX} characters and a query "
                             f"of at most {SAVED_SEARCH_QUERY_MAX}")
        async with self.transaction() as tx:
            existing = (await tx.session.execute(
                select(SavedSearch).where(SavedSearch.owner_account_id == account_id, SavedSearch.name == name)
                .with_for_update())).scalars().first()
            if existing is not None:
                existing.query, existing.shared = query, shared
                return existing.id
            search = SavedSearch(owner_account_id=account_id, name=name, query=query, shared=shared,
                                 created_at=utc_now())
            await tx.add(search)
            return search.id

    async def delete_search(self, account_id: int, search_id: int) -> bool:
        """Delete one of the account's own saved searches (a shared one of someone else stays); False if none."""
        async with self.transaction() as tx:
            result = await tx.session.execute(
                delete(SavedSearch).where(SavedSearch.id == search_id, SavedSearch.owner_account_id == account_id))
            return bool(result.rowcount)

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

    async def indicator_groups(self, year: int, period_end: date, offsets: UtcOffsets) -> IndicatorGroups:
        """Count and group in the database what the annual indicators of `year` need, up to `period_end`.
        `offsets` must be exact from two days before 1 January (or before `period_end`, if earlier) to three days
        after 31 December: a timestamp outside that window is far enough from every date compared with it."""
        start, end = date(year, 1, 1), date(year, 12, 31)
        dialect = self.engine.dialect.name
        window_start = datetime.combine(min(start, period_end), datetime.min.time(), timezone.utc) - timedelta(days=2)
        window_end = datetime.combine(end, datetime.min.time(), timezone.utc) + timedelta(days=3)

        def local(column: Any) -> Any:
            return _local_date(column, offsets, dialect)

        def by_index(*conditions: Any) -> Any:
            # SQLite: the complaints an index finds, read in id order; on a large register, reading them in the
            # index's order (random pages) took three times as long. PostgreSQL's bitmap scans do that already.
            if dialect == "postgresql":
                return and_(*conditions)
            return Complaint.id.in_(select(Complaint.id).where(*conditions))

        def in_year(column: Any) -> Any:
            # The range on the raw column lets the database use its index; the local date decides.
            return and_(by_index(column >= window_start, column < window_end), local(column).between(start, end))

        # Grouped by output names: PostgreSQL does not see two renderings of an expression with parameters as equal.
        reasons = case((Complaint.admissibility == "inadmissible", cast(Complaint.admissibility_reasons, Text)))
        final_status = case((Complaint.status.in_([Status.REDIRECTED.value, Status.WITHDRAWN.value]),
                             Complaint.status))
        received_columns = (Complaint.channel, Complaint.kind, Complaint.service_concerned, Complaint.theme,
                            Complaint.admissibility, reasons.label("reasons"), final_status.label("final_status"),
                            Complaint.redirected_to)
        received = (select(*received_columns, func.count())
                    .where(by_index(Complaint.legal_start.between(start, end)))
                    .group_by(*received_columns[:5], "reasons", "final_status", Complaint.redirected_to))
        # Ended in the year with an outcome; a complaint with improvement actions is a group of its own.
        recommendations = cast(Complaint.recommendations, Text)
        acted = recommendations != "[]"
        outcome_columns = (Complaint.outcome, Complaint.outcome_category, case((acted, Complaint.year)).label("y"),
                           case((acted, Complaint.sequence)).label("s"), case((acted, Complaint.number)).label("n"),
                           case((acted, recommendations)).label("r"),
                           case((acted, Complaint.data_protection)).label("d"))
        outcomes = (select(*outcome_columns, func.count())
                    .where(in_year(Complaint.closed_at), Complaint.outcome.is_not(None))
                    .group_by(Complaint.outcome, Complaint.outcome_category, "y", "s", "n", "r", "d"))
        days = _days_between(local(Complaint.answered_at), Complaint.legal_start, dialect)
        handling = (select(days.label("days"), func.count()).where(in_year(Complaint.answered_at))
                    .group_by("days"))
        # Open at the period end: never ended, or ended after it. Two branches, each answered by an index; a
        # timestamp whose local date is after the period end is no earlier than the UTC day before it.
        received_by_end = Complaint.legal_start <= period_end
        ended_after = datetime.combine(period_end, datetime.min.time(), timezone.utc) - timedelta(days=1)
        still_open = union_all(
            select(Complaint.legal_start).where(by_index(Complaint.closed_at.is_(None)), received_by_end),
            select(Complaint.legal_start).where(by_index(Complaint.closed_at >= ended_after), received_by_end,
                                                local(Complaint.closed_at) > period_end),
        ).subquery()
        this_year = (still_open.c.legal_start >= start).label("this_year")
        open_at_end = select(this_year, func.count()).group_by("this_year")

        # Deadlines falling due in the period, both in one pass: (due, met) for each.
        ack_due = Complaint.acknowledgment_due.between(start, period_end)
        ack_met = local(Complaint.acknowledged_at) <= Complaint.acknowledgment_due
        answer_due = Complaint.answer_due.between(start, period_end)
        # Answered, or else ended (inadmissible, redirected, withdrawn), on or before the deadline.
        answer_met = func.coalesce(local(Complaint.answered_at), local(Complaint.closed_at)) <= Complaint.answer_due

        def tally(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        deadlines = select(tally(ack_due), tally(and_(ack_due, ack_met)), tally(answer_due),
                           tally(and_(answer_due, answer_met)))
        if dialect == "postgresql":
            deadlines = deadlines.where(or_(ack_due, answer_due))  # a BitmapOr of the two indexes
        else:
            deadlines = deadlines.where(Complaint.id.in_(union(select(Complaint.id).where(ack_due),
                                                               select(Complaint.id).where(answer_due))))
        async with self._sessions() as session:
            if dialect == "postgresql":
                # Seven statements, one snapshot (READ COMMITTED would take one per statement). SQLite's
                # transaction already reads one snapshot.
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

            async def rows(query: Any) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in await session.execute(query)]

            grouped_outcomes = await rows(outcomes)
            ack_count, ack_within, answer_count, answer_within = (int(value) for value in (await rows(deadlines))[0])
            return IndicatorGroups(
                received=await rows(received),
                outcomes=[(outcome, category, count) for outcome, category, *_acted, count in grouped_outcomes],
                actions=[(number, listed, protected) for _o, _c, _y, _s, number, listed, protected, _n in sorted(
                    (group for group in grouped_outcomes if group[4] is not None), key=lambda group: group[2:4])],
                handling_days=await rows(handling), open_at_end=await rows(open_at_end),
                acknowledgment=(ack_count, ack_within), answer=(answer_count, answer_within),
            )

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


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to head (concurrent starts take turns inside `upgrade_to_head`)."""
    await upgrade_to_head(engine, MIGRATIONS)
