"""Survey answers that cannot be linked to their file by transaction id or row order (issue 16), on SQLite and
PostgreSQL: an answer waits apart in the transaction that closes its invitation, and the survey's sweep (the watcher's
`InviteToSurveys` step) moves the answers waiting into `survey_answers` in batches — once enough wait, or once the
oldest has waited a week — in a random order, under new ids, in a transaction of its own that also writes again the
invitations answered lately. Answerable once and the year's figures (waiting answers included) stay as they were;
migration 0019 cuts the link of the answers stored before it."""

from __future__ import annotations

import sqlalchemy as sa
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text, update

from services.registry.commands import AnswerSurvey, InviteToSurveys
from services.registry.handlers import Registry
from services.registry.models import Complaint, SurveyAnswer, SurveyAnswerWaiting, SurveyInvitation
from services.registry.public import survey
from services.registry.reports import annual_report
from services.registry.repository import migrate
from services.registry.watcher import DeadlineWatcher
from shared.database import create_engine
from shared.events import NoticeRequested, SurveyAnswers, SurveyState
from tests.registry.conftest import received
from tests.registry.test_citizen_access import linked_registry
from tests.registry.test_recommendations_migration import _upgrade_to


@pytest.fixture
async def office(database_url, tmp_path):
    async with linked_registry(database_url, tmp_path, survey_kinds="complaint") as linked:
        yield linked


async def _tokens(office, count: int) -> list[str]:
    """`count` closed files invited to the survey: their survey tokens, in the order of the files."""
    registry, publisher, clock, seal = office
    numbers = [(await registry.handle(received(key=f"unlinkable-{index}"))).number for index in range(count)]
    async with registry.store.transaction() as tx:
        await tx.session.execute(update(Complaint).where(Complaint.number.in_(numbers))
                                 .values(status="closed", closed_at=clock()))
    await registry.handle(InviteToSurveys(clock().date()))
    links = {e.complaint_number: seal.open(e.context["sealed_link"]) for e in publisher.of(NoticeRequested)
             if e.notice_kind == "survey_invitation"}
    return [links[number].split("/survey/")[1].split("?")[0] for number in numbers]


async def _answer(registry: Registry, token: str, index: int) -> None:
    answers = SurveyAnswers(clarity=1 + index % 5, delay=5 - index % 5, overall=3, comment=f"réponse {index}")
    assert await registry.handle(AnswerSurvey(token, answers)) is SurveyState.RECORDED


async def _rows(registry: Registry, model) -> list:
    async with registry.store.reading() as tx:
        return list((await tx.session.execute(select(model))).scalars())


async def _physical_order(registry: Registry) -> list[str]:
    """The moved answers' comments in the order their rows lie in the table (rowid / ctid)."""
    position = "ctid" if registry.store.engine.dialect.name == "postgresql" else "rowid"
    async with registry.store.reading() as tx:
        return list((await tx.session.execute(text(f"SELECT comment FROM survey_answers ORDER BY {position}")))
                    .scalars())


async def _xmins(registry: Registry, table: str, where: str = "") -> list[int]:
    async with registry.store.reading() as tx:
        return list((await tx.session.execute(text(f"SELECT xmin::text::bigint FROM {table} {where}"))).scalars())


async def _figures(registry: Registry) -> tuple[dict, list[str]]:
    report = await annual_report(registry.store, 2026, registry.policy.timezone)
    return report["satisfaction"], sorted(await survey.comments(registry.store, 2026))


def test_answers_move_once_a_batch_is_full_or_the_oldest_waited_long_enough():
    today = date(2026, 11, 24)
    assert not survey.release_due(0, None, today)
    assert not survey.release_due(survey.RELEASE_BATCH - 1, today - timedelta(days=survey.RELEASE_AFTER_DAYS - 1),
                                  today)
    assert survey.release_due(survey.RELEASE_BATCH, today, today)
    assert survey.release_due(1, today - timedelta(days=survey.RELEASE_AFTER_DAYS), today)


