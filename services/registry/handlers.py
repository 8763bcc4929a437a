"""Use cases of the registry: what happens to the register for each incoming event and each staff action.

Each use case runs in one transaction of the store and writes the events it causes into the outbox of that same
transaction; only after the commit does it hand them to the `EventPublisher` port. So a crash anywhere leaves either
nothing or a committed change whose events the outbox publishes later, never a change without its event.

Every use case is idempotent: a redelivered `MessageReceived` finds its complaint (or follow-up, or held message) by
`message_key` and re-publishes the very same event (same `Nats-Msg-Id`); a redelivered `NotificationSent` finds its
thread entry. A unique-constraint failure means another process just stored the same thing: the use case starts
again and finds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import structlog

from services.registry import deadlines, workflow
from services.registry.followups import (
    Attach,
    CaseFacts,
    Hold,
    MatchedBy,
    NoticeFacts,
    RecordReceipt,
    RegisterNew,
    decide,
    receipt_disposition,
)
from services.registry.models import (
    CaseParty,
    ChangeLogEntry,
    Complaint,
    DeadlineAlertRecord,
    HeldMessage,
    OutboxEvent,
    ThreadMessage,
)
from services.registry.numbering import NumberFormat
from services.registry.repository import IntegrityError, RegistryStore, Transaction, normalise_message_id
from services.registry.screening import ScreeningConfig, ScreeningInput, ScreeningProposal, screen
from services.registry.vocabulary import Kind, Status
from shared.events import (
    ComplaintChanged,
    ComplaintRegistered,
    DeadlineApproaching,
    DeadlineMissed,
    MessageAppended,
    MessageReceived,
    NoticeRequested,
    NotificationFailed,
    NotificationSent,
    Party,
    SenderVerdict,
)
from shared.messaging import PermanentError

log = structlog.get_logger(__name__)

SYSTEM_ACTOR = "registry"
ACKNOWLEDGMENT_NOTICES = frozenset({"acknowledgment", "acknowledgement"})
_RACE_RETRIES = 5
ResultT = TypeVar("ResultT")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def fit(column: Any, value: str | None) -> str | None:
    """Cut a value from outside to the bound of an indexed column (PostgreSQL refuses a longer one, which would
    turn a valid message into a dead letter). Unindexed free-text columns are unbounded `Text` (migration 0005)."""
    length = getattr(column.type, "length", None)
    return value[:length] if value is not None and length else value


def sender_address(email: str | None) -> str | None:
    """The sender's address as the register keys it: lower case, within the indexed column's bound."""
    return fit(Complaint.complainant_email, (email or "").strip().lower() or None)


def stored_message_id(value: str | None) -> str | None:
    return fit(ThreadMessage.message_id, normalise_message_id(value))


def aware(moment: datetime) -> datetime:
    """A timestamp without a zone (an older or foreign producer) is taken as UTC, the events' convention."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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


def is_read_receipt(event: MessageReceived) -> bool:
    """An automated read receipt (RFC 8098 MDN) naming the notice it reports on."""
    return bool(event.automated and stored_message_id(event.disposition_of))


class EventPublisher(Protocol):
    async def publish(self, rows: Sequence[OutboxEvent]) -> None: ...


class NotFound(LookupError):
    """No complaint (or held message) with that number (or id)."""


class Conflict(ValueError):
    """The action contradicts the register's state (already resolved, illegal transition...)."""


@dataclass(frozen=True)
class RegistryPolicy:
    number_format: NumberFormat
    rules: deadlines.DeadlineRules
    timezone: ZoneInfo
    reopen: workflow.ReopenPolicy
    screening: ScreeningConfig | None = None


@dataclass(frozen=True)
class Outcome:
    """What an incoming message became: registered, appended, held, or a replay of one of those."""

    action: str
    number: str | None = None
    replay: bool = False
    reason: str | None = None


def jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


