"""Recommendations followed up (issue 15): issuing one (of a file, or general), recording what the administration
did with it, setting its review date, and the watcher's sweep that reminds the handler when a review date comes.

The rules are `recommendations.py`; the rows `recommendation_store.py`. A change to a file's recommendation is also
in that file's change log (published as `ComplaintChanged`); every change is in the recommendation's own `history`
(who, when, from, to, why), which is all a general recommendation has.

A file's recommendation texts also go to `complaints.recommendations`, in the same transaction: the list that
`register show` and the annual report's improvement actions read (migration 0013 says why the column stays).

The reminder is `DeadlineApproaching` on the review date, `DeadlineMissed` when the sweep first sees it after that day
(`deadline_kind="recommendation_review"`), to the file's handler (a general recommendation: whoever issued it) and
the supervisor, as the notifier sends every deadline warning. At most once per review date: `reminded_for` stores the
date reminded of, in the transaction that queues the event. Two recommendations of one file reviewed the same day
make one reminder (their events would be the same one: same file, kind, date).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.registry.mediation import recommendation_store as rows
from services.registry.commands import (
    AddRecommendation,
    FollowUpRecommendation,
    IssueRecommendation,
    RemindRecommendationReviews,
    SetRecommendationReview,
)
from services.registry.handlers.ports import Conflict, NotFound, RegisterClock
from services.registry.handlers.records import jsonable, locked_complaint, log_change
from services.registry.models import Complaint, Recommendation
from services.registry.mediation.recommendations import (
    DEADLINE_KIND,
    RecommendationRefused,
    check_addressee,
    check_text,
    follow_up,
    reference,
    review_reminder,
)
from services.registry.repository import Transaction
from services.registry.unit_of_work import UnitOfWork
from shared.events import DeadlineApproaching, DeadlineMissed, Party

# What a reminder quotes of the recommendation's text (its subject line).
SUBJECT_CHARS = 200


def _refused(error: RecommendationRefused) -> Conflict:
    # Raised `from` the rule's refusal: the page reads its `code` there, as for the workflow's refusals.
    return Conflict(str(error))


def _history(recommendation: Recommendation, change: str, actor: str, at: Any, **details: Any) -> None:
    recommendation.history = [*(recommendation.history or ()),
                              jsonable({"change": change, "actor": actor, "at": at, **details})]


# --- issuing ---------------------------------------------------------------------------------------------------------
async def _issue(tx: Transaction, command: IssueRecommendation, clock: RegisterClock
                 ) -> tuple[Recommendation, Complaint | None]:
    existing = await rows.by_request_key(tx, command.request_key)
    if existing is not None:  # the same request again (a form sent twice, a retried call): nothing more
        complaint = await tx.complaint_by_id(existing.complaint_id) if existing.complaint_id else None
        return existing, complaint
    try:
        text = check_text(command.text)
        complaint = await locked_complaint(tx, command.number) if command.number else None
        named = command.addressee
        if command.administration_id is not None:
            directory_name = await rows.administration_name(tx, command.administration_id)
            if directory_name is None:
                raise Conflict(f"no administration {command.administration_id} in the directory")
            named = named if (named or "").strip() else directory_name
        if complaint is not None and not (named or "").strip():
            named = complaint.service_concerned or ""  # a file's recommendation goes to the service concerned
        addressee = check_addressee(named) if complaint is None or (named or "").strip() else ""
    except RecommendationRefused as error:
        raise _refused(error) from error
    issued_on = command.issued_on or clock.today()
    if command.review_date is not None and command.review_date < issued_on:
        raise Conflict("a review date comes after the recommendation's date")
    now = clock.now()
    recommendation = Recommendation(
        request_key=command.request_key, complaint_id=complaint.id if complaint else None,
        administration_id=command.administration_id, addressee=addressee, text=text, issued_on=issued_on,
        status="pending", status_reason=None, review_date=command.review_date, reminded_for=None, history=[],
        created_by=command.actor, created_at=now, updated_at=now)
    _history(recommendation, "issued", command.actor, now, status="pending", review_date=command.review_date)
    await tx.add(recommendation)
    if complaint is not None:
        complaint.recommendations = [*(complaint.recommendations or ()), text]
        complaint.updated_at = now
        log_change(tx, complaint, "recommendation", command.actor, None,
                   {"text": text, "recommendation_id": recommendation.id, "addressee": addressee,
                    "review_date": command.review_date}, at=now)
    return recommendation, complaint


async def issue_recommendation(command: IssueRecommendation, *, uow: UnitOfWork, clock: RegisterClock
                               ) -> Recommendation:
    """A recommendation of a file (its number) or general (no number); once per `request_key`."""

    async def issue(tx: Transaction) -> Recommendation:
        return (await _issue(tx, command, clock))[0]

    return await uow.run(f"recommendation {command.number or 'general'}", issue)


async def add_recommendation(command: AddRecommendation, *, uow: UnitOfWork, clock: RegisterClock) -> Complaint:
    """A recommendation drawn from the complaint (the file page, the API, `register recommend`); returns the file."""
    issued = IssueRecommendation(command.number, command.text, command.actor, addressee=command.addressee,
                                 administration_id=command.administration_id, review_date=command.review_date,
                                 request_key=command.request_key)

    async def issue(tx: Transaction) -> Complaint:
        _recommendation, complaint = await _issue(tx, issued, clock)
        assert complaint is not None  # a number was given
        return complaint

    return await uow.run(f"complaint {command.number}", issue)


# --- follow-up and review --------------------------------------------------------------------------------------------
async def _locked(tx: Transaction, recommendation_id: int) -> tuple[Recommendation, Complaint | None]:
    recommendation = await rows.by_id(tx, recommendation_id, for_update=True)
    if recommendation is None:
        raise NotFound(f"no recommendation {recommendation_id}")
    complaint = (await tx.complaint_by_id(recommendation.complaint_id, for_update=True)
                 if recommendation.complaint_id else None)
    return recommendation, complaint


async def follow_up_recommendation(command: FollowUpRecommendation, *, uow: UnitOfWork, clock: RegisterClock
                                   ) -> Recommendation:
    """Record what the administration did with the recommendation (accepted, implemented, refused with reason)."""

    async def apply(tx: Transaction) -> Recommendation:
        recommendation, complaint = await _locked(tx, command.recommendation_id)
        try:
            status, reason = follow_up(recommendation.status, command.status, command.reason)
        except RecommendationRefused as error:
            raise _refused(error) from error
        now, previous = clock.now(), recommendation.status
        recommendation.status, recommendation.status_reason, recommendation.updated_at = status.value, reason, now
        _history(recommendation, "status", command.actor, now, **{"from": previous, "to": status.value},
                 reason=reason)
        if complaint is not None:
            log_change(tx, complaint, "recommendation_follow_up", command.actor, reason,
                       {"recommendation_id": recommendation.id, "from": previous, "to": status.value}, at=now)
        return recommendation

    return await uow.run(f"recommendation {command.recommendation_id}", apply)


async def set_recommendation_review(command: SetRecommendationReview, *, uow: UnitOfWork, clock: RegisterClock
                                    ) -> Recommendation:
    """Set or clear the review date (a new date is reminded of again, once)."""

    async def apply(tx: Transaction) -> Recommendation:
        recommendation, complaint = await _locked(tx, command.recommendation_id)
        if command.review_date is not None and command.review_date < recommendation.issued_on:
            raise Conflict("a review date comes after the recommendation's date")
        previous = recommendation.review_date
        if previous == command.review_date:
            return recommendation
        now = clock.now()
        recommendation.review_date, recommendation.updated_at = command.review_date, now
        _history(recommendation, "review_date", command.actor, now, **{"from": previous, "to": command.review_date},
                 reason=command.reason)
        if complaint is not None:
            log_change(tx, complaint, "recommendation_review", command.actor, command.reason,
                       {"recommendation_id": recommendation.id, "from": previous, "to": command.review_date}, at=now)
        return recommendation

    return await uow.run(f"recommendation {command.recommendation_id}", apply)


# --- the watcher's sweep ---------------------------------------------------------------------------------------------
def _handler(recommendation: Recommendation, complaint: Complaint | None) -> Party | None:
    """Who is reminded: the file's handler, else whoever issued it (when that is an address)."""
    email = (complaint.handler if complaint is not None else None) or recommendation.created_by
    return Party(email=email) if email and "@" in email else None