async def test_answers_wait_apart_then_move_shuffled_under_new_ids_with_their_figures_unchanged(office):
    registry, _publisher, clock, _seal = office
    postgres = registry.store.engine.dialect.name == "postgresql"
    tokens = await _tokens(office, 20)
    first_wave = survey.RELEASE_BATCH - 1
    for index, token in enumerate(tokens[:first_wave]):
        await _answer(registry, token, index)
    if postgres:  # the very link this guards against: the waiting row is the invitation's transaction's
        [waiting_xmin] = await _xmins(registry, "survey_answers_waiting", "WHERE comment = 'réponse 0'")
        answered_xmins = await _xmins(registry, "survey_invitations", "WHERE answered")
        assert waiting_xmin in answered_xmins
    assert await registry.handle(InviteToSurveys(clock().date())) == 0  # the sweep: a batch is not full yet
    assert await _rows(registry, SurveyAnswer) == []
    assert len(await _rows(registry, SurveyAnswerWaiting)) == first_wave

    for index, token in enumerate(tokens[first_wave:], start=first_wave):
        await _answer(registry, token, index)
    waiting_ids = {row.id for row in await _rows(registry, SurveyAnswerWaiting)}
    before = await _figures(registry)
    assert before[0]["responses"] == 20  # the figures count the answers waiting
    assert before[1] == sorted(f"réponse {index}" for index in range(20))

    await registry.handle(InviteToSurveys(clock().date()))
    moved = await _rows(registry, SurveyAnswer)
    assert len(moved) == 20 and await _rows(registry, SurveyAnswerWaiting) == []
    assert not waiting_ids & {row.id for row in moved}  # new ids: the waiting rows' ids lead nowhere
    assert await _figures(registry) == before  # the same figures and comments, moved or not
    # Not in the order they were given (the chance of a shuffle keeping 20 rows in order is 1 in 20!).
    order = await _physical_order(registry)
    assert sorted(order) == sorted(f"réponse {index}" for index in range(20))
    assert order != [f"réponse {index}" for index in range(20)]
    if postgres:  # one transaction id for every answer moved and every invitation answered lately
        batch = set(await _xmins(registry, "survey_answers"))
        assert len(batch) == 1
        assert set(await _xmins(registry, "survey_invitations", "WHERE answered")) == batch
    # Answerable once still: the invitation stays closed through the move.
    again = await registry.handle(AnswerSurvey(tokens[0], SurveyAnswers(overall=1)))
    assert again is SurveyState.ANSWERED


async def test_a_lone_answer_moves_after_a_week_with_the_watcher(office):
    registry, _publisher, clock, _seal = office
    [token] = await _tokens(office, 1)
    await _answer(registry, token, 0)
    watcher = DeadlineWatcher(registry, lead_days=())
    clock.advance(days=survey.RELEASE_AFTER_DAYS - 1)
    await watcher.check()
    assert [row.comment for row in await _rows(registry, SurveyAnswerWaiting)] == ["réponse 0"]
    clock.advance(days=1)
    await watcher.check()
    assert await _rows(registry, SurveyAnswerWaiting) == []
    [moved] = await _rows(registry, SurveyAnswer)
    assert (moved.year, moved.clarity, moved.delay, moved.overall, moved.comment) == (2026, 1, 5, 3, "réponse 0")


async def test_migration_0019_writes_earlier_answers_again_shuffled_under_new_ids(database_url):
    engine = create_engine(database_url)
    try:
        await _upgrade_to(engine, "0018_privacy_export")
        answers = sa.table("survey_answers", *(sa.column(name) for name in (
            "id", "year", "clarity", "delay", "respect", "overall", "comment")))
        earlier = [{"id": f"{index:032x}", "year": 2026, "clarity": index % 5 + 1, "delay": None, "respect": 4,
                    "overall": 5, "comment": f"avant {index}"} for index in range(20)]
        async with engine.begin() as connection:
            for row in earlier:  # one at a time, as they were answered
                await connection.execute(sa.insert(answers), [row])
        await migrate(engine)
        position = "ctid" if engine.dialect.name == "postgresql" else "rowid"
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                f"SELECT id, year, clarity, delay, respect, overall, comment FROM survey_answers ORDER BY {position}"
            ))).all()
            xmins = set((await connection.execute(text("SELECT xmin::text::bigint FROM survey_answers"))).scalars()) \
                if engine.dialect.name == "postgresql" else {0}
    finally:
        await engine.dispose()
    assert sorted(tuple(row[1:]) for row in rows) == sorted(tuple(row.values())[1:] for row in earlier)
    assert not {row[0] for row in rows} & {row["id"] for row in earlier}
    assert [row[6] for row in rows] != [row["comment"] for row in earlier]
    assert len(xmins) == 1
