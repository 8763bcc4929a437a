"""Anonymising a file, erasing a correspondent's part of it, deleting a held message — inside one transaction of
the register (`handlers.py` runs them through the unit of work), each publishing `PersonalDataErased` through the
outbox in that same transaction: the other services erase their own copies only once the register's is gone, and
always then.

What anonymising a file changes (docs/privacy.md says it for operators):

- `complaints`: the complainant's name, email, postal address, the subject and text become placeholders or empty;
  the attachment list, the raw original's name, what intake saw of the sender (verdict evidence, IP address, HELO,
  authenticated login, identity notes, the forwarding staff member), the screening proposal (it quotes the text),
  the citizen key (a hash of name and address) and the possible duplicates (they tie the person's files together)
  are cleared. Kept, because the annual indicators and the register's order need them: number, year, sequence, kind,
  channel, dates and deadlines, status, admissibility and its reasons, service, theme, outcome and category,
  improvement actions, redirection, handler, language, data-protection flag. The SQLite FTS5 index follows through
  its triggers (migration 0004), PostgreSQL's trigram indexes through the update itself.
- `thread_messages` of the file: names, addresses, subjects, texts, Message-IDs, attachments, raw originals,
  intake's rule hits and sender evidence, in and out.
- `change_log` of the file: the reasons staff gave and every detail but the plain facts of `KEPT_DETAILS` (status
  moves, outcomes, reason codes...): details hold message texts, addresses, names.
- `complaint_notes`, `information_requests`, `position_requests` (the text sent): placeholders; merges: the reason.
- `case_parties` of the file: deleted (no more mail attaches to it); `holding_pen` rows of its messages: deleted.
- `outbox`: every row of the file (its events carry names, addresses and texts), published or not, is deleted, and
  the published rows older than the outbox's retention with them (`prune_outbox`).

Nothing is deleted that a count needs, so the annual indicators of any year read the same before and after.

Erasing one person's part of a file that is someone else's (`erase_correspondent`: an admitted correspondent, or a
sender whose message staff attached without admitting them) changes only that part — their messages, the notices the
thread recorded as sent to them, their admission, the change-log details naming them, their outbox events and held
rows — and the dry run counts exactly that part (`copies_of_correspondent`, the same reading).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, cast, delete, func, or_, select, update

from services.registry.models import (
    CaseParty,
    ChangeLogEntry,
    CitizenLink,
    Complaint,
    ComplaintMerge,
    ComplaintNote,
    HeldMessage,
    InformationRequest,
    OutboxEvent,
    PositionRequest,
    ThreadMessage,
)
from services.registry.repository import Transaction, escape_like
from shared.events import MessageReceived, PersonalDataErased
from shared.mailbox import mentions_address

__all__ = ["ANONYMISED", "Copies", "KEPT_DETAILS", "anonymise_complaint", "copies_of", "copies_of_correspondent",
           "erase_correspondent", "erase_held", "prune_outbox"]

# What staff read in place of a name, a subject, a text: the same in the four languages of the office (it is stored,
# so it cannot follow the reader's language).
ANONYMISED = "[anonymisé · geanonimiseerd · anonymisiert · anonymised]"

# Change-log details kept when a file is anonymised: facts, codes and numbers, never free text or an address.
KEPT_DETAILS = frozenset({"from", "to", "outcome", "category", "reasons", "redirect_to", "kind", "theme",
                          "service_concerned", "data_protection", "note_id", "other", "deadline_kind", "due",
                          "extended", "request_key", "notice_kind", "language", "erasure_id", "mode", "reason",
                          "rule", "fields", "answer_due", "paused_days", "administration_id", "missing",
                          "recommendation_id", "status"})

# The sender-trust columns (`models.SenderTrust`) cleared on every row that has them.
_SENDER_TRUST_CLEARED = {"sender_evidence": None, "identity_notes": None, "peer_ip": None, "peer_helo": None,
                         "authenticated_as": None, "forwarded_by_name": None, "forwarded_by_email": None}


@dataclass(frozen=True)
class Copies:
    """Every copy of a file's personal data the register holds, as the dry run of an erasure lists it, and the
    identifiers the other services erase theirs by."""

    number: str
    message_keys: tuple[str, ...]
    raw_objects: tuple[str, ...]
    attachment_objects: tuple[str, ...]
    thread_messages: int
    notes: int
    change_log_entries: int
    parties: int
    held_messages: int
    outbox_rows: int
    information_requests: int
    position_requests: int

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "thread_messages": self.thread_messages, "notes": self.notes,
                "change_log_entries": self.change_log_entries, "parties": self.parties,
                "held_messages": self.held_messages, "outbox_rows": self.outbox_rows,
                "information_requests": self.information_requests, "position_requests": self.position_requests,
                "message_keys": len(self.message_keys), "raw_objects": len(self.raw_objects),
                "attachment_objects": len(self.attachment_objects)}


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """The values given, once each, in their order, without the empty ones."""
    return tuple(dict.fromkeys(v for v in values if v))


def _objects(attachments: Iterable[Any] | None) -> list[str]:
    return [str(a["object_name"]) for a in attachments or () if isinstance(a, dict) and a.get("object_name")]


def _outbox_of(number: str) -> Any:
    """The outbox rows of a file: every event of the registry names it as `complaint_number` (pydantic's compact
    JSON); the number cannot end early in another's (the closing quote is part of the pattern)."""
    return OutboxEvent.payload.like(f'%"complaint_number":"{escape_like(number)}"%', escape="\\")


