"""The `NotificationSent` and `NotificationFailed` handlers: the notifier's report on a notice, filed in the case.

A sent notice joins the thread (its Message-ID then matches the citizen's reply); the first acknowledgment sent
acknowledges the complaint. A failed notice is filed too, so staff see the citizen was not told; a failed
acknowledgment does not count as one (`ComplaintState.acknowledgment_failed`). Both are idempotent: the thread entry's
key (`out:` / `failed:` + the notification key) is found on a redelivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from services.registry.handlers.ports import RegisterClock
from services.registry.handlers.records import (
    SYSTEM_ACTOR,
    aware,
    log_change,
    state_of,
    store_state,
    stored_message_id,
)
from services.registry.models import Complaint, ThreadMessage
from services.registry.repository import Transaction, locking
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import Status
from shared.events import NotificationFailed, NotificationSent
from shared.messaging import PermanentError

ACKNOWLEDGMENT_NOTICES = frozenset({"acknowledgment", "acknowledgement"})


_COMPLAINTS = "notified_complaints"
_ENTRIES = "notice_entries"


@dataclass(frozen=True)
class _Lookups:
    """What filing a notice looks up: its complaint, and its thread entry under either key."""

    number: str
    keys: tuple[str, str]


async def look_ahead(tx: Transaction, lookups: list[_Lookups]) -> None:
    """A batch's notices' complaints (locked, in id order so that two registries lock in the same order; read
    afresh: nothing of the batch has changed them yet) and thread entries, in two queries for the batch (issue 12)."""
    numbers = list(dict.fromkeys(lookup.number for lookup in lookups))
    keys = list(dict.fromkeys(key for lookup in lookups for key in lookup.keys))
    with tx.session.no_autoflush:
        locked = locking(select(Complaint).where(Complaint.number.in_(numbers)).order_by(Complaint.id))
        complaints = {c.number: c for c in (await tx.session.execute(locked)).scalars()}
        filed = await tx.thread_messages_by_keys(*keys)
    tx.read_ahead.setdefault(_COMPLAINTS, {}).update({number: complaints.get(number) for number in numbers})
    tx.read_ahead.setdefault(_ENTRIES, {}).update({key: filed.get(key) for key in keys})


async def _complaint_and_entries(tx: Transaction, number: str, keys: tuple[str, str]
                                 ) -> tuple[Complaint | None, dict[str, ThreadMessage]]:
    """The notice's complaint (locked) and its thread entries by key: from the batch's look-ahead when it read them,
    with the entries this transaction staged since; else read now."""
    complaints, entries = tx.read_ahead.get(_COMPLAINTS, {}), tx.read_ahead.get(_ENTRIES, {})
    if number in complaints and all(key in entries for key in keys):
        filed = {key: entries[key] for key in keys if entries[key] is not None}
        filed.update({m.message_key: m for m in tx.staged(ThreadMessage) if m.message_key in keys})
        return complaints[number], filed
    return await tx.complaint_by_number(number, for_update=True), await tx.thread_messages_by_keys(*keys)


async def _filed_notice(tx: Transaction, event: NotificationSent | NotificationFailed, key: str, other_key: str, *,
                       message_id: str | None, subject_line: str, body: str
                       ) -> tuple[Complaint | None, ThreadMessage | None]:
    """The notice's complaint, with the notice filed in its thread under `key`, and the entry filed under
    `other_key` (the same notice reported sent, or failed) if any; (None, None) if it was filed before (a
    redelivery), and then nothing else is done either. Both keys are looked up in one query (or with the batch)."""
    complaint, filed = await _complaint_and_entries(tx, event.complaint_number, (key, other_key))
    if complaint is None:
        # Redelivering it would not make the complaint appear: dead-letter it at once.
        raise PermanentError(f"notification for unknown complaint {event.complaint_number}")
    if key in filed:
        return None, None
    tx.stage(ThreadMessage(complaint_id=complaint.id, direction="out", message_key=key, message_id=message_id,
                           sender_name="", sender_email=None, recipient=_kept(complaint, event.recipient),
                           subject_line=_kept(complaint, subject_line), body=_kept(complaint, body),
                           notice_kind=event.notice_kind, attachments=[], automated=False,
                           occurred_at=aware(event.occurred_at)))
    return complaint, filed.get(other_key)


def _kept(complaint: Complaint, personal: str) -> str:
    """A notice's recipient, subject or refusal (which may quote the address) as filed: nothing in an anonymised
    file. The notifier's report may have left before the erasure reached the notifier, or be a redelivery."""
    return "" if complaint.anonymised_at is not None else personal


