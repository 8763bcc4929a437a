"""Filing one incoming message, inside a transaction: a new complaint, a message joining a case's thread, a read
receipt of one of our notices, or the holding pen. Called by the `MessageReceived` handler (`incoming.py`) and by
staff's holding-pen decisions (`holding_pen.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from services.registry.public import citizen_access
from services.registry.complaint_state import ComplaintState
from services.registry.mediation.dpo import dpo_notification
from services.registry.mediation.duplicate_store import flag_possible_duplicates
from services.registry.followups import Hold, RecordReceipt, receipt_disposition
from services.registry.handlers import information_requests
from services.registry.handlers.ports import RegisterClock, RegistryPolicy
from services.registry.handlers.records import (
    SYSTEM_ACTOR,
    aware,
    change_status,
    incoming_thread_message,
    locked_complaint,
    log_change,
    request_notice,
    sender_address,
    sender_trust,
    state_columns,
    state_of,
    stored_message_id,
)
from services.registry.models import CaseParty, Complaint, HeldMessage, ThreadMessage, filed_in
from services.registry.repository import Transaction
from services.registry.screening import ScreeningFacts, ScreeningInput, ScreeningProposal, screen
from services.registry.commands import FACTS
from services.registry.vocabulary import Kind
from shared.events import Channel, ComplaintRegistered, MessageAppended, MessageReceived, Party, SenderVerdict


def legal_start(event: MessageReceived, clock: RegisterClock) -> date:
    """For letters the date received (not the scan date); for email the receipt day in the service's zone."""
    if event.letter_received_on is not None:
        return event.letter_received_on
    return clock.local_date(aware(event.received_at))


def screening_input(event: MessageReceived, received: date) -> ScreeningInput:
    """What screening reads of a message: its sender, subject and text, and the facts a letter's metadata stated."""
    return ScreeningInput(
        received=received,
        sender_name=event.sender.name,
        sender_email=event.sender.email,
        postal_address=event.sender.postal_address,
        subject=event.subject_line,
        text=event.text,
        language=event.language or event.sender.language,
        facts=ScreeningFacts(event.facts_date, event.last_step_date, event.first_line_contacted),
        recipients=event.recipients,
    )


def screen_message(event: MessageReceived, policy: RegistryPolicy, clock: RegisterClock) -> ScreeningProposal | None:
    """The screening proposal staff will confirm or override; its kind, theme and service are filed at once.
    Pure and slow-ish: run before the transaction, so that no lock is held meanwhile."""
    if policy.screening is None:
        return None
    return screen(screening_input(event, legal_start(event, clock)), policy.screening)