async def still_used(tx: Transaction, names: Iterable[str], *, complaint_id: int | None = None,
                     message_ids: Sequence[int] = (), held_id: int | None = None) -> set[str]:
    """The object names (attachments, stored once per content: `sha256-...`) that something other than what is
    being erased still refers to — another file, another message of this file, another held message — and that
    must therefore stay in the object store. `complaint_id` excludes a whole file, `message_ids` some of its
    messages, `held_id` a held message. One search per name (a file has a handful): a text search in the JSON
    columns, which reads the tables whole — the price of not keeping a separate reference table (docs/privacy.md)."""
    used: set[str] = set()
    for name in dict.fromkeys(names):
        pattern = f'%"{escape_like(name)}"%'
        in_files = select(Complaint.id).where(cast(Complaint.attachments, Text).like(pattern, escape="\\"))
        in_thread = select(ThreadMessage.id).where(cast(ThreadMessage.attachments, Text).like(pattern, escape="\\"))
        in_held = select(HeldMessage.id).where(HeldMessage.event.like(pattern, escape="\\"))
        if complaint_id is not None and not message_ids:
            in_files = in_files.where(Complaint.id != complaint_id)
            in_thread = in_thread.where(ThreadMessage.complaint_id != complaint_id)
        if message_ids:
            in_thread = in_thread.where(ThreadMessage.id.not_in(list(message_ids)))
        if held_id is not None:
            in_held = in_held.where(HeldMessage.id != held_id)
        for query in (in_files, in_thread, in_held):
            if (await tx.session.execute(query.limit(1))).first() is not None:
                used.add(name)
                break
    return used


def _held_of(number: str, message_keys: Sequence[str]) -> Any:
    return or_(HeldMessage.resolved_number == number, HeldMessage.message_key.in_(list(message_keys)))


async def _count(tx: Transaction, model: Any, *conditions: Any) -> int:
    return int((await tx.session.execute(select(func.count()).select_from(model).where(*conditions))).scalar_one())