class Registry:
    """The registry's use cases over a store (database port) and a publisher (event port)."""

    def __init__(
        self,
        store: RegistryStore,
        policy: RegistryPolicy,
        publisher: EventPublisher,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.policy = policy
        self.publisher = publisher
        self.clock = clock

    # --- incoming messages -----------------------------------------------------------------------------------------
    async def on_message_received(self, event: MessageReceived) -> Outcome:
        # Screening is pure and slow-ish: done before the transaction, so no lock is held meanwhile.
        proposal = self._screen(event, self.legal_start(event))
        outcome, _replayed = await self._in_transaction(
            f"message {event.message_key}", lambda tx: self._receive(tx, event, proposal),
            replayed=lambda result: result[1])
        log.info("registry.message_received", message_key=event.message_key, action=outcome.action,
                 complaint_number=outcome.number, replay=outcome.replay, reason=outcome.reason)
        return outcome

    async def _in_transaction(
        self,
        what: str,
        work: Callable[[Transaction], Awaitable[ResultT]],
        replayed: Callable[[ResultT], list[OutboxEvent]] = lambda _result: [],
    ) -> ResultT:
        """Run `work` in one transaction, then publish what it queued (after any `replayed` outbox rows it found).

        A unique-key race with a concurrent writer (two processes, or a redelivery, taking the same message or
        party) rolls the whole transaction back and runs `work` again on fresh state.
        """
        for _attempt in range(_RACE_RETRIES):
            try:
                async with self.store.transaction() as tx:
                    result = await work(tx)
                    to_publish = [*replayed(result), *tx.pending_events]
            except IntegrityError:
                log.info("registry.race_retry", what=what)
                continue
            await self.publisher.publish(to_publish)
            return result
        raise RuntimeError(f"{what} kept conflicting with concurrent writers")

    async def _receive(self, tx: Transaction, event: MessageReceived, proposal: ScreeningProposal | None
                       ) -> tuple[Outcome, list[OutboxEvent]]:
        found = await tx.find_message_key(event.message_key)
        if found is not None:
            return await self._replay(tx, event, *found)
        decision = await self._route(tx, event)
        if isinstance(decision, RegisterNew):
            complaint = await self._register(tx, event, proposal, linked_number=decision.linked_number)
            return Outcome("registered", complaint.number), []
        if isinstance(decision, Attach):
            await self._append(tx, decision.number, event, new_status=decision.new_status,
                               explanation=decision.explanation, actor=SYSTEM_ACTOR)
            return Outcome("appended", decision.number), []
        if isinstance(decision, RecordReceipt):
            await self._record_receipt(tx, decision, event)
            return Outcome("receipt", decision.number), []
        self._hold(tx, event, decision)
        return Outcome("held", None, reason=decision.reason.value), []

    async def _replay(self, tx: Transaction, event: MessageReceived, place: str, ref: int
                      ) -> tuple[Outcome, list[OutboxEvent]]:
        """A message seen before: re-publish the very event it caused (same dedup id), change nothing."""
        if place == "held":
            held = await tx.held_by_id(ref)
            return Outcome("held", None, replay=True, reason=held.reason if held else None), []
        complaint = await tx.complaint_by_id(ref)
        if place == "complaint":
            action, dedup_id = "registered", f"registered:{complaint.number}"
        elif is_read_receipt(event):
            return Outcome("receipt", complaint.number, replay=True), []  # its change-log event went out with it
        else:
            action, dedup_id = "appended", f"appended:{complaint.number}:{event.message_key}"
        row = await tx.outbox_by_dedup_id(dedup_id)
        return Outcome(action, complaint.number, replay=True), [row] if row else []

    async def _route(self, tx: Transaction, event: MessageReceived) -> RegisterNew | Attach | Hold:
        message_ids = [stored_message_id(event.in_reply_to), *(stored_message_id(r) for r in event.references)]
        header_cases = await tx.complaints_by_message_ids([m for m in message_ids if m])
        fmt = self.policy.number_format
        mentioned = [n for n in (fmt.normalise(c) for c in event.candidate_case_numbers) if n]
        mentioned += fmt.find_all(event.subject_line)
        mentioned = list(dict.fromkeys(mentioned))
        number_cases = await tx.complaints_by_numbers(mentioned)
        found = {c.number for c in number_cases}
        unknown = [n for n in mentioned if n not in found]
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
                ended_on=self.local_date(complaint.closed_at) if complaint.closed_at else None,
                received_at=complaint.received_at,
            )

        return decide(
            sender_email=sender,
            referenced=[facts(c, how) for c, how in referenced.values()],
            unknown_numbers=unknown,
            sender_cases=[facts(c, MatchedBy.SENDER) for c in own],
            automated=event.automated,
            today=self.today(),
            policy=self.policy.reopen,
            sender_failed=sender_failed,
            needs_confirmation=event.needs_confirmation,
            receipt=receipt,
            receipt_notices=receipt_notices,
        )

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.policy.timezone).date()

    def today(self) -> date:
        return self.local_date(self.clock())

    def legal_start(self, event: MessageReceived) -> date:
        """For letters the date received (not the scan date); for email the receipt day in the service's zone."""
        if event.letter_received_on is not None:
            return event.letter_received_on
        return self.local_date(aware(event.received_at))

    async def _register(self, tx: Transaction, event: MessageReceived, proposal: ScreeningProposal | None, *,
                        linked_number: str | None = None, actor: str = SYSTEM_ACTOR) -> Complaint:
        now = self.clock()
        legal_start = self.legal_start(event)
        sequence = await tx.next_sequence(legal_start.year)
        number = self.policy.number_format.format(legal_start.year, sequence)
        rules = self.policy.rules
        sender = event.sender
        complaint = Complaint(
            number=number,
            year=legal_start.year,
            sequence=sequence,
            message_key=event.message_key,
            kind=proposal.kind if proposal else Kind.COMPLAINT.value,
            channel=event.channel.value,
            received_at=aware(event.received_at),
            legal_start=legal_start,
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
            handler=self._dpo_email() if proposal and proposal.route_to_dpo else None,
            admissibility="pending",
            admissibility_reasons=[],
            screening_proposal=proposal.to_dict() if proposal else None,
            status=Status.RECEIVED.value,
            acknowledgment_due=deadlines.acknowledgment_due(legal_start, rules),
            answer_due=deadlines.answer_due(legal_start, rules),
            answer_extended=False,
            paused_days=0,
            recommendations=[],
            linked_number=linked_number,
            automated=event.automated,
            acknowledgment_suppressed=event.acknowledgment_suppressed,
            created_at=now,
            updated_at=now,
            **sender_trust(event),
        )
        await tx.add(complaint)
        if complaint.complainant_email:
            tx.stage(CaseParty(complaint_id=complaint.id, email=complaint.complainant_email, role="complainant",
                               added_by=actor, added_at=now))
        tx.stage(self._incoming_thread_message(complaint.id, event))
        self.log_change(tx, complaint, "registered", actor, None,
                        {"message_key": event.message_key, "linked_number": linked_number,
                         "sender_verdict": event.sender_verdict.value,
                         "acknowledgment_suppressed": event.acknowledgment_suppressed})
        tx.enqueue(ComplaintRegistered(
            complaint_number=number,
            message_key=event.message_key,
            channel=event.channel,
            received_at=event.received_at,
            legal_start=legal_start,
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
        ))
        return complaint

    def _screen(self, event: MessageReceived, legal_start: date) -> ScreeningProposal | None:
        """The screening proposal staff will confirm or override; its kind, theme and service are filed at once."""
        if self.policy.screening is None:
            return None
        return screen(ScreeningInput(
            received=legal_start,
            sender_name=event.sender.name,
            sender_email=event.sender.email,
            postal_address=event.sender.postal_address,
            subject=event.subject_line,
            text=event.text,
            language=event.language or event.sender.language,
        ), self.policy.screening)

    def _dpo_email(self) -> str | None:
        dpo = self.policy.screening.dpo if self.policy.screening else None
        return dpo.email if dpo else None

    def _incoming_thread_message(self, complaint_id: int, event: MessageReceived) -> ThreadMessage:
        return ThreadMessage(
            complaint_id=complaint_id,
            direction="in",
            message_key=event.message_key,
            message_id=stored_message_id(event.message_id),
            sender_name=event.sender.name,
            sender_email=(event.sender.email or "").strip().lower() or None,
            recipient=", ".join(event.recipients) or None,
            subject_line=event.subject_line,
            body=event.text,
            attachments=[a.model_dump() for a in event.attachments],
            raw_object=event.raw_object,
            automated=event.automated,
            occurred_at=aware(event.received_at),
            **sender_trust(event),
        )

    async def _append(self, tx: Transaction, number: str, event: MessageReceived, *, new_status: str | None,
                      explanation: str, actor: str, notify_sender: bool = True,
                      change: str | None = "follow_up_appended") -> Complaint:
        """File a message in a case; `change` names its change-log entry (None: the caller logs its own)."""
        complaint = await tx.complaint_by_number(number, for_update=True)
        if complaint is None:
            raise NotFound(number)
        tx.stage(self._incoming_thread_message(complaint.id, event))
        complaint.updated_at = self.clock()
        if change:
            # Every message that joins a file is part of its history, not only the status it may change (issue 4:
            # "every change is recorded with who, when and why").
            self.log_change(tx, complaint, change, actor, explanation or None, {
                "message_key": event.message_key, "message_id": event.message_id,
                "sender": (event.sender.email or "").strip().lower() or None, "subject": event.subject_line,
                "sender_verdict": event.sender_verdict.value,
                "acknowledgment_suppressed": event.acknowledgment_suppressed})
        if new_status and new_status != complaint.status:
            await self._set_status(tx, complaint, new_status, actor, explanation,
                                   details={"message_key": event.message_key})
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
            await self._request_notice(tx, complaint, "follow_up_received", f"follow_up_received:{event.message_key}",
                                       {"subject": event.subject_line}, recipient=event.sender,
                                       reply_to=event.message_id)
        return complaint

    async def _record_receipt(self, tx: Transaction, decision: RecordReceipt, event: MessageReceived) -> Complaint:
        """A read receipt of one of our notices, from the address it went to: an entry in the file's thread and
        history; no status change, no notice, no `MessageAppended` (it is no message of a party).

        Only its facts are kept: which notice, when, from which address, and the RFC 8098 disposition-type when
        intake read one ("displayed"...). Never the receipt's subject, text, attachments or raw original: whatever
        its sender wrote there has no place in a citizen's file."""
        complaint = await tx.complaint_by_number(decision.number, for_update=True)
        if complaint is None:
            raise NotFound(decision.number)
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
        complaint.updated_at = self.clock()
        self.log_change(tx, complaint, "read_receipt", SYSTEM_ACTOR, None, {
            "message_key": event.message_key, "disposition_of": disposition_of,
            "notice_kind": decision.notice_kind, "disposition": disposition,
            "sender": sender_address(event.sender.email),
            "sender_verdict": event.sender_verdict.value})
        return complaint

    def _hold(self, tx: Transaction, event: MessageReceived, decision: Hold) -> HeldMessage:
        held = HeldMessage(
            message_key=event.message_key,
            reason=decision.reason.value,
            suggestions=[s.as_dict() for s in decision.suggestions],
            event=event.model_dump_json(),
            sender_email=sender_address(event.sender.email),
            subject_line=event.subject_line,
            received_at=aware(event.received_at),
            status="pending",
            created_at=self.clock(),
        )
        tx.stage(held)
        return held

    def log_change(self, tx: Transaction, complaint: Complaint, change: str, actor: str, reason: str | None,
                   details: dict[str, Any]) -> ChangeLogEntry:
        """Record who changed what, when and why; the same transaction queues it as `ComplaintChanged`."""
        entry = ChangeLogEntry(complaint_id=complaint.id, change_id=uuid.uuid4().hex, change=change, actor=actor,
                               reason=reason, details=jsonable(details), at=self.clock())
        tx.stage(entry)
        tx.enqueue(ComplaintChanged(complaint_number=complaint.number, change=change, actor=actor,
                                          reason=reason, details=entry.details, change_id=entry.change_id))
        return entry

    # --- outgoing mail ---------------------------------------------------------------------------------------------
    async def on_notification_sent(self, event: NotificationSent) -> bool:
        """Record a notice we sent in the case's thread (its Message-ID then matches the citizen's reply)."""
        return await self._in_transaction(f"notification {event.notification_key}",
                                          lambda tx: self._record_sent(tx, event))

    async def _record_sent(self, tx: Transaction, event: NotificationSent) -> bool:
        complaint = await tx.complaint_by_number(event.complaint_number, for_update=True)
        if complaint is None:
            raise PermanentError(f"notification for unknown complaint {event.complaint_number}")
        key = f"out:{event.notification_key}"
        if await tx.thread_message_by_key(key) is not None:
            return False
        tx.stage(ThreadMessage(
            complaint_id=complaint.id,
            direction="out",
            message_key=key,
            message_id=stored_message_id(event.message_id),
            sender_name="",
            sender_email=None,
            recipient=event.recipient,
            subject_line=event.subject_line,
            body="",
            notice_kind=event.notice_kind,
            attachments=[],
            automated=False,
            occurred_at=aware(event.occurred_at),
        ))
        failed = await tx.thread_message_by_key(f"failed:{event.notification_key}") is not None
        if event.notice_kind in ACKNOWLEDGMENT_NOTICES and complaint.acknowledged_at is None and not failed:
            complaint.acknowledged_at = aware(event.occurred_at)
            complaint.updated_at = self.clock()
            if complaint.status == Status.RECEIVED:
                await self._set_status(tx, complaint, Status.ACKNOWLEDGED.value, SYSTEM_ACTOR, "acknowledgment sent",
                                       details={"message_id": event.message_id})
        return True

    async def on_notification_failed(self, event: NotificationFailed) -> bool:
        """Record a notice the notifier gave up on, in the thread and the change log, so staff see the citizen was
        not told. A failed acknowledgment does not count as one: the acknowledgment deadline stays open."""
        return await self._in_transaction(f"notification {event.notification_key}",
                                          lambda tx: self._record_failed(tx, event))

    async def _record_failed(self, tx: Transaction, event: NotificationFailed) -> bool:
        complaint = await tx.complaint_by_number(event.complaint_number, for_update=True)
        if complaint is None:
            raise PermanentError(f"failed notification for unknown complaint {event.complaint_number}")
        key = f"failed:{event.notification_key}"
        if await tx.thread_message_by_key(key) is not None:
            return False
        tx.stage(ThreadMessage(
            complaint_id=complaint.id,
            direction="out",
            message_key=key,
            message_id=None,
            sender_name="",
            sender_email=None,
            recipient=event.recipient,
            subject_line="",
            body=event.reason,
            notice_kind=event.notice_kind,
            attachments=[],
            automated=False,
            occurred_at=aware(event.occurred_at),
        ))
        details: dict[str, Any] = {"notification_key": event.notification_key, "notice_kind": event.notice_kind,
                                   "recipient": event.recipient}
        sent = await tx.thread_message_by_key(f"out:{event.notification_key}")
        if (event.notice_kind in ACKNOWLEDGMENT_NOTICES and sent is not None
                and complaint.acknowledged_at == sent.occurred_at):
            # The same notice was first reported sent (e.g. accepted by the relay, then refused): undo what it did.
            details["acknowledged_at_cleared"] = complaint.acknowledged_at
            complaint.acknowledged_at = None
            if complaint.status == Status.ACKNOWLEDGED:
                # `_record_sent` moved the file to "acknowledged"; the citizen was not told after all, so staff must
                # not read it as acknowledged. A correction of the system's own step, not a workflow transition,
                # logged as a status change like every other (the file's history shows it).
                details["status_reverted"] = {"from": Status.ACKNOWLEDGED.value, "to": Status.RECEIVED.value}
                complaint.status = Status.RECEIVED.value
                self.log_change(tx, complaint, "status", SYSTEM_ACTOR, "acknowledgment failed",
                                {"from": Status.ACKNOWLEDGED.value, "to": Status.RECEIVED.value,
                                 "notification_key": event.notification_key})
        complaint.updated_at = self.clock()
        self.log_change(tx, complaint, "notification_failed", SYSTEM_ACTOR, event.reason, details)
        return True

    # --- holding pen -----------------------------------------------------------------------------------------------
    async def attach_held(self, held_id: int, number: str, actor: str, *, add_correspondent: bool = False) -> Outcome:
        """Staff attach a held message to a case (optionally accepting its sender as a correspondent)."""
        async with self.store.transaction() as tx:
            held = await self._pending_held(tx, held_id)
            event = MessageReceived.model_validate_json(held.event)
            # The sender hears back only once staff admitted them as a party: a receipt names the case.
            complaint = await self._append(tx, number, event, new_status=None, explanation="", actor=actor,
                                           notify_sender=add_correspondent, change=None)
            if add_correspondent and held.sender_email:
                await tx.add_party(complaint.id, held.sender_email, "correspondent", actor)
            self.log_change(tx, complaint, "follow_up_attached", actor, f"from holding pen ({held.reason})",
                                  {"message_key": held.message_key, "sender": held.sender_email,
                                   "correspondent_added": add_correspondent})
            self._resolve(held, "attached", actor, complaint.number)
            to_publish = list(tx.pending_events)
        await self.publisher.publish(to_publish)
        return Outcome("appended", number)

    async def register_held(self, held_id: int, actor: str) -> Outcome:
        """Staff decide a held message is a new complaint."""
        async with self.store.transaction() as tx:
            held = await self._pending_held(tx, held_id)
            event = MessageReceived.model_validate_json(held.event)
            complaint = await self._register(tx, event, self._screen(event, self.legal_start(event)), actor=actor)
            self._resolve(held, "registered", actor, complaint.number)
            to_publish = list(tx.pending_events)
        await self.publisher.publish(to_publish)
        return Outcome("registered", complaint.number)

    async def discard_held(self, held_id: int, actor: str) -> Outcome:
        async with self.store.transaction() as tx:
            held = await self._pending_held(tx, held_id)
            self._resolve(held, "discarded", actor, None)
        return Outcome("discarded", None)

    async def _pending_held(self, tx: Transaction, held_id: int) -> HeldMessage:
        held = await tx.held_by_id(held_id, for_update=True)
        if held is None:
            raise NotFound(f"no held message {held_id}")
        if held.status != "pending":
            raise Conflict(f"held message {held_id} was already {held.status}")
        return held

    def _resolve(self, held: HeldMessage, status: str, actor: str, number: str | None) -> None:
        held.status = status
        held.resolved_by = actor
        held.resolved_at = self.clock()
        held.resolved_number = number

    # --- parties ---------------------------------------------------------------------------------------------------
    async def add_correspondent(self, number: str, email: str, actor: str, reason: str | None = None) -> bool:
        """Accept `email` as a party of the case (its follow-ups then attach); False if it already was one."""
        address = sender_address(email)
        if address is None:
            raise Conflict("a correspondent needs an email address")
        added = False

        async def apply(tx: Transaction, complaint: Complaint) -> None:
            nonlocal added
            added = await tx.add_party(complaint.id, address, "correspondent", actor)
            if added:
                self.log_change(tx, complaint, "correspondent_added", actor, reason, {"email": address})

        await self._staff_action(number, apply)
        return added

    # --- status, notices and staff actions -------------------------------------------------------------------------
    async def _set_status(
        self,
        tx: Transaction,
        complaint: Complaint,
        target: str,
        actor: str,
        reason: str | None,
        *,
        outcome: str | None = None,
        category: str | None = None,
        reasons: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> ChangeLogEntry:
        """Apply a legal status change with its bookkeeping (pause clock, end date, outcome) and log it."""
        current = complaint.status
        try:
            destination = workflow.check_transition(current, target, outcome=outcome, category=category,
                                                    reasons=reasons)
        except workflow.IllegalTransition as error:
            raise Conflict(str(error)) from error
        now, today = self.clock(), self.today()
        if current == Status.WAITING_FOR_CITIZEN and complaint.paused_since is not None:
            # The clock stood still while we waited for the citizen: the answer deadline moves by those days.
            complaint.paused_days += (today - complaint.paused_since).days
            complaint.paused_since = None
            complaint.answer_due = deadlines.answer_due(complaint.legal_start, self.policy.rules,
                                                        extended=complaint.answer_extended,
                                                        paused_days=complaint.paused_days)
        if destination is Status.WAITING_FOR_CITIZEN:
            complaint.paused_since = today
        if destination is Status.ACKNOWLEDGED and complaint.acknowledged_at is None:
            complaint.acknowledged_at = now
        if destination is Status.ANSWERED and complaint.answered_at is None:
            complaint.answered_at = now
        if destination in workflow.TERMINAL_STATUSES:
            complaint.closed_at = now
        elif current in workflow.TERMINAL_STATUSES:
            complaint.closed_at = None  # reopened
        if destination is Status.CLOSED:
            complaint.outcome = outcome
            complaint.outcome_category = category
        if destination is Status.INADMISSIBLE:
            complaint.admissibility = "inadmissible"
            complaint.admissibility_reasons = list(reasons)
        complaint.status = destination.value
        complaint.updated_at = now
        return self.log_change(tx, complaint, "status", actor, reason, {
            "from": current, "to": destination.value, "outcome": outcome, "category": category,
            "reasons": list(reasons), **(details or {}),
        })

    async def _thread_references(self, tx: Transaction, complaint: Complaint) -> tuple[str | None, tuple[str, ...]]:
        """The citizen's first message (to answer) and every Message-ID of the thread (RFC 5322 3.6.4)."""
        thread = await tx.thread(complaint.id)
        ids = tuple(f"<{m.message_id}>" for m in thread if m.message_id)
        first_in = next((f"<{m.message_id}>" for m in thread if m.direction == "in" and m.message_id), None)
        return first_in, ids

    async def _request_notice(self, tx: Transaction, complaint: Complaint, kind: str, key: str,
                              context: dict[str, Any], *, recipient: Party | None = None,
                              reply_to: str | None = None) -> None:
        """Ask the notifier for a notice to the citizen (it sends each `request_key` at most once)."""
        party = recipient or Party(name=complaint.complainant_name, email=complaint.complainant_email,
                                   postal_address=complaint.complainant_postal_address,
                                   language=complaint.complainant_language)
        if not party.email and not party.postal_address:
            return
        first_in, references = await self._thread_references(tx, complaint)
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

    async def _staff_action(self, number: str, action: Callable[[Transaction, Complaint], Any]) -> Complaint:
        """Run `action` on the locked complaint in one transaction; a unique-key race (two staff adding the same
        correspondent) rolls it back and runs it again on fresh state, like the event use cases."""

        async def on_locked_complaint(tx: Transaction) -> Complaint:
            complaint = await tx.complaint_by_number(number.strip().upper(), for_update=True)
            if complaint is None:
                raise NotFound(f"no complaint {number}")
            await action(tx, complaint)
            return complaint

        return await self._in_transaction(f"complaint {number}", on_locked_complaint)

    async def transition(
        self,
        number: str,
        target: str,
        actor: str,
        reason: str | None = None,
        *,
        outcome: str | None = None,
        category: str | None = None,
        reasons: Sequence[str] = (),
        redirect_to: str | None = None,
        answer_text: str | None = None,
    ) -> Complaint:
        """A staff status change; inadmissible, redirected and answered also ask the notifier for their notice."""
        # Refused here rather than dead-lettered by the notifier later: the citizen must get a notice that says
        # something (the answer itself, the ombudsman to turn to).
        if target == Status.ANSWERED and not (answer_text or "").strip():
            raise Conflict("an answer needs its text (the final answer sent to the citizen)")
        if target == Status.REDIRECTED and not (redirect_to or "").strip():
            raise Conflict("a redirection needs the competent ombudsman (redirect_to, an id of the directory)")

        async def apply(tx: Transaction, complaint: Complaint) -> None:
            entry = await self._set_status(tx, complaint, target, actor, reason, outcome=outcome,
                                           category=category, reasons=reasons,
                                           details={"redirect_to": redirect_to} if redirect_to else None)
            if target == Status.REDIRECTED:
                complaint.redirected_to = redirect_to
            if target == Status.INADMISSIBLE:
                await self._request_notice(tx, complaint, "inadmissible", entry.change_id,
                                           {"reasons": list(reasons), "explanation": reason})
            elif target == Status.REDIRECTED:
                await self._request_notice(tx, complaint, "redirected", entry.change_id,
                                           {"ombudsman": self._ombudsman(redirect_to, complaint),
                                            "explanation": reason})
            elif target == Status.ANSWERED:
                await self._request_notice(tx, complaint, "final_answer", entry.change_id,
                                           {"answer": answer_text or "", "explanation": reason})

        return await self._staff_action(number, apply)

    def _ombudsman(self, ombudsman_id: str | None, complaint: Complaint) -> dict[str, Any] | None:
        if not ombudsman_id or self.policy.screening is None:
            return {"id": ombudsman_id} if ombudsman_id else None
        for entry in self.policy.screening.directory:
            if entry.id == ombudsman_id:
                return {"id": entry.id, "name": entry.name(complaint.complainant_language), **entry.contact()}
        raise Conflict(f"unknown ombudsman {ombudsman_id!r} (not in the directory)")

    async def assign(self, number: str, handler: str | None, actor: str, reason: str | None = None) -> Complaint:
        async def apply(tx: Transaction, complaint: Complaint) -> None:
            previous, complaint.handler = complaint.handler, handler
            complaint.updated_at = self.clock()
            self.log_change(tx, complaint, "assignment", actor, reason, {"from": previous, "to": handler})

        return await self._staff_action(number, apply)

    async def classify(self, number: str, actor: str, reason: str | None = None, *, kind: str | None = None,
                       theme: str | None = None, service: str | None = None) -> Complaint:
        """Confirm or override the kind, theme and service suggested by screening."""
        if kind is not None and kind not in {k.value for k in Kind}:
            raise Conflict(f"unknown kind {kind!r}; expected one of: {', '.join(k.value for k in Kind)}")
        if service is not None and fit(Complaint.service_concerned, service) != service:
            raise Conflict(f"a service is named in at most {Complaint.service_concerned.type.length} characters")

        async def apply(tx: Transaction, complaint: Complaint) -> None:
            changes: dict[str, Any] = {}
            for field_name, value in (("kind", kind), ("theme", theme), ("service_concerned", service)):
                if value is not None and getattr(complaint, field_name) != value:
                    changes[field_name] = {"from": getattr(complaint, field_name), "to": value}
                    setattr(complaint, field_name, value)
            if changes:
                complaint.updated_at = self.clock()
                self.log_change(tx, complaint, "classification", actor, reason, changes)

        return await self._staff_action(number, apply)

    async def confirm_screening(self, number: str, actor: str, reason: str | None = None, *,
                                admissible: bool | None = None, reasons: Sequence[str] | None = None,
                                redirect_to: str | None = None) -> Complaint:
        """Staff confirm the screening proposal (no arguments) or override it; an inadmissible or redirect
        decision changes the status and asks for its notice."""
        current = await self.store.complaint(number.strip().upper())
        if current is None:
            raise NotFound(f"no complaint {number}")
        proposal = current.screening_proposal or {}
        decided_reasons = list(reasons) if reasons is not None else [r["code"] for r in proposal.get("reasons", [])]
        if admissible is None:
            admissible = not decided_reasons
        if admissible:
            async def apply(tx: Transaction, complaint: Complaint) -> None:
                complaint.admissibility = "admissible"
                complaint.admissibility_reasons = []
                complaint.updated_at = self.clock()
                self.log_change(tx, complaint, "screening", actor, reason,
                                      {"admissible": True, "proposal_admissible": proposal.get("admissible")})

            return await self._staff_action(number, apply)
        if not decided_reasons:
            raise Conflict("an inadmissibility decision must state its reasons")
        target_ombudsman = redirect_to
        if target_ombudsman is None and "out_of_competence" in decided_reasons and proposal.get("redirect"):
            target_ombudsman = proposal["redirect"][0]["id"]
        if target_ombudsman:
            return await self.transition(number, Status.REDIRECTED.value, actor, reason, redirect_to=target_ombudsman)
        return await self.transition(number, Status.INADMISSIBLE.value, actor, reason, reasons=decided_reasons)

    async def extend(self, number: str, actor: str, reason: str | None = None) -> Complaint:
        """The one extension of the answer deadline, announced to the citizen before the original deadline."""

        async def apply(tx: Transaction, complaint: Complaint) -> None:
            today = self.today()
            try:
                new_due = deadlines.validate_extension(
                    complaint.legal_start, self.policy.rules, notified_on=today, today=today,
                    already_extended=complaint.answer_extended, paused_days=complaint.paused_days)
            except deadlines.ExtensionRefused as error:
                raise Conflict(str(error)) from error
            previous = complaint.answer_due
            complaint.answer_due, complaint.answer_extended = new_due, True
            complaint.updated_at = self.clock()
            entry = self.log_change(tx, complaint, "extension", actor, reason,
                                          {"from": previous, "to": new_due})
            await self._request_notice(tx, complaint, "extension", entry.change_id,
                                       {"previous_due": previous, "answer_due": new_due, "explanation": reason})

        return await self._staff_action(number, apply)

    async def add_recommendation(self, number: str, text: str, actor: str) -> Complaint:
        """A recommendation or improvement action drawn from the complaint (counted in the annual indicators)."""

        async def apply(tx: Transaction, complaint: Complaint) -> None:
            complaint.recommendations = [*complaint.recommendations, text]
            complaint.updated_at = self.clock()
            self.log_change(tx, complaint, "recommendation", actor, None, {"text": text})

        return await self._staff_action(number, apply)

    # --- deadline alerts -------------------------------------------------------------------------------------------
    async def raise_deadline_alerts(self, complaint: Complaint, lead_days: Sequence[int]) -> int:
        """Publish the deadline alerts now due for one complaint, each once: the alert's key is stored in the same
        transaction as its event (a concurrent watcher in another process hits the unique key and backs off)."""
        open_deadlines: dict[deadlines.DeadlineKind, date | None] = {}
        if complaint.acknowledged_at is None:
            open_deadlines[deadlines.DeadlineKind.ACKNOWLEDGMENT] = complaint.acknowledgment_due
        if complaint.answered_at is None and not workflow.clock_paused(complaint.status):
            open_deadlines[deadlines.DeadlineKind.ANSWER] = complaint.answer_due
        alerts = deadlines.alerts_due(open_deadlines, self.today(), lead_days)
        if not alerts:
            return 0
        try:
            async with self.store.transaction() as tx:
                raised = await tx.alert_keys(complaint.id)
                fresh = [alert for alert in alerts if alert.key not in raised]
                for alert in fresh:
                    tx.stage(DeadlineAlertRecord(complaint_id=complaint.id, alert_key=alert.key,
                                                 raised_at=self.clock()))
                    event_class = DeadlineMissed if alert.alert is deadlines.AlertKind.MISSED else DeadlineApproaching
                    tx.enqueue(event_class(
                        complaint_number=complaint.number,
                        deadline_kind=alert.deadline.value,
                        due=alert.due,
                        handler=Party(email=complaint.handler) if complaint.handler else None,
                        service_concerned=complaint.service_concerned,
                        subject_line=complaint.subject_line,
                        lead_days=alert.lead_days or 0,
                    ))
                to_publish = list(tx.pending_events)
        except IntegrityError:
            return 0  # another registry process raised them at the same moment
        await self.publisher.publish(to_publish)
        return len(fresh)