async def register_complaint(tx: Transaction, event: MessageReceived, proposal: ScreeningProposal | None, *,
                             policy: RegistryPolicy, clock: RegisterClock, linked_number: str | None = None,
                             actor: str = SYSTEM_ACTOR, kind: str | None = None) -> Complaint:
    """A new complaint with the next number of its legal start's year, its complainant as a party, its first
    thread entry, its change-log entry and `ComplaintRegistered` (the notifier acknowledges it).

    `kind`: the kind staff stated (a complaint entered by hand), else screening's suggestion. A message screening
    routes to the DPO is a data-protection complaint from the start: only a DPO sees it (issue 13)."""
    now = clock.now()
    start = legal_start(event, clock)
    sequence = await tx.next_sequence(start.year)
    number = policy.number_format.format(start.year, sequence)
    sender = event.sender
    dpo = policy.screening.dpo if policy.screening else None
    complaint = Complaint(
        number=number,
        year=start.year,
        sequence=sequence,
        message_key=event.message_key,
        kind=kind or (proposal.kind if proposal else Kind.COMPLAINT.value),
        channel=event.channel.value,
        received_at=aware(event.received_at),
        complainant_name=sender.name,
        complainant_email=sender_address(sender.email),
        complainant_postal_address=sender.postal_address,
        complainant_language=event.language or sender.language,
        subject_line=event.subject_line,
        body=event.text,
        attachments=[a.model_dump() for a in event.attachments],
        raw_object=event.raw_object,
        service_concerned=proposal.service.id if proposal and proposal.service else None,
        theme=proposal.theme.id if proposal and proposal.theme else None,
        handler=dpo.email if proposal and proposal.route_to_dpo and dpo else None,
        screening_proposal=proposal.to_dict() if proposal else None,
        data_protection=bool(proposal and proposal.route_to_dpo),
        facts_date=event.facts_date,
        last_step_date=event.last_step_date,
        first_line_contacted=event.first_line_contacted,
        recommendations=[],
        linked_number=linked_number,
        automated=event.automated,
        acknowledgment_suppressed=event.acknowledgment_suppressed,
        created_at=now,
        updated_at=now,
        **state_columns(ComplaintState.registered(start, policy.rules)),
        **sender_trust(event),
    )
    await flag_possible_duplicates(tx, complaint, policy.duplicate_window_days)
    # Staged, not inserted now: its rows below name it (`filed_in`), and the flush at commit inserts a whole batch of
    # registrations in a few statements (issue 12); its id is set by then.
    tx.stage(complaint)
    if complaint.complainant_email:
        tx.stage(CaseParty(**filed_in(complaint), email=complaint.complainant_email, role="complainant",
                           added_by=actor, added_at=now))
    tx.stage(incoming_thread_message(complaint, event))
    # The citizen's personal link (issue 17): its hash stored here, the link itself only sealed for the notifier.
    citizen_link = citizen_access.issue_link(tx, complaint, policy.citizen, issued_by=SYSTEM_ACTOR, now=now)
    log_change(tx, complaint, "registered", actor, None,
               {"message_key": event.message_key, "linked_number": linked_number,
                "sender_verdict": event.sender_verdict.value,
                "acknowledgment_suppressed": event.acknowledgment_suppressed, "channel": event.channel.value,
                "data_protection": complaint.data_protection}, at=now)
    tx.enqueue(ComplaintRegistered(
        complaint_number=number,
        message_key=event.message_key,
        channel=event.channel,
        received_at=event.received_at,
        legal_start=start,
        complainant=Party(name=sender.name, email=complaint.complainant_email,
                          postal_address=sender.postal_address, language=complaint.complainant_language),
        subject_line=event.subject_line,
        kind=complaint.kind,
        acknowledgment_due=complaint.acknowledgment_due,
        answer_due=complaint.answer_due,
        reply_to_message_id=event.message_id,
        references=tuple(r for r in (*event.references, event.message_id) if r),
        automated=event.automated,
        automated_reason=event.automated_reason,
        language=complaint.complainant_language,
        handler=Party(email=complaint.handler) if complaint.handler else None,
        service_concerned=complaint.service_concerned,
        sender_verdict=event.sender_verdict,
        acknowledgment_suppressed=event.acknowledgment_suppressed,
        citizen_link=citizen_link,
    ))
    if complaint.data_protection:
        # The DPO hears of a data-protection file when it is registered, not first from a deadline (issue 15).
        notice = dpo_notification(number, start, complaint.answer_due, dpo)
        if notice is not None:
            tx.enqueue(notice)
    return complaint


async def append_message(tx: Transaction, number: str, event: MessageReceived, *, policy: RegistryPolicy,
                         clock: RegisterClock, new_status: str | None, explanation: str, actor: str,
                         notify_sender: bool = True, change: str | None = "follow_up_appended") -> Complaint:
    """File a message in a case (resuming or reopening it when `new_status` says so), publish `MessageAppended`
    and, to a person who wrote, a receipt; `change` names its change-log entry (None: the caller logs its own)."""
    complaint = await locked_complaint(tx, number)
    tx.stage(incoming_thread_message(complaint, event))
    complaint.updated_at = clock.now()
    if change:
        # Every message that joins a file is part of its history, not only the status it may change (issue 4:
        # "every change is recorded with who, when and why").
        log_change(tx, complaint, change, actor, explanation or None, {
            "message_key": event.message_key, "message_id": event.message_id,
            "sender": (event.sender.email or "").strip().lower() or None, "subject": event.subject_line,
            "sender_verdict": event.sender_verdict.value,
            "acknowledgment_suppressed": event.acknowledgment_suppressed}, at=clock.now())
    stated = stated_facts(event)
    if stated:  # the citizen answered through their link, or staff typed a letter's metadata (issue 15)
        apply_facts(tx, complaint, stated, actor=actor, reason="stated in a follow-up", policy=policy, clock=clock)
    if new_status and new_status != complaint.status:
        before = state_of(complaint)
        change_status(tx, complaint, new_status, actor, explanation, clock=clock, policy=policy,
                      details={"message_key": event.message_key})
        # The citizen's reply ends the pause of a request for information (issue 15): recorded with its days.
        await information_requests.pause_ended(tx, complaint, before, actor=actor, clock=clock,
                                               message_key=event.message_key)
    tx.enqueue(MessageAppended(
        complaint_number=complaint.number,
        message_key=event.message_key,
        sender=event.sender,
        received_at=event.received_at,
        subject_line=event.subject_line,
        reply_to_message_id=event.message_id,
        automated=event.automated,
    ))
    # A person who asked for no automatic reply (X-Auto-Response-Suppress...) gets no receipt either.
    if notify_sender and not event.automated and not event.acknowledgment_suppressed and event.sender.email:
        await request_notice(tx, complaint, "follow_up_received", f"follow_up_received:{event.message_key}",
                             {"subject": event.subject_line}, recipient=event.sender, reply_to=event.message_id)
    return complaint