async def copies_of(tx: Transaction, complaint: Complaint) -> Copies:
    """What the register holds of the file's personal data (read before changing anything)."""
    thread = list((await tx.session.execute(
        select(ThreadMessage.direction, ThreadMessage.message_key, ThreadMessage.raw_object,
               ThreadMessage.attachments).where(ThreadMessage.complaint_id == complaint.id))).all())
    keys = [complaint.message_key] + [key for direction, key, _raw, _a in thread if direction == "in"]
    raws = [complaint.raw_object] + [raw for _d, _k, raw, _a in thread]
    objects = _objects(complaint.attachments) + [name for *_rest, a in thread for name in _objects(a)]
    return Copies(
        number=complaint.number, message_keys=_unique(keys), raw_objects=_unique(raws),
        attachment_objects=_unique(objects), thread_messages=len(thread),
        notes=await _count(tx, ComplaintNote, ComplaintNote.complaint_id == complaint.id),
        change_log_entries=await _count(tx, ChangeLogEntry, ChangeLogEntry.complaint_id == complaint.id),
        parties=await _count(tx, CaseParty, CaseParty.complaint_id == complaint.id),
        held_messages=await _count(tx, HeldMessage, _held_of(complaint.number, _unique(keys))),
        outbox_rows=await _count(tx, OutboxEvent, _outbox_of(complaint.number)),
        information_requests=await _count(tx, InformationRequest, InformationRequest.complaint_id == complaint.id),
        position_requests=await _count(tx, PositionRequest, PositionRequest.complaint_id == complaint.id),
    )


@dataclass(frozen=True)
class _TheirPart:
    """What of one person a file that is someone else's holds: the messages they sent (in), the notices the file's
    thread recorded as sent to them (out), the change-log entries that name them or their messages. The dry run
    counts it (`copies_of_correspondent`), the erasure removes it (`erase_correspondent`): the same reading."""

    messages: list[ThreadMessage]
    notices: list[ThreadMessage]
    mentions: list[ChangeLogEntry]
    # Read when the part is read, before any row changes: what to name in `PersonalDataErased`.
    keys: tuple[str, ...]
    raws: tuple[str, ...]
    objects: tuple[str, ...]


# The thread's party of an administration's answers (issue 15): never "their part" of a file that is not theirs.
ADMINISTRATION_PARTY = "administration"


def _their_outbox(number: str, keys: Sequence[str], email: str) -> Any:
    """Their events in the outbox: their messages appended, their admission (the address is a JSON value of the
    details, quoted whole: a longer address that contains it is not theirs)."""
    quoted = escape_like(json.dumps(email))
    return and_(_outbox_of(number), or_(
        OutboxEvent.dedup_id.in_([f"appended:{number}:{key}" for key in keys]),
        func.lower(OutboxEvent.payload).like(f"%{quoted}%", escape="\\")))


def _their_admission(complaint_id: int, email: str) -> tuple[Any, ...]:
    return CaseParty.complaint_id == complaint_id, CaseParty.email == email, CaseParty.role != "complainant"


async def _their_part(tx: Transaction, complaint: Complaint, email: str) -> _TheirPart:
    thread = list((await tx.session.execute(select(ThreadMessage).where(
        ThreadMessage.complaint_id == complaint.id,
        or_(ThreadMessage.party.is_(None), ThreadMessage.party != ADMINISTRATION_PARTY), or_(
            and_(ThreadMessage.direction == "in", ThreadMessage.sender_email == email),
            and_(ThreadMessage.direction == "out", func.lower(ThreadMessage.recipient) == email)))
        .order_by(ThreadMessage.id))).scalars())
    messages = [m for m in thread if m.direction == "in"]
    keys = {m.message_key for m in messages}
    entries = []
    for entry in (await tx.session.execute(
            select(ChangeLogEntry).where(ChangeLogEntry.complaint_id == complaint.id))).scalars():
        written = json.dumps(entry.details or {}, ensure_ascii=False) + " " + (entry.reason or "")
        if mentions_address(written, email) or any(key in written for key in keys):
            entries.append(entry)
    return _TheirPart(messages, [m for m in thread if m.direction == "out"], entries,
                      keys=tuple(m.message_key for m in messages),
                      raws=tuple(m.raw_object for m in messages if m.raw_object),
                      objects=tuple(name for m in messages for name in _objects(m.attachments)))


