"""The administration concerned as a party to the file (issue 15): the directory, requests for its position, its
reply threaded into the file, the reminder and the "no answer" warning (rules in `administrations.py`).

- `SaveAdministration`: add or change a directory entry (by key).
- `RequestPosition`: the `position_request` notice to the administration, in its language, by email (to its first
  address) or, without one, as a printed letter (the notifier's print queue); its addresses are admitted as parties
  of THIS file only (role "administration"): its reply attaches by our Message-ID in In-Reply-To/References or by
  the number in the subject, exactly as a citizen's does, and its mail about another file does not. No References
  to the citizen's messages go with the request (the administration learns what staff wrote, nothing else).
- The reply (`file_administration_reply`, called by the `MessageReceived` handler when a message is to be attached
  and its sender is an administration of that file): filed in the thread with the party "administration", hidden
  from the citizen, the oldest open request of that administration answered; no status change (a file waiting for
  the citizen stays so), no receipt to anyone, no `MessageAppended`.
- `ShareAdministrationMessage`: staff decide the citizen may see one of those messages (or no longer).
- `SweepPositionRequests` (the watcher's `SWEEPS`): the reminder (`position_reminder` to the administration, and
  `DeadlineApproaching` to the handler) and the "no answer" warning (`DeadlineMissed`), both with
  `deadline_kind="position_request"`, each once per request (its `reminded_at` / `missed_at`, written in the
  transaction that queues the events), in pages of bounded size; requests of a file that ended are skipped.
- `position_outcomes`: what the annual indicators count of the requests of a year (`reports.annual_report`).
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.registry.mediation import administrations as rules
from services.registry.commands import (
    RequestPosition,
    SaveAdministration,
    ShareAdministrationMessage,
    SweepPositionRequests,
)
from services.registry.followups import Hold, HoldReason, Suggestion
from services.registry.handlers.backoffice import request_key
from services.registry.handlers.ports import Conflict, NotFound, RegisterClock
from services.registry.handlers.records import (
    SYSTEM_ACTOR,
    aware,
    incoming_thread_message,
    locked_complaint,
    log_change,
    sender_address,
)
from services.registry.models import Administration, CaseParty, Complaint, PositionRequest
from services.registry.repository import RegistryStore, Transaction
from services.registry.unit_of_work import UnitOfWork
from shared.database import read_only
from shared.events import DeadlineApproaching, DeadlineMissed, MessageReceived, NoticeRequested, Party


# --- the directory ---------------------------------------------------------------------------------------------------
async def save_administration(command: SaveAdministration, *, uow: UnitOfWork, clock: RegisterClock) -> int:
    """Add the entry, or change the one with the same key; returns its id."""
    try:
        entry = rules.checked_entry(key=command.key, name=command.name, emails=command.emails,
                                    postal_address=command.postal_address, language=command.language,
                                    contact_person=command.contact_person, answer_days=command.answer_days,
                                    active=command.active)
    except rules.InvalidEntry as error:
        raise Conflict(str(error)) from error

    async def save(tx: Transaction) -> int:
        row = (await tx.session.execute(
            select(Administration).where(Administration.key == entry.key).with_for_update())).scalar_one_or_none()
        values = {"name": entry.name, "emails": list(entry.emails), "postal_address": entry.postal_address,
                  "language": entry.language, "contact_person": entry.contact_person,
                  "answer_days": entry.answer_days, "active": entry.active}
        if row is None:
            row = Administration(key=entry.key, created_at=clock.now(), updated_at=clock.now(), **values)
            await tx.add(row)
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = clock.now()
        return row.id

    return await uow.run(f"administration {entry.key}", save)


def entry_of(row: Administration) -> rules.DirectoryEntry:
    return rules.DirectoryEntry(key=row.key, name=row.name, emails=tuple(row.emails or ()),
                                postal_address=row.postal_address, language=row.language,
                                contact_person=row.contact_person, answer_days=row.answer_days, active=row.active)


# --- a request for the administration's position ---------------------------------------------------------------------
def _notice_key(kind: str, number: str, key: str) -> str:
    """The `NoticeRequested.request_key` of a request's notice (the notifier's notification key is "notice:" + it;
    the thread entry of the notice sent is "out:" + that)."""
    return f"{kind}:{number}:{key}"


def _recipient(administration: Administration) -> Party:
    emails = list(administration.emails or ())
    return Party(name=administration.contact_person or administration.name, email=emails[0] if emails else None,
                 postal_address=administration.postal_address, language=administration.language)


def _context(complaint: Complaint, administration: Administration, request: PositionRequest) -> dict[str, Any]:
    return {"complaint_number": complaint.number, "language": request.language,
            "administration_name": administration.name, "contact_person": administration.contact_person,
            "questions": request.text, "requested_on": request.requested_on.isoformat(),
            "due": request.due.isoformat()}


async def request_position(command: RequestPosition, *, uow: UnitOfWork, clock: RegisterClock) -> PositionRequest:
    try:
        text = rules.request_text(command.text)
    except ValueError as error:
        raise Conflict(str(error)) from error
    key = request_key(command.request_key)
    if command.reminder_days < 0:
        raise Conflict("a reminder is sent a number of days (0 or more) before the deadline")

    async def ask(tx: Transaction) -> PositionRequest:
        complaint = await locked_complaint(tx, command.number)
        done = (await tx.session.execute(
            select(PositionRequest).where(PositionRequest.request_key == key))).scalar_one_or_none()
        if done is not None:
            return done
        administration = await tx.session.get(Administration, command.administration_id)
        if administration is None:
            raise NotFound(f"no administration {command.administration_id}")
        if not administration.active:
            raise Conflict(f"administration {administration.key} is no longer active")
        if not administration.emails and not administration.postal_address:
            raise Conflict(f"administration {administration.key} has neither an email nor a postal address")
        now, today = clock.now(), clock.today()
        dates = rules.request_dates(today, administration.answer_days, command.reminder_days)
        emails = list(administration.emails or ())
        request = PositionRequest(
            complaint_id=complaint.id, administration_id=administration.id, request_key=key, text=text,
            language=administration.language, recipient_email=emails[0] if emails else None,
            requested_by=command.actor, requested_at=now, requested_on=today, due=dates.due,
            remind_on=dates.remind_on)
        await tx.add(request)
        admitted = [email for email in emails
                    if await tx.add_party(complaint.id, email, rules.ADMINISTRATION, command.actor)]
        complaint.updated_at = now
        log_change(tx, complaint, "position_requested", command.actor, None, {
            "request_id": request.id, "administration": administration.key, "name": administration.name,
            "due": dates.due, "remind_on": dates.remind_on, "channel": "email" if emails else "letter",
            "admitted": admitted, "text": text}, at=now)
        tx.enqueue(NoticeRequested(
            request_key=_notice_key(rules.REQUEST_NOTICE, complaint.number, key),
            complaint_number=complaint.number, notice_kind=rules.REQUEST_NOTICE,
            recipient=_recipient(administration), context=_context(complaint, administration, request)))
        return request

    return await uow.run(f"complaint {command.number}", ask)


async def share_administration_message(command: ShareAdministrationMessage, *, uow: UnitOfWork,
                                       clock: RegisterClock) -> bool:
    """Set whether the citizen may see an administration's message of this file; False if it already was so."""

    async def share(tx: Transaction) -> bool:
        complaint = await locked_complaint(tx, command.number)
        message = await tx.thread_message_by_key(command.message_key)
        if message is None or message.complaint_id != complaint.id or message.party != rules.ADMINISTRATION:
            raise NotFound(f"no message of an administration {command.message_key[:80]!r} in {complaint.number}")
        if bool(message.citizen_visible) == command.visible:
            return False
        message.citizen_visible = command.visible
        complaint.updated_at = clock.now()
        log_change(tx, complaint, "administration_message_shared" if command.visible
                   else "administration_message_hidden", command.actor, command.reason,
                   {"message_key": message.message_key}, at=clock.now())
        return True

    return await uow.run(f"complaint {command.number}", share)