async def record_receipt(tx: Transaction, decision: RecordReceipt, event: MessageReceived, clock: RegisterClock
                         ) -> Complaint:
    """A read receipt of one of our notices, from the address it went to: an entry in the file's thread and
    history; no status change, no notice, no `MessageAppended` (it is no message of a party).

    Only its facts are kept: which notice, when, from which address, and the RFC 8098 disposition-type when
    intake read one ("displayed"...). Never the receipt's subject, text, attachments or raw original: whatever
    its sender wrote there has no place in a citizen's file."""
    complaint = await locked_complaint(tx, decision.number)
    disposition_of = stored_message_id(event.disposition_of)
    disposition = receipt_disposition(event.disposition or event.automated_reason)
    tx.stage(ThreadMessage(
        complaint_id=complaint.id,
        direction="in",
        message_key=event.message_key,
        message_id=stored_message_id(event.message_id),
        sender_name="",
        sender_email=sender_address(event.sender.email),
        recipient=None,
        subject_line="",
        body="",
        attachments=[],
        raw_object=None,
        automated=True,
        disposition_of=disposition_of,
        occurred_at=aware(event.received_at),
        **sender_trust(event),
    ))
    complaint.updated_at = clock.now()
    log_change(tx, complaint, "read_receipt", SYSTEM_ACTOR, None, {
        "message_key": event.message_key, "disposition_of": disposition_of,
        "notice_kind": decision.notice_kind, "disposition": disposition,
        "sender": sender_address(event.sender.email),
        "sender_verdict": event.sender_verdict.value}, at=clock.now())
    return complaint


def hold_message(tx: Transaction, event: MessageReceived, decision: Hold, clock: RegisterClock) -> HeldMessage:
    """Keep the message, whole, for staff to attach, register or discard, with the reason and ranked suggestions."""
    held = HeldMessage(
        message_key=event.message_key,
        reason=decision.reason.value,
        suggestions=[s.as_dict() for s in decision.suggestions],
        event=event.model_dump_json(),
        sender_email=sender_address(event.sender.email),
        subject_line=event.subject_line,
        received_at=aware(event.received_at),
        status="pending",
        created_at=clock.now(),
    )
    tx.stage(held)
    return held


def stated_facts(event: MessageReceived) -> dict[str, Any]:
    """The facts a follow-up states that the register takes as said: those of a message sent through the citizen's
    personal link (verified by the registry: `citizen_access.vouch`) and those staff typed for a scanned letter;
    never those of a mail (intake reads none from mail anyway). Only the facts given."""
    trusted = (event.citizen_link_proof is not None and event.sender_verdict is SenderVerdict.VERIFIED) \
        or event.channel is Channel.LETTER
    if not trusted:
        return {}
    return {name: getattr(event, name) for name in FACTS if getattr(event, name) is not None}


def apply_facts(tx: Transaction, complaint: Complaint, values: Mapping[str, Any], *, actor: str, reason: str | None,
                policy: RegistryPolicy, clock: RegisterClock, forget: Iterable[str] = ()) -> bool:
    """Record the facts screening weighs and screen again with them (the new proposal is what staff then confirm
    or override); False when nothing changed."""
    changes = set_changed(complaint, values, forget=forget)
    if not changes:
        return False
    details: dict[str, Any] = dict(changes)
    if policy.screening is not None:
        proposal = screen(screening_input_of(complaint), policy.screening).to_dict()
        details["proposal_admissible"] = proposal.get("admissible")
        complaint.screening_proposal = proposal
    complaint.updated_at = clock.now()
    log_change(tx, complaint, "facts", actor, reason, details, at=clock.now())
    return True


def screening_input_of(c: Complaint) -> ScreeningInput:
    """What screening reads of a registered complaint: what its first message said, and the facts on file."""
    return ScreeningInput(received=c.legal_start, sender_name=c.complainant_name, sender_email=c.complainant_email,
                          postal_address=c.complainant_postal_address, subject=c.subject_line, text=c.body,
                          language=c.complainant_language,
                          facts=ScreeningFacts(c.facts_date, c.last_step_date, c.first_line_contacted))


def set_changed(complaint: Complaint, values: Mapping[str, Any], *, forget: Iterable[str] = ()) -> dict[str, Any]:
    """Set the given columns (None: leave as is, unless the name is in `forget`) and return what changed, as
    {column: {"from": old, "to": new}} for the change log."""
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if (value is not None or name in set(forget)) and getattr(complaint, name) != value:
            changes[name] = {"from": getattr(complaint, name), "to": value}
            setattr(complaint, name, value)
    return changes
