"""The satisfaction survey (issue 17): who is invited, how an answer is stored once, and what the indicators say.

**Invitation.** The deadline watcher's sweep (`commands.InviteToSurveys`) finds the files closed in the last
`survey_window_days` whose kind is among `survey_kinds` and that have an address and no invitation yet; each gets a
survey link (a token as the personal link's, `citizen_access.new_token`: selector and verifier hash stored) and the
`survey_invitation` notice (the link sealed for the notifier). One invitation per file, ever (unique key): a file
reopened and closed again is not asked twice; a sweep run twice, or by two registry processes, invites once.

**Answer.** Over core NATS request/reply (`citizen_responder`), never an event on a stream: the answer is stored in
the same transaction that marks the invitation answered (`UPDATE ... WHERE answered = false`: of two answers sent at
once, one is stored and the other told "already answered"), and the page says "thank you" only once it is committed.
An event on a JetStream stream would be durable earlier, but streams here are kept forever as the audit trail: it
would keep each answer beside its link's selector, which ties it to the file — the very link pseudonymisation cuts.

**Pseudonymisation.** The answer row has a random id (no order of arrival), the year of the answer and the scores
(1-5, NULL when skipped) and the comment; nothing of the file, the person or the day. The invitation keeps only
whether it was answered. Staff read averages per year and the year's comments as a list, never one person's answers.

**No link by transaction or row order (issue 16).** A row written in the transaction that closes the invitation
carries that transaction's id (PostgreSQL's `xmin`, the same on the invitation's new version) and sits after the
answers given before it (SQLite's rowid, PostgreSQL's ctid): whoever reads the database files could match an answer
to its file. So the answer first waits in `survey_answers_waiting` (that transaction's row, the only one tied to
the invitation), and the survey's sweep — the watcher's `InviteToSurveys` step, on every pass — moves the answers
waiting into `survey_answers` in one transaction of its own (`release`):

- only in batches: once `RELEASE_BATCH` answers wait, or once the oldest has waited `RELEASE_AFTER_DAYS` (the
  figures and comments of a year read both tables, so they never lag behind the answers);
- in a random order (`secrets.SystemRandom`), each under a new random id, the waiting rows deleted (SQLite zeroes
  their bytes: `secure_delete`);
- and in the same transaction every answered invitation that could have been answered since the oldest of them
  (not expired by then) is written again: they all take the batch's transaction id, so neither an invitation's
  `xmin` nor an answer's says which answer closed which invitation — a small batch (a quiet week) hides among every
  invitation answered in the last weeks.

What remains, until the sweep: the waiting row itself (with the day, not the time); after it, PostgreSQL's dead row
versions until VACUUM, and SQLite's write-ahead log until its next checkpoint (docs/privacy.md).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, union_all, update

from services.registry.public.citizen_access import SURVEY_PATH, CitizenPolicy, new_token, public_link, verifier_matches
from services.registry.models import Complaint, SurveyAnswer, SurveyAnswerWaiting, SurveyInvitation
from services.registry.repository import RegistryStore, Transaction
from services.registry.vocabulary import Status
from shared.events import SURVEY_QUESTIONS, SurveyAnswers, SurveyState, citizen_token_parts

# Files invited per sweep (the next pass takes the rest).
SWEEP_PAGE = 200
# Answers move from `survey_answers_waiting` into `survey_answers` together once this many wait...
RELEASE_BATCH = 10
# ... or once the oldest has waited this many days (a quiet office's answers still reach the figures' table).
RELEASE_AFTER_DAYS = 7
_SCORES = ("year", *SURVEY_QUESTIONS, "comment")


def averages(rows: Iterable[Sequence[int | None]]) -> dict[str, Any]:
    """`{"responses": N, "average_by_question": {question: mean rounded to 0.1, or None}}` of answer rows whose
    items are the scores in `SURVEY_QUESTIONS` order (pure; what the annual indicators carry)."""
    count = 0
    sums = dict.fromkeys(SURVEY_QUESTIONS, 0)
    given = dict.fromkeys(SURVEY_QUESTIONS, 0)
    for row in rows:
        count += 1
        for question, score in zip(SURVEY_QUESTIONS, row, strict=True):
            if score is not None:
                sums[question] += score
                given[question] += 1
    return {"responses": count, "average_by_question": {
        question: round(sums[question] / given[question], 1) if given[question] else None
        for question in SURVEY_QUESTIONS}}


def has_content(answers: SurveyAnswers) -> bool:
    return any(getattr(answers, question) is not None for question in SURVEY_QUESTIONS) or bool(
        answers.comment.strip())


async def invite(tx: Transaction, policy: CitizenPolicy, *, now: datetime, zone: ZoneInfo
                 ) -> list[tuple[Complaint, str]]:
    """The survey's sweep: move the answers due into `survey_answers` (`release`, whether or not the survey is still
    on), then stage an invitation for each file to invite (a page of them); returns each with its sealed survey
    link."""
    await release(tx, today=now.astimezone(zone).date())
    if not policy.survey_kinds or not policy.issues_links:
        return []
    assert policy.seal is not None
    invited = select(SurveyInvitation.id).where(SurveyInvitation.complaint_id == Complaint.id).exists()
    complaints = (await tx.session.execute(
        select(Complaint).where(Complaint.status == Status.CLOSED.value,
                                Complaint.closed_at >= now - timedelta(days=policy.survey_window_days),
                                Complaint.kind.in_(policy.survey_kinds), Complaint.automated.is_(False),
                                Complaint.complainant_email.is_not(None), ~invited)
        .order_by(Complaint.id).limit(SWEEP_PAGE))).scalars().all()
    links: list[tuple[Complaint, str]] = []
    expires = now.astimezone(zone).date() + timedelta(days=policy.survey_days)
    for complaint in complaints:
        token = new_token()
        tx.stage(SurveyInvitation(complaint_id=complaint.id, selector=token.selector,
                                  verifier_hash=token.verifier_hash, invited_at=now, expires_on=expires,
                                  answered=False))
        links.append((complaint, policy.seal.seal(public_link(policy, SURVEY_PATH, token.token, complaint))))
    return links


async def _invitation(tx: Transaction, token: str, today: date) -> SurveyInvitation | None:
    parts = citizen_token_parts(token)
    if parts is None:
        return None
    selector, verifier = parts
    invitation = (await tx.session.execute(
        select(SurveyInvitation).where(SurveyInvitation.selector == selector))).scalar_one_or_none()
    if invitation is None or not verifier_matches(invitation.verifier_hash, verifier):
        return None
    return invitation if today <= invitation.expires_on else None


async def state(store: RegistryStore, token: str, today: date) -> SurveyState:
    async with store.reading() as tx:
        invitation = await _invitation(tx, token, today)
        if invitation is None:
            return SurveyState.UNKNOWN
        return SurveyState.ANSWERED if invitation.answered else SurveyState.OPEN


async def record(tx: Transaction, token: str, answers: SurveyAnswers, *, today: date) -> SurveyState:
    """Store the answers once: the invitation is marked answered and the answers added in this transaction."""
    invitation = await _invitation(tx, token, today)
    if invitation is None:
        return SurveyState.UNKNOWN
    marked = await tx.session.execute(update(SurveyInvitation).where(
        SurveyInvitation.id == invitation.id, SurveyInvitation.answered.is_(False)).values(answered=True))
    if marked.rowcount != 1:
        return SurveyState.ANSWERED
    # It waits apart (see the module's docstring): this transaction's id and place are the invitation's.
    tx.stage(SurveyAnswerWaiting(id=uuid.uuid4().hex, year=today.year, waiting_since=today,
                                 clarity=answers.clarity, delay=answers.delay, respect=answers.respect,
                                 overall=answers.overall, comment=answers.comment.strip() or None))
    return SurveyState.RECORDED


def release_due(waiting: int, oldest: date | None, today: date) -> bool:
    """Whether the answers waiting move now: a batch is full, or the oldest has waited long enough."""
    if not waiting or oldest is None:
        return False
    return waiting >= RELEASE_BATCH or (today - oldest).days >= RELEASE_AFTER_DAYS


async def release(tx: Transaction, *, today: date) -> int:
    """Move every answer waiting into `survey_answers` when `release_due`, shuffled and under new ids, and write
    again every invitation that may have been answered since the oldest of them; returns how many moved."""
    waiting, oldest = (await tx.session.execute(
        select(func.count(), func.min(SurveyAnswerWaiting.waiting_since)))).one()
    if not release_due(int(waiting), oldest, today):
        return 0
    # Deleted first, RETURNING what was deleted: of two registry processes releasing at once, each row moves once
    # (PostgreSQL's second DELETE waits for the first and then finds those rows gone; SQLite has one writer).
    columns = [getattr(SurveyAnswerWaiting, name) for name in ("waiting_since", *_SCORES)]
    moved = [dict(row._mapping) for row in await tx.session.execute(
        delete(SurveyAnswerWaiting).returning(*columns))]
    if not moved:
        return 0
    secrets.SystemRandom().shuffle(moved)
    for row in moved:
        tx.stage(SurveyAnswer(id=uuid.uuid4().hex, **{name: row[name] for name in _SCORES}))
    await tx.session.flush()  # the answers, in that order, before the invitations
    # An invitation answered on day d expires on d or later: every invitation that closed with one of these answers
    # is among those answered and not expired on the oldest answer's day.
    since = min(row["waiting_since"] for row in moved)
    await tx.session.execute(update(SurveyInvitation).where(
        SurveyInvitation.answered.is_(True), SurveyInvitation.expires_on >= since).values(answered=True)
        .execution_options(synchronize_session=False))
    return len(moved)


def _every_answer(*columns: str, year: int) -> Any:
    """The year's answers, moved or still waiting, as one subquery of `columns` (both tables have them)."""
    return union_all(*(select(*(getattr(table, name) for name in columns)).where(table.year == year)
                       for table in (SurveyAnswer, SurveyAnswerWaiting))).subquery()


async def indicators(store: RegistryStore, year: int) -> dict[str, Any] | None:
    """The `satisfaction` section of the year's indicators; None in a year without answers (a report of a year
    before the survey reads exactly as before). The answers still waiting count too (figures only: no row of them
    is shown), so the figures never lag behind the answers. A year has at most thousands of answers: read as score
    rows."""
    answers = _every_answer(*SURVEY_QUESTIONS, year=year)
    async with store.reading() as tx:
        rows = (await tx.session.execute(select(*(answers.c[q] for q in SURVEY_QUESTIONS)))).all()
    return averages(rows) if rows else None


async def comments(store: RegistryStore, year: int, limit: int = 500) -> list[str]:
    """The year's free comments, for staff reading them together: in no particular order (by the random id, waiting
    or moved alike, so the latest do not come last), without anything of who wrote them."""
    answers = _every_answer("id", "comment", year=year)
    async with store.reading() as tx:
        return list((await tx.session.execute(
            select(answers.c.comment).where(answers.c.comment.is_not(None)).order_by(answers.c.id).limit(limit)
        )).scalars())