# --- the administration's reply, from the `MessageReceived` handler --------------------------------------------------
async def file_administration_reply(tx: Transaction, number: str, event: MessageReceived, clock: RegisterClock
                                    ) -> Complaint | None:
    """File `event` as an administration's message in case `number` when its sender is an administration of that
    file (None otherwise: the caller files it as a party's message). The oldest open request of an administration
    with that address is answered by it."""
    sender = sender_address(event.sender.email)
    if sender is None:
        return None
    complaint = await locked_complaint(tx, number)
    role = (await tx.session.execute(select(CaseParty.role).where(
        CaseParty.complaint_id == complaint.id, CaseParty.email == sender))).scalar_one_or_none()
    if role != rules.ADMINISTRATION:
        return None
    entry = incoming_thread_message(complaint, event)
    entry.party, entry.citizen_visible = rules.ADMINISTRATION, False
    tx.stage(entry)
    open_requests = (await tx.session.execute(
        select(PositionRequest, Administration)
        .join(Administration, Administration.id == PositionRequest.administration_id)
        .where(PositionRequest.complaint_id == complaint.id, PositionRequest.answered_at.is_(None))
        .order_by(PositionRequest.requested_at, PositionRequest.id).with_for_update(of=PositionRequest))).all()
    answered = next((request for request, administration in open_requests
                     if sender in (administration.emails or ())), None)
    if answered is not None:
        answered.answered_at = aware(event.received_at)
        answered.answer_message_key = event.message_key
    complaint.updated_at = clock.now()
    log_change(tx, complaint, "position_answered" if answered is not None else "administration_message",
               SYSTEM_ACTOR, None, {"message_key": event.message_key, "message_id": event.message_id,
                                    "sender": sender, "subject": event.subject_line,
                                    "request_id": answered.id if answered is not None else None,
                                    "sender_verdict": event.sender_verdict.value}, at=clock.now())
    return complaint


