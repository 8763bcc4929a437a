"""The register's rows as handlers write them, inside the transaction of a `UnitOfWork`: the locked complaint, its
status bookkeeping (read from and written back to the row as a `ComplaintState`), the change log, notices asked of
the notifier, incoming thread entries. Shared by every handler, so each change is recorded the same way."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from datetime import date, datetime, timezone
from functools import cache
from typing import Any

from services.registry import workflow
from services.registry.mediation.administrations import hidden_from_citizen
from services.registry.complaint_state import ComplaintState
from services.registry.handlers.ports import Conflict, NotFound, RegisterClock, RegistryPolicy
from services.registry.models import ChangeLogEntry, Complaint, ThreadMessage, filed_in
from services.registry.repository import Transaction, normalise_message_id
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import Status
from shared.events import ComplaintChanged, MessageReceived, NoticeRequested, Party

SYSTEM_ACTOR = "registry"


# --- values from outside, as the register stores them ----------------------------------------------------------------
def fit(column: Any, value: str | None) -> str | None:
    """Cut a value from outside to the bound of an indexed column (PostgreSQL refuses a longer one, which would
    turn a valid message into a dead letter). Unindexed free-text columns are unbounded `Text` (migration 0005)."""
    length = _length(column)
    return value[:length] if value is not None and length else value


@cache
def _length(column: Any) -> int | None:
    # A mapped attribute's type is found through SQLAlchemy's attribute proxies: microseconds, several per message.
    return getattr(column.type, "length", None)


def sender_address(email: str | None) -> str | None:
    """The sender's address as the register keys it: lower case, within the indexed column's bound."""
    return fit(Complaint.complainant_email, (email or "").strip().lower() or None)


def stored_message_id(value: str | None) -> str | None:
    return fit(ThreadMessage.message_id, normalise_message_id(value))


def aware(moment: datetime) -> datetime:
    """A timestamp without a zone (an older or foreign producer) is taken as UTC, the events' convention."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


def sender_trust(event: MessageReceived) -> dict[str, Any]:
    """What is known of who wrote `event` (`models.SenderTrust`), as stored with its complaint or thread entry."""
    forwarded_by = event.forwarded_by
    return {
        "sender_verdict": event.sender_verdict.value,
        "sender_evidence": event.sender_evidence or None,
        "identity_notes": list(event.identity_notes),
        "peer_ip": event.provenance.peer_ip,
        "peer_helo": event.provenance.peer_helo,
        "authenticated_as": event.provenance.authenticated_as,
        "forwarded_by_name": forwarded_by.name or None if forwarded_by else None,
        "forwarded_by_email": (forwarded_by.email or "").strip().lower() or None if forwarded_by else None,
        "forward_verified": event.forward_verified if forwarded_by else None,
    }


def incoming_thread_message(complaint: Complaint, event: MessageReceived) -> ThreadMessage:
    """A message of a party in the case's thread: the whole text, the new part intake separated from the quoted
    history, and the record of intake's rules that hit (which classified it, and why)."""
    return ThreadMessage(
        **filed_in(complaint),
        direction="in",
        message_key=event.message_key,
        message_id=stored_message_id(event.message_id),
        sender_name=event.sender.name,
        sender_email=(event.sender.email or "").strip().lower() or None,
        recipient=", ".join(event.recipients) or None,
        subject_line=event.subject_line,
        body=event.text,
        new_text=event.new_text,
        rules=[hit.model_dump() for hit in event.rules],
        attachments=[a.model_dump() for a in event.attachments],
        raw_object=event.raw_object,
        automated=event.automated,
        occurred_at=aware(event.received_at),
        **sender_trust(event),
    )


# --- the complaint and its status bookkeeping ------------------------------------------------------------------------
async def locked_complaint(tx: Transaction, number: str) -> Complaint:
    """The complaint, locked for this transaction (PostgreSQL `FOR UPDATE`; SQLite's writer lock), read now."""
    complaint = await tx.complaint_by_number(number.strip().upper(), for_update=True)
    if complaint is None:
        raise NotFound(f"no complaint {number}")
    return complaint


async def on_complaint(uow: UnitOfWork, number: str, action: Callable[[Transaction, Complaint], Awaitable[Any]]
                       ) -> Complaint:
    """Run `action` on the complaint, locked and read inside the unit of work's transaction; returns it."""

    async def on_locked(tx: Transaction) -> Complaint:
        complaint = await locked_complaint(tx, number)
        await action(tx, complaint)
        return complaint

    return await uow.run(f"complaint {number}", on_locked)


