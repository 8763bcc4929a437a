"""The audit trail: who read, downloaded, exported or changed what, when, from where and why (issue 13).

Every entry is chained to the previous one by a SHA-256 hash over a canonical encoding of all its fields
(`audit_chain`), so that altering, removing or inserting an entry shows in `AuditTrail.verify()` and
`ombudsdesk audit verify`, with the sequence of the first broken entry.

- **One chain under concurrent writers.** Sequences are gap-free: an append reads the head of the chain (the one row
  of `audit_head`: last sequence and hash) with `SELECT ... FOR UPDATE` and moves it in the same transaction as the
  insert, so several registry processes on one PostgreSQL take turns; on SQLite the write transaction's
  `BEGIN IMMEDIATE` (`shared.database.create_engine`) serialises them the same way.
- **Append-only.** This module has no update or delete. The database refuses them too: triggers of migration
  `0009_audit_trail` (PostgreSQL and SQLite) reject UPDATE, DELETE (and TRUNCATE on PostgreSQL) of `audit_trail`, and
  let `audit_head` move only one step forward, onto the entry just appended. Someone who can disable triggers (a
  database superuser) can still rewrite rows: the hashes then show it, unless the whole chain after the change is
  recomputed — against which the head printed by `ombudsdesk audit verify` can be kept elsewhere and compared later.
  *Erasure*: the data-protection work may need a controlled path to erase an entry's personal data (an IP, a user
  agent, a reason) at the end of its retention. That path does not exist yet; it would have to go through a
  migration-owned function that lifts the trigger for one statement and records the erasure as an entry of its own.
- **What it holds.** Who (account id, email, roles at the time), when (UTC), the action (vocabulary in
  `audit_chain.FIXED_ACTIONS`, plus `change.<command>` and `account.<...>`), the complaint number, the client's
  address (`X-Forwarded-For` believed only from `trusted_proxies`), the user agent, the reason given, and small
  `details` — bounded, and never the text of a message.
- **Failure closes.** `record_access` raises when the entry cannot be written: a page must not show a file whose
  reading went unrecorded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import Request
from sqlalchemy import func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.registry.access.audit_chain import (
    ACTOR_MAX,
    GENESIS,
    NUMBER_MAX,
    REASON_MAX,
    USER_AGENT_MAX,
    AuditRecord,
    ChainChecker,
    InvalidAction,
    Network,
    VerifyResult,
    bounded_details,
    canonical_json,
    check_action,
    client_ip,
    entry_hash,
    multi_line,
    one_line,
    reason_required,
    roles_text,
)
from services.registry.access.audit_models import HEAD_ID, AuditEntry, AuditHead
from services.registry.access.roles import Principal
from services.registry.models import Complaint
from shared.database import read_only
from shared.logging import get_logger
from shared.untrusted_text import csv_cell

__all__ = ["AuditEntry", "AuditFilter", "AuditHead", "AuditRecord", "AuditTrail", "InvalidAction", "VerifyResult",
           "reason_required", "record_access", "record_request"]

log = get_logger(__name__)

VERIFY_BATCH = 2000
EXPORT_MAX_ROWS = 100_000
CSV_COLUMNS = ("sequence", "at", "account_id", "actor", "roles", "action", "number", "ip", "user_agent", "reason",
               "details", "prev_hash", "hash")


# Entries are read as plain rows (no ORM identity map): a verification walks the whole trail.
ENTRY = AuditEntry.__table__
_FIELDS = tuple(ENTRY.c)


# The numbers of data-protection complaints, as the trail stores numbers (upper case: a case-number prefix may be
# configured in lower case). Uncorrelated, so that SQLite builds it once per query and PostgreSQL hashes it, rather
# than looking it up for each entry; `complaints.number` is never NULL, so NOT IN is exact.
_DATA_PROTECTION_NUMBERS = select(func.upper(Complaint.number)).where(Complaint.data_protection == true())


def _record(row: Any) -> AuditRecord:
    values = dict(row._mapping)
    values["details"] = dict(values["details"] or {})
    return AuditRecord(**values)


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page, the CLI and the export select. `account`: an account id, or an email (the actor);
    `action`: one action, or a family as `change.*` / `account.*`; `since` inclusive, `until` exclusive.
    `data_protection_files`: whether entries about a data-protection complaint (their `number` is one whose
    `complaints.data_protection` is true) are selected — only for a DPO (issue 13: "a DPO alone sees data-protection
    complaints"; the reasons given to read such a file may hold its details). The CLI, run by whoever runs the
    registry, selects everything."""

    number: str | None = None
    account: int | str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    data_protection_files: bool = True
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        # The forms the trail stores: numbers in upper case, emails in lower case (what people type may differ).
        object.__setattr__(self, "number", (self.number or "").strip().upper()[:NUMBER_MAX] or None)
        if isinstance(self.account, str):
            object.__setattr__(self, "account", self.account.strip().lower()[:ACTOR_MAX] or None)

    def describe(self) -> dict[str, Any]:
        """The filter as `details` of an `audit.view` / `audit.export` entry (paging left out, and the visibility of
        data-protection files, which follows from the roles the entry records)."""
        values = asdict(self)
        for key in ("limit", "offset", "data_protection_files"):
            values.pop(key)
        return {key: (value.isoformat() if isinstance(value, datetime) else value)
                for key, value in values.items() if value not in (None, "")}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AuditTrail:
    """Appends to, checks and reads the audit trail (at `request.app.state.audit` in the registry's API)."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utc_now,
                 trusted_proxies: Iterable[Network] = ()) -> None:
        self.engine = engine
        self.clock = clock
        # Proxies whose X-Forwarded-For is believed (none by default: the peer address is recorded).
        self.trusted_proxies = tuple(trusted_proxies)
        self._writes = async_sessionmaker(engine, expire_on_commit=False)
        reader = read_only(engine)
        if engine.dialect.name == "postgresql":
            # One snapshot for a whole verification or export (read in batches): appends made meanwhile are not
            # mistaken for entries beyond the head.
            reader = reader.execution_options(isolation_level="REPEATABLE READ")
        self._reads = async_sessionmaker(reader, expire_on_commit=False)
        # The last verification of this process: (when, result). A verification reads the whole trail (seconds per
        # hundred thousand entries), so the back office shows a recent one rather than running one per page view.
        self.last_verification: tuple[datetime, VerifyResult] | None = None

    # --- writing ---------------------------------------------------------------------------------------------------

    async def append(self, action: str, *, actor: str, account_id: int | None = None, roles: Iterable[str] = (),
                     number: str | None = None, ip: str | None = None, user_agent: str | None = None,
                     reason: str | None = None, details: Mapping[str, Any] | None = None) -> AuditRecord:
        """Add one entry at the end of the chain and return it as stored."""
        fields: dict[str, Any] = {
            "account_id": account_id,
            "actor": (one_line(actor, ACTOR_MAX) or "?").lower(),
            "roles": roles_text(roles),
            "action": check_action(action),
            "number": (one_line(number, NUMBER_MAX) or "").upper() or None,  # numbers are upper case
            "ip": one_line(ip, 64),
            "user_agent": one_line(user_agent, USER_AGENT_MAX),
            "reason": multi_line(reason, REASON_MAX),
            "details": bounded_details(details),
        }
        async with self._writes() as session, session.begin():
            head = (await session.execute(
                select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
            )).scalar_one_or_none()
            if head is None:
                raise RuntimeError("audit_head is missing: the registry's database is not migrated to 0009")
            # The time is taken under the lock, so entries are in time order as well as in sequence order.
            at = self.clock().astimezone(timezone.utc)
            sequence, prev_hash = head.sequence + 1, head.hash
            digest = entry_hash(sequence, prev_hash, at=at, **fields)
            session.add(AuditEntry(sequence=sequence, at=at, prev_hash=prev_hash, hash=digest, **fields))
            await session.flush()  # the entry first: PostgreSQL's head trigger checks the head lands on it
            await session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID)
                                  .values(sequence=sequence, hash=digest))
        return AuditRecord(sequence=sequence, at=at, prev_hash=prev_hash, hash=digest, **fields)

    # --- checking --------------------------------------------------------------------------------------------------

    async def head(self) -> tuple[int, str]:
        async with self._reads() as session, session.begin():
            row = (await session.execute(select(AuditHead.sequence, AuditHead.hash)
                                         .where(AuditHead.id == HEAD_ID))).first()
        return (row.sequence, row.hash) if row is not None else (0, GENESIS)

    async def verify(self) -> VerifyResult:
        """Check every entry from the first to the head, in batches, in one snapshot."""
        async with self._reads() as session, session.begin():
            row = (await session.execute(select(AuditHead.sequence, AuditHead.hash)
                                         .where(AuditHead.id == HEAD_ID))).first()
            if row is None:
                return VerifyResult(False, 0, 0, "head missing")
            checker = ChainChecker(row.sequence, row.hash)
            after = 0
            while not checker.broken:
                batch = (await session.execute(
                    select(*_FIELDS).where(AuditEntry.sequence > after).order_by(AuditEntry.sequence)
                    .limit(VERIFY_BATCH)
                )).all()
                for entry in batch:
                    if not checker.feed(_record(entry)):
                        break
                if len(batch) < VERIFY_BATCH:
                    break
                after = batch[-1].sequence
        result = checker.finish()
        self.last_verification = (self.clock(), result)
        return result

    async def recent_verification(self, max_age: timedelta) -> tuple[datetime, VerifyResult]:
        """The last verification if younger than `max_age`, else a new one."""
        last = self.last_verification
        if last is not None and self.clock() - last[0] <= max_age:
            return last
        result = await self.verify()
        assert self.last_verification is not None
        return self.last_verification[0], result

    async def entry(self, sequence: int) -> AuditRecord | None:
        async with self._reads() as session, session.begin():
            row = (await session.execute(select(*_FIELDS).where(AuditEntry.sequence == sequence))).first()
            return _record(row) if row is not None else None

    # --- reading ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _where(criteria: AuditFilter) -> list[Any]:
        conditions: list[Any] = []
        if criteria.number:
            conditions.append(AuditEntry.number == criteria.number)
        if isinstance(criteria.account, int) and not isinstance(criteria.account, bool):
            conditions.append(AuditEntry.account_id == criteria.account)
        elif isinstance(criteria.account, str):
            conditions.append(AuditEntry.actor == criteria.account)
        if criteria.action:
            family = criteria.action.removesuffix(".*")
            if criteria.action.endswith(".*") and family in ("change", "account"):
                conditions.append(AuditEntry.action.startswith(f"{family}.", autoescape=True))
            else:
                conditions.append(AuditEntry.action == criteria.action[:64])
        if criteria.since is not None:
            conditions.append(AuditEntry.at >= criteria.since)
        if criteria.until is not None:
            conditions.append(AuditEntry.at < criteria.until)
        if not criteria.data_protection_files:
            conditions.append(or_(AuditEntry.number.is_(None), AuditEntry.number.not_in(_DATA_PROTECTION_NUMBERS)))
        return conditions

    async def search(self, criteria: AuditFilter) -> list[AuditRecord]:
        """The newest entries first."""
        async with self._reads() as session, session.begin():
            rows = (await session.execute(
                select(*_FIELDS).where(*self._where(criteria)).order_by(AuditEntry.sequence.desc())
                .limit(max(criteria.limit, 0)).offset(max(criteria.offset, 0))
            )).all()
            return [_record(row) for row in rows]

    async def count(self, criteria: AuditFilter) -> int:
        async with self._reads() as session, session.begin():
            return int((await session.execute(
                select(func.count()).select_from(AuditEntry).where(*self._where(criteria))
            )).scalar_one())

    async def for_file(self, number: str, limit: int = 50, offset: int = 0) -> list[AuditRecord]:
        """Who read, downloaded or changed this file: the DPO's "who looked at this citizen's file?"."""
        return await self.search(AuditFilter(number=number, limit=limit, offset=offset))

    async def for_account(self, account: int | str, limit: int = 50, offset: int = 0) -> list[AuditRecord]:
        """What one person did: by account id, or by email."""
        return await self.search(AuditFilter(account=account, limit=limit, offset=offset))

    async def recent(self, limit: int = 50, offset: int = 0) -> list[AuditRecord]:
        return await self.search(AuditFilter(limit=limit, offset=offset))

    async def _ascending(self, criteria: AuditFilter, cap: int) -> AsyncIterator[AuditRecord]:
        async with self._reads() as session, session.begin():
            after, left = 0, cap
            while left > 0:
                rows = (await session.execute(
                    select(*_FIELDS).where(AuditEntry.sequence > after, *self._where(criteria))
                    .order_by(AuditEntry.sequence).limit(min(VERIFY_BATCH, left))
                )).all()
                for row in rows:
                    yield _record(row)
                if len(rows) < min(VERIFY_BATCH, left):
                    return
                left -= len(rows)
                after = rows[-1].sequence

    async def export_csv(self, criteria: AuditFilter | None = None, *, max_rows: int = EXPORT_MAX_ROWS) -> str:
        """The selected entries, oldest first, as CSV (RFC 4180) with every hashed field: anyone can recompute the
        hashes of a full export. A cell a spreadsheet would take for a formula is escaped (`csv_cell`)."""
        criteria = replace(criteria or AuditFilter(), limit=max_rows, offset=0)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        async for record in self._ascending(criteria, max_rows):
            writer.writerow([csv_cell(cell) for cell in csv_row(record)])
        return out.getvalue()