async def hold_unreferenced(tx: Transaction, event: MessageReceived) -> Hold | None:
    """A message that refers to no file from an address admitted as an administration of some file: held for staff
    (with those files suggested) rather than registered as a complaint and acknowledged to the administration."""
    sender = sender_address(event.sender.email)
    if sender is None:
        return None
    known = tx.read_ahead.get(_ADMINISTRATION_FILES, {})
    numbers = known[sender] if sender in known else (await _administration_files(tx, [sender])).get(sender, [])
    if not numbers:
        return None
    return Hold(HoldReason.ADMINISTRATION_UNREFERENCED,
                tuple(Suggestion(number, 1, rules.ADMINISTRATION) for number in numbers))


_ADMINISTRATION_FILES = "administration_files"
UNREFERENCED_SUGGESTIONS = 5


async def read_administration_files(tx: Transaction, senders: list[str | None]) -> None:
    """`hold_unreferenced`'s question for a batch's senders at once (issue 12): the files where each is admitted
    as an administration (none for most)."""
    wanted = [sender for sender in dict.fromkeys(senders) if sender]
    if wanted:
        found = await _administration_files(tx, wanted)
        tx.read_ahead.setdefault(_ADMINISTRATION_FILES, {}).update({s: found.get(s, []) for s in wanted})


async def _administration_files(tx: Transaction, senders: list[str]) -> dict[str, list[str]]:
    """For each sender, the numbers of the most recent files (at most `UNREFERENCED_SUGGESTIONS`) where the address
    is admitted as an administration: one query (the database ranks each sender's files; an official is a party
    of the files of their administration only)."""
    found: dict[str, list[str]] = {}
    with tx.session.no_autoflush:  # staff add administrations; a batch's registrations stage none (issue 12)
        for email, number in (await tx.session.execute(_administration_files_query(), {"senders": senders})).all():
            found.setdefault(email, []).append(number)
    return found


@functools.cache
def _administration_files_query() -> Any:
    """`_administration_files`'s query (parameter `senders`), built once: a ranked subquery costs more to build
    than to run (issue 12)."""
    rank = func.row_number().over(partition_by=CaseParty.email, order_by=(Complaint.received_at.desc(),
                                                                          Complaint.id.desc()))
    ranked = (select(CaseParty.email, Complaint.number, rank.label("rank"))
              .join(CaseParty, CaseParty.complaint_id == Complaint.id)
              .where(CaseParty.email.in_(bindparam("senders", expanding=True, type_=CaseParty.email.type)),
                     CaseParty.role == rules.ADMINISTRATION).subquery())
    return (select(ranked.c.email, ranked.c.number).where(ranked.c.rank <= UNREFERENCED_SUGGESTIONS)
            .order_by(ranked.c.email, ranked.c.rank))


# --- the watcher's sweep ---------------------------------------------------------------------------------------------
def _due_condition(today: date) -> Any:
    """The SQL twin of `administrations.alerts_due` (a reminder or a warning not yet sent is due today)."""
    reminder = and_(PositionRequest.remind_on.is_not(None), PositionRequest.remind_on <= today,
                    PositionRequest.due >= today, PositionRequest.reminded_at.is_(None))
    missed = and_(PositionRequest.due < today, PositionRequest.missed_at.is_(None))
    return and_(PositionRequest.answered_at.is_(None), or_(reminder, missed))


async def _request_message_id(tx: Transaction, number: str, request: PositionRequest) -> str | None:
    """Our request's Message-ID (the notifier's report filed it in the thread), for the reminder to answer it."""
    sent = await tx.thread_message_by_key(
        f"out:notice:{_notice_key(rules.REQUEST_NOTICE, number, request.request_key)}")
    return f"<{sent.message_id}>" if sent is not None and sent.message_id else None