async def copies_of_correspondent(tx: Transaction, complaint: Complaint, email: str) -> Copies:
    """What the register holds of one person on a file that is someone else's (admitted as a correspondent, or
    whose messages staff attached to it): only their part, which is all an erasure of them removes there."""
    part = await _their_part(tx, complaint, email)
    return Copies(
        number=complaint.number, message_keys=part.keys, raw_objects=_unique(part.raws),
        attachment_objects=_unique(part.objects), thread_messages=len(part.messages) + len(part.notices), notes=0,
        change_log_entries=len(part.mentions),
        parties=await _count(tx, CaseParty, *_their_admission(complaint.id, email)),
        held_messages=await _count(tx, HeldMessage, HeldMessage.message_key.in_(list(part.keys))),
        outbox_rows=await _count(tx, OutboxEvent, _their_outbox(complaint.number, part.keys, email)),
        information_requests=0, position_requests=0)


async def prune_outbox(tx: Transaction, published_before: datetime) -> int:
    """Delete the outbox rows published before `published_before`: once JetStream has an event, its row only
    serves the deduplication of a replay, which the streams' own age bounds (docs/privacy.md)."""
    result = await tx.session.execute(delete(OutboxEvent).where(OutboxEvent.published_at < published_before))
    return int(result.rowcount or 0)


async def anonymise_complaint(tx: Transaction, complaint: Complaint, *, reason: str, now: datetime
                              ) -> PersonalDataErased:
    """Anonymise the (locked) file in this transaction and queue `PersonalDataErased`; the caller logs the change
    (after this: the outbox rows of the file are deleted here, and the change's own event must stay)."""
    copies = await copies_of(tx, complaint)
    shared = await still_used(tx, copies.attachment_objects, complaint_id=complaint.id)
    await tx.session.execute(delete(OutboxEvent).where(_outbox_of(complaint.number)))
    await tx.session.execute(delete(HeldMessage).where(_held_of(complaint.number, copies.message_keys)))
    await tx.session.execute(delete(CaseParty).where(CaseParty.complaint_id == complaint.id))
    # Its personal links stop working: nothing of the person may be shown, nor added, through them any more.
    await tx.session.execute(update(CitizenLink).where(CitizenLink.complaint_id == complaint.id,
                                                       CitizenLink.revoked_at.is_(None))
                             .values(revoked_at=now, revoked_by=f"privacy:{reason}"))
    await tx.session.execute(update(ThreadMessage).where(ThreadMessage.complaint_id == complaint.id).values(
        sender_name=ANONYMISED, sender_email=None, recipient=None, subject_line=ANONYMISED, body=ANONYMISED,
        new_text=None, message_id=None, rules=None, attachments=[], raw_object=None, disposition_of=None,
        sender_verdict=None, **_SENDER_TRUST_CLEARED))
    await tx.session.execute(update(ComplaintNote).where(ComplaintNote.complaint_id == complaint.id)
                             .values(text=ANONYMISED))
    await tx.session.execute(update(InformationRequest).where(InformationRequest.complaint_id == complaint.id)
                             .values(text=ANONYMISED))
    await tx.session.execute(update(PositionRequest).where(PositionRequest.complaint_id == complaint.id)
                             .values(text=ANONYMISED))
    await tx.session.execute(update(ComplaintMerge).where(or_(ComplaintMerge.source_id == complaint.id,
                                                              ComplaintMerge.target_id == complaint.id))
                             .values(reason=None))
    for entry in (await tx.session.execute(
            select(ChangeLogEntry).where(ChangeLogEntry.complaint_id == complaint.id))).scalars():
        entry.reason = None
        entry.details = {key: value for key, value in (entry.details or {}).items() if key in KEPT_DETAILS}
    for column, value in {
        "complainant_name": ANONYMISED, "complainant_email": None, "complainant_postal_address": None,
        "subject_line": ANONYMISED, "body": ANONYMISED, "attachments": [], "raw_object": None,
        "screening_proposal": None, "citizen_key": None, "possible_duplicates": None, "sender_verdict": None,
        **_SENDER_TRUST_CLEARED, "anonymised_at": now, "updated_at": now,
    }.items():
        setattr(complaint, column, value)
    event = PersonalDataErased(
        complaint_number=complaint.number, erasure_id=uuid.uuid4().hex,
        mode="erased" if reason == "request" else "anonymised",  # type: ignore[arg-type]
        reason=reason,  # type: ignore[arg-type]
        message_keys=copies.message_keys, raw_objects=copies.raw_objects,
        attachment_objects=tuple(name for name in copies.attachment_objects if name not in shared))
    tx.enqueue(event)
    return event


