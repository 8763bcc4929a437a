"""The satisfaction survey in the register (issue 17), on SQLite and PostgreSQL: closed files of the configured kinds
are invited once, a survey link is answered once, the answers keep nothing of the file or the person, and the year's
indicators carry their averages in the shape the published report renders."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import inspect, select, update

from services.registry.public import survey
from services.registry.access.audit import AuditTrail
from services.registry.public.citizen_responder import CitizenResponder
from services.registry.commands import AnswerSurvey, InviteToSurveys
from services.registry.handlers import Registry
from services.registry.models import Complaint, SurveyAnswer, SurveyAnswerWaiting, SurveyInvitation
from services.registry.reports import annual_report
from shared.events import NoticeRequested, SurveyAnswers, SurveyRequest, SurveyState
from shared.sealing import LinkSeal
from tests.registry.conftest import CapturingPublisher, Clock, received
from tests.registry.test_citizen_access import linked_registry


def test_averages_skip_unanswered_questions():
    figures = survey.averages([(5, 4, None, 3), (4, None, None, 4), (3, 2, None, 5)])
    assert figures == {"responses": 3, "average_by_question": {"clarity": 4.0, "delay": 3.0, "respect": None,
                                                               "overall": 4.0}}
    assert survey.averages([]) == {"responses": 0, "average_by_question": dict.fromkeys(
        ("clarity", "delay", "respect", "overall"))}


@pytest.fixture
async def office(database_url, tmp_path):
    async with linked_registry(database_url, tmp_path, survey_kinds="complaint,question") as linked:
        yield linked


async def _close(registry: Registry, number: str, at: datetime, kind: str = "complaint") -> None:
    async with registry.store.transaction() as tx:
        await tx.session.execute(update(Complaint).where(Complaint.number == number)
                                 .values(status="closed", closed_at=at, kind=kind))


def _invitations(publisher: CapturingPublisher) -> list[NoticeRequested]:
    return [e for e in publisher.of(NoticeRequested) if e.notice_kind == "survey_invitation"]


async def test_closed_files_of_the_configured_kinds_are_invited_once(office):
    registry, publisher, clock, seal = office
    numbers = [(await registry.handle(received(key=f"s-{i}"))).number for i in range(5)]
    await _close(registry, numbers[0], clock())
    await _close(registry, numbers[1], clock(), kind="question")
    await _close(registry, numbers[2], clock(), kind="compliment")  # not a surveyed kind
    await _close(registry, numbers[3], clock() - timedelta(days=30))  # closed before the window
    # numbers[4] stays open
    assert await registry.handle(InviteToSurveys(clock().date())) == 2
    assert await registry.handle(InviteToSurveys(clock().date())) == 0  # a second sweep invites nobody again
    invited = _invitations(publisher)
    assert sorted(e.complaint_number for e in invited) == sorted(numbers[:2])
    url = seal.open(invited[0].context["sealed_link"])
    assert url.startswith("https://public.example.be/survey/") and invited[0].recipient.email


async def _token(registry: Registry, publisher: CapturingPublisher, seal: LinkSeal, clock: Clock) -> str:
    number = (await registry.handle(received())).number
    await _close(registry, number, clock())
    await registry.handle(InviteToSurveys(clock().date()))
    [invitation] = _invitations(publisher)
    return seal.open(invitation.context["sealed_link"]).split("/survey/")[1].split("?")[0]


async def test_a_survey_is_answered_once_and_counted_without_any_link_to_the_file(office):
    registry, publisher, clock, seal = office
    token = await _token(registry, publisher, seal, clock)
    responder = CitizenResponder(registry, registry.policy.citizen, AuditTrail(registry.store.engine))
    assert (await responder.survey(SurveyRequest(token=token))).state is SurveyState.OPEN
    answers = SurveyAnswers(clarity=4, delay=2, respect=5, overall=4, comment="Merci pour votre écoute.")
    assert (await responder.survey(SurveyRequest(token=token, answers=answers))).state is SurveyState.RECORDED
    again = SurveyAnswers(clarity=1, delay=1, respect=1, overall=1)
    assert (await responder.survey(SurveyRequest(token=token, answers=again))).state is SurveyState.ANSWERED
    assert (await responder.survey(SurveyRequest(token=token))).state is SurveyState.ANSWERED
    assert (await responder.survey(SurveyRequest(token=token[:-1] + "x"))).state is SurveyState.UNKNOWN

    columns = {column.key for column in inspect(SurveyAnswer).columns}
    assert columns == {"id", "year", "clarity", "delay", "respect", "overall", "comment"}  # no file, no date
    waiting = {column.key for column in inspect(SurveyAnswerWaiting).columns}
    assert waiting == columns | {"waiting_since"}  # the day only, until it moves
    indicators = await annual_report(registry.store, 2026, registry.policy.timezone)
    assert indicators["satisfaction"] == {"responses": 1, "average_by_question": {
        "clarity": 4.0, "delay": 2.0, "respect": 5.0, "overall": 4.0}}
    assert await survey.comments(registry.store, 2026) == ["Merci pour votre écoute."]
    assert "satisfaction" not in await annual_report(registry.store, 2025, registry.policy.timezone)


async def test_two_answers_at_once_store_one(office):
    registry, publisher, clock, seal = office
    token = await _token(registry, publisher, seal, clock)
    states = await asyncio.gather(*(registry.handle(AnswerSurvey(token, SurveyAnswers(overall=score)))
                                    for score in (1, 5)))
    assert sorted(states) == sorted([SurveyState.RECORDED, SurveyState.ANSWERED])
    async with registry.store.reading() as tx:
        # Stored once: waiting to be moved (`survey.release`) or moved already.
        stored = [len((await tx.session.execute(select(model))).all()) for model in (SurveyAnswer, SurveyAnswerWaiting)]
        assert sum(stored) == 1
        [invitation] = (await tx.session.execute(select(SurveyInvitation))).scalars().all()
    assert invitation.answered is True


async def test_an_expired_survey_link_cannot_be_answered(office):
    registry, publisher, clock, seal = office
    token = await _token(registry, publisher, seal, clock)
    clock.advance(days=61)
    state = await registry.handle(AnswerSurvey(token, SurveyAnswers(overall=5)))
    assert state is SurveyState.UNKNOWN


async def test_staff_read_the_years_comments_together_and_nothing_of_who_wrote_them(office):
    from tests.registry.access.helpers import api_client

    registry, publisher, clock, seal = office
    token = await _token(registry, publisher, seal, clock)
    await registry.handle(AnswerSurvey(token, SurveyAnswers(overall=2, comment="Trop long à mon goût.")))
    async with await api_client(registry) as client:
        listed = await client.get("/indicators/2026/survey-comments")
        indicators = await client.get("/indicators/2026")
    assert listed.status_code == 200
    assert listed.json() == {"year": 2026, "comments": ["Trop long à mon goût."]}
    assert indicators.json()["satisfaction"]["responses"] == 1