async def _enqueue_once(tx: Transaction, event: DeadlineApproaching | DeadlineMissed) -> None:
    """Two requests of one file due the same day make the same alert (its dedup id, unique in the outbox): it goes
    out once (the query flushes what this transaction staged, so a twin queued a moment ago is found too)."""
    if await tx.outbox_by_dedup_id(event.dedup_id()) is None:
        tx.enqueue(event)


async def _raise(tx: Transaction, request: PositionRequest, administration: Administration, complaint: Complaint,
                 today: date, clock: RegisterClock) -> int:
    state = rules.OpenRequest(due=request.due, remind_on=request.remind_on, answered=request.answered_at is not None,
                              reminded=request.reminded_at is not None, missed=request.missed_at is not None)
    alerts = rules.alerts_due(state, today)
    common = {"complaint_number": complaint.number, "deadline_kind": rules.DEADLINE_KIND, "due": request.due,
              "handler": Party(email=complaint.handler) if complaint.handler else None,
              # A data-protection file's alert names nothing of it (it may reach others than a DPO; issue 16).
              "service_concerned": None if complaint.data_protection else administration.name,
              "subject_line": "" if complaint.data_protection else complaint.subject_line}
    for alert in alerts:
        if alert is rules.AlertKind.REMINDER:
            request.reminded_at = clock.now()
            parent = await _request_message_id(tx, complaint.number, request)
            tx.enqueue(NoticeRequested(
                request_key=_notice_key(rules.REMINDER_NOTICE, complaint.number, request.request_key),
                complaint_number=complaint.number, notice_kind=rules.REMINDER_NOTICE,
                recipient=_recipient(administration), context=_context(complaint, administration, request),
                reply_to_message_id=parent, references=(parent,) if parent else ()))
            await _enqueue_once(tx, DeadlineApproaching(**common, lead_days=(request.due - today).days))
            change = "position_reminder"
        else:
            request.missed_at = clock.now()
            await _enqueue_once(tx, DeadlineMissed(**common, lead_days=0))
            change = "position_no_answer"
        log_change(tx, complaint, change, SYSTEM_ACTOR, None,
                   {"request_id": request.id, "administration": administration.key, "due": request.due},
                   at=clock.now())
    return len(alerts)


async def sweep_position_requests(command: SweepPositionRequests, *, uow: UnitOfWork, clock: RegisterClock) -> int:
    """Every reminder and warning due on `command.today`, a page of requests per transaction."""
    raised, after_id = 0, 0
    while True:
        async def page(tx: Transaction, after: int = after_id) -> tuple[int, int | None]:
            rows = (await tx.session.execute(
                select(PositionRequest, Administration, Complaint)
                .join(Administration, Administration.id == PositionRequest.administration_id)
                .join(Complaint, Complaint.id == PositionRequest.complaint_id)
                .where(PositionRequest.id > after, _due_condition(command.today), Complaint.closed_at.is_(None))
                .order_by(PositionRequest.id).limit(command.page)
                .with_for_update(of=PositionRequest))).all()
            count = 0
            for request, administration, complaint in rows:
                count += await _raise(tx, request, administration, complaint, command.today, clock)
            return count, rows[-1][0].id if rows else None

        count, last = await uow.run("position request alerts", page)
        raised += count
        if last is None:
            return raised
        after_id = last


def sweep(today: date) -> SweepPositionRequests:
    """The watcher's `SWEEPS` entry."""
    return SweepPositionRequests(today)



# --- the annual indicators -------------------------------------------------------------------------------------------
async def position_outcomes(store: RegistryStore, year: int, period_end: date, zone: ZoneInfo
                            ) -> list[rules.RequestOutcome]:
    """The requests made in `year` up to `period_end`: to whom, how many calendar days until the answer (the
    answer's day in the service's zone; an answer after `period_end` is not yet one), and whether one unanswered
    is overdue at `period_end`. A few thousand rows a year at most: read whole, counted by `answer_statistics`."""
    sessions = async_sessionmaker(read_only(store.engine), expire_on_commit=False)
    async with sessions() as session, session.begin():
        rows = (await session.execute(
            select(PositionRequest.requested_on, PositionRequest.due, PositionRequest.answered_at, Administration.name)
            .join(Administration, Administration.id == PositionRequest.administration_id)
            .where(PositionRequest.requested_on >= date(year, 1, 1), PositionRequest.requested_on <= period_end))).all()
    outcomes = []
    for requested_on, due, answered_at, name in rows:
        answered_on = answered_at.astimezone(zone).date() if answered_at is not None else None
        if answered_on is not None and answered_on > period_end:
            answered_on = None
        outcomes.append(rules.RequestOutcome(
            name, (answered_on - requested_on).days if answered_on is not None else None,
            overdue=answered_on is None and due < period_end))
    return outcomes
