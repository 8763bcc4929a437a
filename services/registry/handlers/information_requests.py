"""Requests for information to the citizen (issue 15): staff's `RequestInformation`, the end of the pause it started
(`pause_ended`, called where a status change may leave `waiting_for_citizen`), and the watcher's
`SweepInformationRequests` (the reminder, then the closing for lack of answer).

The answer clock is the register's own pause: a request moves the file to `waiting_for_citizen` through
`records.change_status` (an acknowledged file passes by `in_review`, as the workflow wants), so `paused_since`,
`paused_days` and the moved `answer_due` are `ComplaintState.moved_to`'s, exactly as for a pause staff set by hand.
What this module adds is the request itself (`models.InformationRequest`), its notices, and the change-log entries
that tell each step with its figures.

Idempotent: the same staff request (`request_key`) is made once; the reminder's stored key is `reminder_sent_at`,
set in the transaction that asks for its notice, and the closing sets `resolution`; each is decided on the request
and its complaint read again, the complaint locked, inside that transaction, so two watchers (two processes) or a
pass repeated after a crash send nothing twice (and the notices' request keys are fixed, so the notifier and
JetStream would drop a copy anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.registry.commands import RequestInformation, SweepInformationRequests
from services.registry.complaint_state import ComplaintState
from services.registry.handlers.ports import Conflict, RegisterClock, RegistryPolicy
from services.registry.handlers.records import (
    SYSTEM_ACTOR,
    change_status,
    log_change,
    on_complaint,
    request_notice,
    state_of,
)
from services.registry.mediation.information_requests import (
    DueAction,
    InformationRequestError,
    MissingItem,
    Resolution,
    parse_missing,
    pause_record,
)
from services.registry.models import Complaint, InformationRequest
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import Outcome, Status
from shared.database import read_only
from shared.events import clean_staff_text

# The registry's own reason for the closing's status changes (translated: `vocabulary.VOCABULARIES["system_reason"]`).
NO_ANSWER_REASON = "no answer to the request for information"
KEY_MAX = InformationRequest.request_key.type.length


# --- staff's request -------------------------------------------------------------------------------------------------
def _checked(command: RequestInformation) -> tuple[tuple[MissingItem, ...], str]:
    try:
        missing = parse_missing(command.missing)
    except InformationRequestError as error:
        raise Conflict(str(error)) from None
    text = ""
    if (command.text or "").strip():
        try:
            text = clean_staff_text(command.text.strip())
        except ValueError as error:
            raise Conflict(str(error)) from None
    if not missing and not text:
        raise Conflict("a request for information says what is missing (an item of the list or a text)")
    return missing, text


async def _request_by_key(tx: Transaction, key: str) -> InformationRequest | None:
    return (await tx.session.execute(select(InformationRequest).where(InformationRequest.request_key == key))
            ).scalar_one_or_none()


async def open_requests(tx: Transaction, complaint_id: int) -> list[InformationRequest]:
    """The file's requests still waiting for an answer, oldest first."""
    return list((await tx.session.execute(
        select(InformationRequest).where(InformationRequest.complaint_id == complaint_id,
                                         InformationRequest.resolution.is_(None))
        .order_by(InformationRequest.id))).scalars())