def csv_row(record: AuditRecord) -> Sequence[Any]:
    return (record.sequence, record.at.isoformat(timespec="microseconds"),
            "" if record.account_id is None else record.account_id, record.actor, record.roles, record.action,
            record.number or "", record.ip or "", record.user_agent or "", record.reason or "",
            canonical_json(record.details), record.prev_hash, record.hash)


# --- the request side --------------------------------------------------------------------------------------------

_warned_unwired = False


def _trail_of(request: Request) -> AuditTrail | None:
    global _warned_unwired
    trail = getattr(request.app.state, "audit", None)
    if trail is None and not _warned_unwired:
        _warned_unwired = True
        log.warning("audit_trail_not_wired", hint="set app.state.audit = AuditTrail(engine)")
    return trail


async def record_request(request: Request, action: str, *, actor: str, account_id: int | None = None,
                         roles: Iterable[str] = (), number: str | None = None, reason: str | None = None,
                         details: Mapping[str, Any] | None = None) -> AuditRecord | None:
    """Record an action of a request that has no `Principal` (a failed login: `actor` is the login typed)."""
    trail = _trail_of(request)
    if trail is None:
        return None
    peer = request.client.host if request.client is not None else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), trail.trusted_proxies)
    return await trail.append(action, actor=actor, account_id=account_id, roles=roles, number=number, ip=ip,
                              user_agent=request.headers.get("user-agent"), reason=reason, details=details)


async def record_access(request: Request, principal: Principal, action: str, *, number: str | None = None,
                        reason: str | None = None, details: dict[str, Any] | None = None) -> None:
    """Record that `principal` did `action` (on file `number`), from this request's address and user agent."""
    await record_request(request, action, actor=principal.actor, account_id=principal.account_id,
                         roles=principal.roles, number=number, reason=reason, details=details)