async def erase_correspondent(tx: Transaction, complaint: Complaint, email: str) -> PersonalDataErased | None:
    """Remove one person's part of a (locked) file that is someone else's — their messages (identity, texts,
    attachments, raw originals), the addresses of the notices sent to them, their admission as a correspondent if
    staff admitted them — and the change-log details that name them; the complainant's part stays. None when
    nothing of theirs is left."""
    part = await _their_part(tx, complaint, email)
    admitted = await tx.session.execute(delete(CaseParty).where(*_their_admission(complaint.id, email)))
    if not part.messages and not part.notices and not admitted.rowcount:
        return None
    keys, raws, named = part.keys, part.raws, part.objects
    # Their messages' rows in the holding pen go first: a message staff attached from it is still there, and its
    # document must not count as used by another message because of it.
    await tx.session.execute(delete(HeldMessage).where(HeldMessage.message_key.in_(list(keys))))
    shared = await still_used(tx, named, message_ids=[m.id for m in part.messages])
    objects = tuple(dict.fromkeys(name for name in named if name not in shared))
    await tx.session.execute(delete(OutboxEvent).where(_their_outbox(complaint.number, keys, email)))
    # The change-log entries about them (their admission, their messages): the plain facts only, as for a file.
    for entry in part.mentions:
        entry.reason = None
        entry.details = {key: value for key, value in (entry.details or {}).items() if key in KEPT_DETAILS}
    for message in part.messages:
        for column, value in {"sender_name": ANONYMISED, "sender_email": None, "recipient": None,
                              "subject_line": ANONYMISED, "body": ANONYMISED, "new_text": None, "message_id": None,
                              "rules": None, "attachments": [], "raw_object": None, "sender_verdict": None,
                              **_SENDER_TRUST_CLEARED}.items():
            setattr(message, column, value)
    for notice in part.notices:  # what we wrote to them: their address, and a text that may quote them
        notice.recipient, notice.subject_line, notice.body, notice.new_text = None, ANONYMISED, ANONYMISED, None
    # Only their messages and the notices sent to them: the file itself is the complainant's and stays.
    event = PersonalDataErased(complaint_number=complaint.number, erasure_id=uuid.uuid4().hex, mode="erased",
                               reason="request", message_keys=keys, raw_objects=raws, attachment_objects=objects,
                               scope="messages", recipient_hashes=(PersonalDataErased.address_hash(email),))
    tx.enqueue(event)
    return event


async def erase_held(tx: Transaction, held: HeldMessage, reason: str) -> PersonalDataErased:
    """Delete a held message and queue `PersonalDataErased` for its copies (its raw original and attachments are
    named in the event it keeps whole). A message never attached has no file: its number is the one it was
    registered or attached under, else empty."""
    try:
        received = MessageReceived.model_validate_json(held.event)
        raws = (received.raw_object,) if received.raw_object else ()
        shared = await still_used(tx, (a.object_name for a in received.attachments), held_id=held.id)
        objects = tuple(a.object_name for a in received.attachments if a.object_name not in shared)
        senders = (PersonalDataErased.address_hash(received.sender.email),) if received.sender.email else ()
    except ValueError:  # an event the current contract no longer reads: its key still names its copies
        raws, objects, senders = (), (), ()
    await tx.delete_row(held)
    # A held message is its sender's alone; the file it was attached under (if any) is someone else's and stays.
    event = PersonalDataErased(complaint_number=held.resolved_number or "", erasure_id=uuid.uuid4().hex,
                               mode="erased", reason=reason,  # type: ignore[arg-type]
                               message_keys=(held.message_key,), raw_objects=raws, attachment_objects=objects,
                               scope="messages", recipient_hashes=senders)
    tx.enqueue(event)
    return event