async def request_information(command: RequestInformation, *, uow: UnitOfWork, policy: RegistryPolicy,
                              clock: RegisterClock) -> Complaint:
    """Record the request, pause the answer clock (unless it already stands still) and ask for the notice."""
    missing, text = _checked(command)
    key = command.request_key[:KEY_MAX]

    async def apply(tx: Transaction, complaint: Complaint) -> None:
        if await _request_by_key(tx, key) is not None:
            return  # the same request again (a second click, a redelivery): made once
        if not (complaint.complainant_email or complaint.complainant_postal_address):
            raise Conflict("the citizen has neither an email nor a postal address to receive the request: record "
                           "what they say by phone or at the counter with the file's facts")
        status = Status(complaint.status)
        if status not in (Status.ACKNOWLEDGED, Status.IN_REVIEW, Status.WAITING_FOR_CITIZEN):
            raise Conflict(f"a request for information is sent to an acknowledged file, in review or already waiting "
                           f"for the citizen; this one is {status.value}")
        now, today = clock.now(), clock.today()
        if status is Status.ACKNOWLEDGED:
            change_status(tx, complaint, Status.IN_REVIEW.value, command.actor, command.reason, clock=clock,
                          policy=policy)
        paused = status is not Status.WAITING_FOR_CITIZEN
        if paused:
            change_status(tx, complaint, Status.WAITING_FOR_CITIZEN.value, command.actor, command.reason,
                          clock=clock, policy=policy)
        reply_by = policy.information.reply_by(today, policy.rules)
        row = InformationRequest(complaint_id=complaint.id, request_key=key, missing=[m.value for m in missing],
                                 text=text, requested_by=command.actor, requested_at=now, requested_on=today,
                                 reply_by=reply_by, paused=paused)
        await tx.add(row)
        entry = log_change(tx, complaint, "information_requested", command.actor, command.reason, {
            "request_id": row.id, "missing": row.missing, "reply_by": reply_by, "paused": paused,
            "paused_since": complaint.paused_since}, at=now)
        row.request_change_id = entry.change_id
        await request_notice(tx, complaint, "information_request", str(row.id), _notice_context(row))

    return await on_complaint(uow, command.number, apply)


def _notice_context(row: InformationRequest) -> dict[str, object]:
    return {"missing": list(row.missing), "text": row.text, "reply_by": row.reply_by,
            "requested_on": row.requested_on}


# --- the end of the pause --------------------------------------------------------------------------------------------
async def pause_ended(tx: Transaction, complaint: Complaint, before: ComplaintState, *, actor: str,
                      clock: RegisterClock, message_key: str | None = None) -> None:
    """After a status change of `complaint` (which was in state `before`): if it left `waiting_for_citizen` while
    requests for information waited, they end — answered when the review resumes (the citizen's reply
    `message_key`, or staff resuming with what the citizen said), ended otherwise (answered, withdrawn) — and the
    change log tells the pause: since when, how many days, the answer deadline moved."""
    if before.status is not Status.WAITING_FOR_CITIZEN or complaint.status == Status.WAITING_FOR_CITIZEN:
        return
    waiting = await open_requests(tx, complaint.id)
    if not waiting:
        return  # a pause staff set by hand: the status change says it all
    answered = complaint.status == Status.IN_REVIEW
    now = clock.now()
    entry = log_change(tx, complaint, "information_answered" if answered else "information_request_ended", actor,
                       None, {"requests": [r.id for r in waiting], "message_key": message_key,
                              **pause_record(before, state_of(complaint))}, at=now)
    for row in waiting:
        row.resolution = (Resolution.ANSWERED if answered else Resolution.ENDED).value
        row.end_change_id = entry.change_id
        if answered:
            row.answered_at, row.answer_message_key = now, message_key
        else:
            row.closed_at = now


# --- the watcher's sweep ---------------------------------------------------------------------------------------------
async def _due_page(uow: UnitOfWork, made_by: date, after_id: int, size: int) -> list[tuple[int, int]]:
    """(request id, complaint id) of open requests made on or before `made_by`, after `after_id`, in id order.
    Read without a write lock (it only picks what to look at: each is read again, locked, before acting)."""
    sessions = async_sessionmaker(read_only(uow.store.engine), expire_on_commit=False)
    async with sessions() as session, session.begin():
        rows = await session.execute(
            select(InformationRequest.id, InformationRequest.complaint_id)
            .where(InformationRequest.resolution.is_(None), InformationRequest.requested_on <= made_by,
                   InformationRequest.id > after_id)
            .order_by(InformationRequest.id).limit(size))
        return [(int(request_id), int(complaint_id)) for request_id, complaint_id in rows]