def _subject(recommendation: Recommendation, complaint: Complaint | None) -> str:
    # A data-protection file's alert names nothing of it (the alert may reach others than a DPO; issue 13).
    if complaint is not None and complaint.data_protection:
        return ""
    first_line = next((line.strip() for line in recommendation.text.splitlines() if line.strip()), "")
    return first_line[:SUBJECT_CHARS]


async def _remind_page(tx: Transaction, today: date, after_id: int, page: int) -> tuple[int | None, int, int]:
    """(the last id read, how many rows were read, how many reminders went out) for one page."""
    due = await rows.due_reviews(tx, today, after_id=after_id, limit=page)
    raised = 0
    queued: set[str] = set()
    for recommendation, complaint in due:
        reminder = review_reminder(recommendation.status, recommendation.review_date, recommendation.reminded_for,
                                   today)
        if reminder is None:
            continue
        event_class = DeadlineMissed if reminder.missed else DeadlineApproaching
        event = event_class(
            complaint_number=complaint.number if complaint is not None else reference(recommendation.id),
            deadline_kind=DEADLINE_KIND, due=reminder.review_date, handler=_handler(recommendation, complaint),
            service_concerned=None if complaint is not None and complaint.data_protection
            else recommendation.addressee or None,
            subject_line=_subject(recommendation, complaint),
            lead_days=0)
        recommendation.reminded_for = reminder.review_date
        # Another recommendation of the same file and date was reminded of by this very event (in this page or an
        # earlier pass): the outbox's dedup id would refuse it a second time, and the handler has been told.
        if event.dedup_id() in queued or await tx.outbox_by_dedup_id(event.dedup_id()) is not None:
            continue
        queued.add(event.dedup_id())
        tx.enqueue(event)
        raised += 1
    return (due[-1][0].id if due else None), len(due), raised


async def remind_recommendation_reviews(command: RemindRecommendationReviews, *, uow: UnitOfWork) -> int:
    """Every review reminder due on `command.today`, a page per transaction; returns how many went out."""
    raised, after_id = 0, 0
    while True:
        last_id, read, page_raised = await uow.run(
            "recommendation reviews", lambda tx, after=after_id: _remind_page(tx, command.today, after, command.page))
        raised += page_raised
        if last_id is None or read < command.page:
            return raised
        after_id = last_id
