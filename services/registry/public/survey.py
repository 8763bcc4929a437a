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
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from services.registry.public.citizen_access import SURVEY_PATH, CitizenPolicy, new_token, public_link, verifier_matches
from services.registry.models import Complaint, SurveyAnswer, SurveyInvitation
from services.registry.repository import RegistryStore, Transaction
from services.registry.vocabulary import Status
from shared.events import SURVEY_QUESTIONS, SurveyAnswers, SurveyState, citizen_token_parts

# Files invited per sweep (the next pass takes the rest).
SWEEP_PAGE = 200


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
    """Stage an invitation for each file to invite (a page of them); returns each with its sealed survey link."""
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
    tx.stage(SurveyAnswer(id=uuid.uuid4().hex, year=today.year, clarity=answers.clarity, delay=answers.delay,
                          respect=answers.respect, overall=answers.overall,
                          comment=answers.comment.strip() or None))
    return SurveyState.RECORDED


async def indicators(store: RegistryStore, year: int) -> dict[str, Any] | None:
    """The `satisfaction` section of the year's indicators; None in a year without answers (a report of a year
    before the survey reads exactly as before). A year has at most thousands of answers: read as score rows."""
    columns = [getattr(SurveyAnswer, question) for question in SURVEY_QUESTIONS]
    async with store.reading() as tx:
        rows = (await tx.session.execute(select(*columns).where(SurveyAnswer.year == year))).all()
    return averages(rows) if rows else None


async def comments(store: RegistryStore, year: int, limit: int = 500) -> list[str]:
    """The year's free comments, for staff reading them together: in no particular order (by the random id), without
    anything of who wrote them."""
    async with store.reading() as tx:
        return list((await tx.session.execute(
            select(SurveyAnswer.comment).where(SurveyAnswer.year == year, SurveyAnswer.comment.is_not(None))
            .order_by(SurveyAnswer.id).limit(limit))).scalars())