async def sweep_information_requests(command: SweepInformationRequests, *, uow: UnitOfWork, policy: RegistryPolicy,
                                     clock: RegisterClock) -> int:
    """Send the reminders and make the closings due on `command.today`; returns how many went out."""
    info = policy.information
    # Nothing is due for a request younger than the reminder time (the closing comes later still).
    made_by = command.today - timedelta(days=info.reminder_days)
    done, after_id = 0, 0
    while page := await _due_page(uow, made_by, after_id, info.page_size):
        for request_id, complaint_id in page:
            done += await uow.run(
                f"information request {request_id}",
                lambda tx, request_id=request_id, complaint_id=complaint_id: _settle(
                    tx, request_id, complaint_id, command.today, policy, clock))
        if len(page) < info.page_size:
            break
        after_id = page[-1][0]
    return done


async def _settle(tx: Transaction, request_id: int, complaint_id: int, today: date, policy: RegistryPolicy,
                  clock: RegisterClock) -> int:
    """What is due for one request, decided on its complaint (locked first) and itself read again now."""
    complaint = await tx.complaint_by_id(complaint_id, for_update=True)
    waiting = await open_requests(tx, complaint_id)
    row = next((r for r in waiting if r.id == request_id), None)
    if row is None:
        return 0  # answered or closed since the page was read
    if complaint.status != Status.WAITING_FOR_CITIZEN:
        # The file left the pause by a way that does not pass through `pause_ended` (a merge): nothing to wait for.
        for other in waiting:
            other.resolution, other.closed_at = Resolution.ENDED.value, clock.now()
        return 0
    action = policy.information.due_action(reply_by=row.reply_by, requested_on=row.requested_on,
                                           reminded=row.reminder_sent_at is not None, today=today)
    if action is DueAction.REMIND:
        return await _remind(tx, complaint, row, clock)
    if action is DueAction.CLOSE and all(other.reply_by < today for other in waiting):
        # A later request of the same file promised a later date: the file waits for that one.
        return await _close(tx, complaint, waiting, policy, clock)
    return 0


async def _remind(tx: Transaction, complaint: Complaint, row: InformationRequest, clock: RegisterClock) -> int:
    now = clock.now()
    row.reminder_sent_at = now
    entry = log_change(tx, complaint, "information_reminder", SYSTEM_ACTOR, None,
                       {"request_id": row.id, "reply_by": row.reply_by}, at=now)
    row.reminder_change_id = entry.change_id
    await request_notice(tx, complaint, "information_reminder", str(row.id), _notice_context(row))
    return 1


async def _close(tx: Transaction, complaint: Complaint, waiting: Sequence[InformationRequest],
                 policy: RegistryPolicy, clock: RegisterClock) -> int:
    """No answer by the reply date: the office's last word is the `closed_no_answer` notice, so the file is answered
    and closed (outcome "no assessment"), which the reopening rules then apply to."""
    before = state_of(complaint)
    change_status(tx, complaint, Status.ANSWERED.value, SYSTEM_ACTOR, NO_ANSWER_REASON, clock=clock, policy=policy)
    change_status(tx, complaint, Status.CLOSED.value, SYSTEM_ACTOR, NO_ANSWER_REASON, clock=clock, policy=policy,
                  outcome=Outcome.NO_ASSESSMENT.value)
    after = state_of(complaint)
    now = clock.now()
    entry = log_change(tx, complaint, "closed_no_answer", SYSTEM_ACTOR, None,
                       {"requests": [r.id for r in waiting], **pause_record(before, after)}, at=now)
    for row in waiting:
        row.resolution, row.closed_at, row.end_change_id = Resolution.CLOSED_NO_ANSWER.value, now, entry.change_id
    ended_on = after.ended_on(clock.zone) or clock.today()
    missing = [m.value for m in MissingItem if any(m.value in r.missing for r in waiting)]
    await request_notice(tx, complaint, "closed_no_answer", str(waiting[0].id), {
        "missing": missing, "requested_on": waiting[0].requested_on, "reply_by": max(r.reply_by for r in waiting),
        "reopen_until": ended_on + timedelta(days=policy.reopen.window_days)})
    return 1
