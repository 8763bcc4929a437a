"""The `MessageReceived` handler: what a message intake took in becomes in the register.

Idempotent: a redelivered message is found by its `message_key` (as a complaint, a thread entry or a held message)
and re-publishes the very event it caused (same `Nats-Msg-Id`), changing nothing. Otherwise `followups.decide`
routes it (a new complaint, a follow-up of a case, a read receipt, or the holding pen) on what the register knows
of the cases it refers to, read inside the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import structlog

from services.registry.followups import (
    Attach,
    CaseFacts,
    Hold,
    MatchedBy,
    NoticeFacts,
    RecordReceipt,
    RegisterNew,
    decide,
)
from services.registry.handlers import administrations, citizen_access
from services.registry.handlers.filing import (
    append_message,
    hold_message,
    legal_start,
    record_receipt,
    register_complaint,
    screen_message,
)
from services.registry.mediation.duplicate_store import read_possible_duplicates
from services.registry.mediation.duplicates import citizen_key, window_start
from services.registry.handlers.ports import Outcome, RegisterClock, RegistryPolicy
from services.registry.handlers.records import SYSTEM_ACTOR, sender_address, state_of, stored_message_id
from services.registry.models import Complaint
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from shared.events import MessageReceived, SenderVerdict

log = structlog.get_logger(__name__)


def is_read_receipt(event: MessageReceived) -> bool:
    """An automated read receipt (RFC 8098 MDN) naming the notice it reports on."""
    return bool(event.automated and stored_message_id(event.disposition_of))


async def message_received(event: MessageReceived, *, uow: UnitOfWork, policy: RegistryPolicy,
                           clock: RegisterClock) -> Outcome:
    event = await citizen_access.vouched(uow.store, event, policy, clock)  # sent through a personal link (issue 17)
    proposal = screen_message(event, policy, clock)

    async def receive(tx: Transaction) -> Outcome:
        found = await tx.find_message_key(event.message_key)
        if found is not None:
            return await _replay(tx, event, *found)
        decision = await _route(tx, event, policy, clock)
        if isinstance(decision, RegisterNew):  # not a complaint of an administration's (issue 15)
            decision = await administrations.hold_unreferenced(tx, event) or decision
        if isinstance(decision, Attach) and await administrations.file_administration_reply(
                tx, decision.number, event, clock):
            return Outcome("appended", decision.number)  # the administration's answer (issue 15)
        if isinstance(decision, RegisterNew):
            complaint = await register_complaint(tx, event, proposal, policy=policy, clock=clock,
                                                 linked_number=decision.linked_number)
            return Outcome("registered", complaint.number)
        if isinstance(decision, Attach):
            await append_message(tx, decision.number, event, policy=policy, clock=clock,
                                 new_status=decision.new_status, explanation=decision.explanation,
                                 actor=SYSTEM_ACTOR)
            return Outcome("appended", decision.number)
        if isinstance(decision, RecordReceipt):
            await record_receipt(tx, decision, event, clock)
            return Outcome("receipt", decision.number)
        hold_message(tx, event, decision, clock)
        return Outcome("held", None, reason=decision.reason.value)

    outcome = await uow.run(f"message {event.message_key}", receive,
                            ahead=(look_ahead, _lookups(event, policy, clock)))
    log.info("registry.message_received", message_key=event.message_key, action=outcome.action,
             complaint_number=outcome.number, replay=outcome.replay, reason=outcome.reason)
    return outcome


@dataclass(frozen=True)
class _Lookups:
    """What registering a message looks up: where its key is, whether its sender is an administration's, and the
    possible duplicates of its citizen (email, citizen key, window start)."""

    message_key: str
    sender: str | None
    citizen: tuple[str | None, str | None, date] | None


def _lookups(event: MessageReceived, policy: RegistryPolicy, clock: RegisterClock) -> _Lookups:
    sender = sender_address(event.sender.email)
    citizen = None
    if policy.duplicate_window_days > 0:
        since = window_start(legal_start(event, clock), policy.duplicate_window_days)
        citizen = (sender, citizen_key(event.sender.name, event.sender.postal_address), since)
    return _Lookups(event.message_key, sender, citizen)


async def look_ahead(tx: Transaction, lookups: list[_Lookups]) -> None:
    """A batch's registrations' lookups, read for all of them at once (issue 12): three queries per batch instead
    of three per message; each `receive` then finds its answers in `tx.read_ahead`."""
    await tx.read_message_keys(lookup.message_key for lookup in lookups)
    await administrations.read_administration_files(tx, [lookup.sender for lookup in lookups])
    await read_possible_duplicates(tx, [lookup.citizen for lookup in lookups if lookup.citizen is not None])


async def _replay(tx: Transaction, event: MessageReceived, place: str, ref: int) -> Outcome:
    """A message seen before: re-publish the very event it caused (same dedup id), change nothing."""
    if place == "held":
        held = await tx.held_by_id(ref)
        return Outcome("held", None, replay=True, reason=held.reason if held else None)
    complaint = await tx.complaint_by_id(ref)
    if place == "complaint":
        action, dedup_id = "registered", f"registered:{complaint.number}"
    elif is_read_receipt(event):
        return Outcome("receipt", complaint.number, replay=True)  # its change-log event went out with it
    else:
        action, dedup_id = "appended", f"appended:{complaint.number}:{event.message_key}"
    row = await tx.outbox_by_dedup_id(dedup_id)
    if row is not None:
        tx.republish(row)
    return Outcome(action, complaint.number, replay=True)


async def _merge_targets(tx: Transaction, *groups: list[Complaint]) -> tuple[list[Complaint], ...]:
    """The cases a message refers to, a merged file replaced by the file it was merged into (its thread lives on
    there; undoing the merge brings back what was there before)."""
    targets = {c.merged_into for group in groups for c in group if c.merged_into}
    if not targets:
        return groups
    by_number = {c.number: c for c in await tx.complaints_by_numbers(sorted(targets))}

    def resolved(complaint: Complaint) -> Complaint:
        return by_number.get(complaint.merged_into, complaint) if complaint.merged_into else complaint

    return tuple(list({c.number: c for c in map(resolved, group)}.values()) for group in groups)


async def _route(tx: Transaction, event: MessageReceived, policy: RegistryPolicy, clock: RegisterClock
                 ) -> RegisterNew | Attach | RecordReceipt | Hold:
    """Gather what the register knows of the cases the message refers to, and let `followups.decide` route it."""
    message_ids = [stored_message_id(event.in_reply_to), *(stored_message_id(r) for r in event.references)]
    header_cases = await tx.complaints_by_message_ids([m for m in message_ids if m])
    fmt = policy.number_format
    mentioned = [n for n in (fmt.normalise(c) for c in event.candidate_case_numbers) if n]
    mentioned += fmt.find_all(event.subject_line)
    mentioned = list(dict.fromkeys(mentioned))
    number_cases = await tx.complaints_by_numbers(mentioned)
    found = {c.number for c in number_cases}
    unknown = [n for n in mentioned if n not in found]
    header_cases, number_cases = await _merge_targets(tx, header_cases, number_cases)
    referenced: dict[str, tuple[Complaint, MatchedBy]] = {c.number: (c, MatchedBy.HEADER) for c in header_cases}
    for complaint in number_cases:
        referenced.setdefault(complaint.number, (complaint, MatchedBy.NUMBER))
    sender = sender_address(event.sender.email)
    sender_failed = event.sender_verdict is SenderVerdict.FAILED
    if not (referenced or unknown or event.automated or sender_failed or event.needs_confirmation):
        return RegisterNew()  # the common case: a new complaint, no further query
    receipt = is_read_receipt(event)
    receipt_notices = [NoticeFacts(number, recipient, kind) for number, recipient, kind
                       in await tx.notices_by_message_id(stored_message_id(event.disposition_of) or "")
                       ] if receipt else []
    own = await tx.complaints_of_party(sender) if sender else []
    parties = await tx.party_emails([c.id for c, _ in referenced.values()])

    def facts(complaint: Complaint, matched_by: MatchedBy) -> CaseFacts:
        return CaseFacts(
            number=complaint.number,
            matched_by=matched_by,
            parties=frozenset(parties.get(complaint.id, ())),
            status=complaint.status,
            ended_on=state_of(complaint).ended_on(clock.zone),
            received_at=complaint.received_at,
        )

    return decide(
        sender_email=sender,
        referenced=[facts(c, how) for c, how in referenced.values()],
        unknown_numbers=unknown,
        sender_cases=[facts(c, MatchedBy.SENDER) for c in own],
        automated=event.automated,
        today=clock.today(),
        policy=policy.reopen,
        sender_failed=sender_failed,
        needs_confirmation=event.needs_confirmation,
        receipt=receipt,
        receipt_notices=receipt_notices,
    )