async def notification_sent(event: NotificationSent, *, uow: UnitOfWork, clock: RegisterClock) -> bool:
    """Record a notice we sent in the case's thread; False if it was recorded already."""

    async def record(tx: Transaction) -> bool:
        complaint, failed = await _filed_notice(tx, event, f"out:{event.notification_key}",
                                                f"failed:{event.notification_key}",
                                                message_id=stored_message_id(event.message_id),
                                                subject_line=event.subject_line, body="")
        if complaint is None:
            return False
        if event.notice_kind in ACKNOWLEDGMENT_NOTICES and failed is None:
            before = state_of(complaint)
            after = before.acknowledgment_sent(aware(event.occurred_at))
            if after != before:
                store_state(complaint, after)
                complaint.updated_at = clock.now()
            if after.status != before.status:
                log_change(tx, complaint, "status", SYSTEM_ACTOR, "acknowledgment sent", {
                    "from": before.status.value, "to": after.status.value, "outcome": None, "category": None,
                    "reasons": [], "message_id": event.message_id}, at=clock.now())
        return True

    return await uow.run(f"notification {event.notification_key}", record, ahead=(look_ahead, _Lookups(
        event.complaint_number, (f"out:{event.notification_key}", f"failed:{event.notification_key}"))))


async def notification_failed(event: NotificationFailed, *, uow: UnitOfWork, clock: RegisterClock) -> bool:
    """Record a notice the notifier gave up on, in the thread and the change log; False if recorded already."""

    async def record(tx: Transaction) -> bool:
        complaint, sent = await _filed_notice(tx, event, f"failed:{event.notification_key}",
                                              f"out:{event.notification_key}", message_id=None,
                                              subject_line="", body=event.reason)
        if complaint is None:
            return False
        details: dict[str, Any] = {"notification_key": event.notification_key, "notice_kind": event.notice_kind,
                                   "recipient": _kept(complaint, event.recipient)}
        if event.notice_kind in ACKNOWLEDGMENT_NOTICES and sent is not None:
            # The same notice was first reported sent (e.g. accepted by the relay, then refused): undo what it did.
            before = state_of(complaint)
            after = before.acknowledgment_failed(sent.occurred_at)
            if after.acknowledged_at != before.acknowledged_at:
                details["acknowledged_at_cleared"] = before.acknowledged_at
            if after.status != before.status:
                # The file was moved to "acknowledged" by the notice; the citizen was not told after all, so staff
                # must not read it as acknowledged. A correction of the system's own step, not a workflow
                # transition, logged as a status change like every other (the file's history shows it).
                details["status_reverted"] = {"from": before.status.value, "to": after.status.value}
                log_change(tx, complaint, "status", SYSTEM_ACTOR, "acknowledgment failed",
                           {"from": before.status.value, "to": after.status.value,
                            "notification_key": event.notification_key}, at=clock.now())
            store_state(complaint, after)
        complaint.updated_at = clock.now()
        log_change(tx, complaint, "notification_failed", SYSTEM_ACTOR, _kept(complaint, event.reason), details,
                   at=clock.now())
        return True

    return await uow.run(f"notification {event.notification_key}", record)