def state_of(complaint: Complaint) -> ComplaintState:
    values = {f.name: getattr(complaint, f.name) for f in fields(ComplaintState)}
    return ComplaintState(**{**values, "status": Status(complaint.status),
                             "admissibility_reasons": tuple(complaint.admissibility_reasons or ())})


def state_columns(state: ComplaintState) -> dict[str, Any]:
    """The state as the values of the `complaints` columns of the same names."""
    columns = {f.name: getattr(state, f.name) for f in fields(state)}
    return {**columns, "status": state.status.value, "admissibility_reasons": list(state.admissibility_reasons)}


def store_state(complaint: Complaint, state: ComplaintState) -> None:
    """Write back the columns the new state changed (only those: the row's UPDATE stays minimal)."""
    for name, value in state_columns(state).items():
        if getattr(complaint, name) != value:
            setattr(complaint, name, value)


def log_change(tx: Transaction, complaint: Complaint, change: str, actor: str, reason: str | None,
               details: dict[str, Any], *, at: datetime) -> ChangeLogEntry:
    """Record who changed what, when and why; the same transaction queues it as `ComplaintChanged`."""
    entry = ChangeLogEntry(**filed_in(complaint), change_id=uuid.uuid4().hex, change=change, actor=actor,
                           reason=reason, details=jsonable(details), at=at)
    tx.stage(entry)
    tx.enqueue(ComplaintChanged(complaint_number=complaint.number, change=change, actor=actor, reason=reason,
                                details=entry.details, change_id=entry.change_id))
    return entry


def change_status(
    tx: Transaction,
    complaint: Complaint,
    target: str,
    actor: str,
    reason: str | None,
    *,
    clock: RegisterClock,
    policy: RegistryPolicy,
    outcome: str | None = None,
    category: str | None = None,
    reasons: Sequence[str] = (),
    redirect_to: str | None = None,
    details: dict[str, Any] | None = None,
) -> ChangeLogEntry:
    """Apply a legal status change with its bookkeeping (`ComplaintState.moved_to`) and log it."""
    current, now = complaint.status, clock.now()
    try:
        state = state_of(complaint).moved_to(target, now=now, today=clock.local_date(now), rules=policy.rules,
                                             outcome=outcome, category=category, reasons=reasons,
                                             redirect_to=redirect_to)
    except workflow.IllegalTransition as error:
        raise Conflict(str(error)) from error
    store_state(complaint, state)
    complaint.updated_at = now
    return log_change(tx, complaint, "status", actor, reason, {
        "from": current, "to": state.status.value, "outcome": outcome, "category": category,
        "reasons": list(reasons), **(details or {}),
    }, at=now)


# --- notices asked of the notifier -----------------------------------------------------------------------------------
async def thread_references(tx: Transaction, complaint: Complaint) -> tuple[str | None, tuple[str, ...]]:
    """The citizen's first message (to answer) and every Message-ID of the thread (RFC 5322 3.6.4)."""
    thread = [m for m in await tx.thread(complaint.id) if not hidden_from_citizen(
        party=m.party, citizen_visible=m.citizen_visible, notice_kind=m.notice_kind)]  # issue 15
    ids = tuple(f"<{m.message_id}>" for m in thread if m.message_id)
    first_in = next((f"<{m.message_id}>" for m in thread if m.direction == "in" and m.message_id), None)
    return first_in, ids


async def request_notice(tx: Transaction, complaint: Complaint, kind: str, key: str, context: dict[str, Any], *,
                         recipient: Party | None = None, reply_to: str | None = None) -> None:
    """Ask the notifier for a notice to the citizen (it sends each `request_key` at most once)."""
    party = recipient or Party(name=complaint.complainant_name, email=complaint.complainant_email,
                               postal_address=complaint.complainant_postal_address,
                               language=complaint.complainant_language)
    if not party.email and not party.postal_address:
        return
    first_in, references = await thread_references(tx, complaint)
    tx.enqueue(NoticeRequested(
        request_key=f"{kind}:{complaint.number}:{key}",
        complaint_number=complaint.number,
        notice_kind=kind,
        recipient=party,
        context=jsonable({"complaint_number": complaint.number, "legal_start": complaint.legal_start,
                          "subject": complaint.subject_line, "language": complaint.complainant_language,
                          **context}),
        reply_to_message_id=reply_to or first_in,
        references=references,
    ))
