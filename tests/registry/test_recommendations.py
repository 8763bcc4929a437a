"""Recommendations followed up (issue 15): the rules (pure), a recommendation through its statuses into the annual
indicators, general ones, the review reminder raised once per review date (clock-controlled), and the CLI — on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from services.registry.mediation import recommendation_store
from services.registry.commands import (
    AddRecommendation,
    FollowUpRecommendation,
    IssueRecommendation,
    SetRecommendationReview,
)
from services.registry.handlers import Conflict, NotFound
from services.registry.indicators import RecommendationRecord, annual_indicators
from services.registry.mediation.recommendations import (
    FollowUp,
    RecommendationRefused,
    check_addressee,
    follow_up,
    review_reminder,
)
from services.registry.reports import annual_report
from services.registry.watcher import DeadlineWatcher
from shared.events import ComplaintChanged, DeadlineApproaching, DeadlineMissed
from tests.registry.conftest import received

AGENT = "agent@med.be"
BRUSSELS = ZoneInfo("Europe/Brussels")


# --- the rules -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("current", "target", "reason", "expected"), [
    ("pending", "accepted", None, ("accepted", None)),
    ("pending", "implemented", "  done in   March ", ("implemented", "done in March")),
    ("accepted", "implemented", None, ("implemented", None)),
    ("pending", "refused", "budget", ("refused", "budget")),
    ("refused", "accepted", "after our annual report", ("accepted", "after our annual report")),
])
def test_follow_up_moves(current, target, reason, expected):
    status, why = follow_up(current, target, reason)
    assert (status.value, why) == expected


@pytest.mark.parametrize(("current", "target", "reason", "code"), [
    ("pending", "refused", None, "reason_required"),
    ("pending", "refused", "   ", "reason_required"),
    ("implemented", "refused", "changed its mind", "illegal_follow_up"),
    ("accepted", "pending", None, "illegal_follow_up"),
    ("pending", "pending", None, "illegal_follow_up"),
    ("pending", "forgotten", None, "unknown_status"),
])
def test_follow_up_refusals(current, target, reason, code):
    with pytest.raises(RecommendationRefused) as refused:
        follow_up(current, target, reason)
    assert refused.value.code == code


def test_review_reminder_is_due_once_per_review_date_and_only_while_open():
    day = date(2027, 3, 1)
    assert review_reminder("pending", day, None, day - timedelta(days=1)) is None  # not yet
    due = review_reminder("pending", day, None, day)
    assert due is not None and due.review_date == day and due.missed is False
    late = review_reminder("accepted", day, None, day + timedelta(days=3))
    assert late is not None and late.missed is True
    assert review_reminder("pending", day, day, day + timedelta(days=3)) is None  # already reminded of that date
    assert review_reminder("pending", day, day - timedelta(days=7), day) is not None  # a new date: its own reminder
    assert review_reminder("implemented", day, None, day) is None
    assert review_reminder("refused", day, None, day) is None
    assert review_reminder("pending", None, None, day) is None


def test_addressee_is_one_bounded_line():
    assert check_addressee("  SPF\n  Finances ") == "SPF Finances"
    with pytest.raises(RecommendationRefused):
        check_addressee("   ")
    with pytest.raises(RecommendationRefused):
        check_addressee("x" * 301)


def test_pure_indicators_count_the_year_s_recommendations_by_status_and_service():
    records = [
        RecommendationRecord(date(2026, 2, 1), "implemented", "SPF Finances"),
        RecommendationRecord(date(2026, 5, 1), "refused", "SPF Finances", general=True),
        RecommendationRecord(date(2026, 12, 31), "pending", ""),
        RecommendationRecord(date(2025, 12, 31), "pending", "SPF Finances"),  # issued the year before
    ]
    figures = annual_indicators([], 2026, recommendations=records)["recommendations"]
    assert figures == {
        "total": 3, "general": 1,
        "by_status": {"pending": 1, "accepted": 0, "implemented": 1, "refused": 1},
        "by_service": {
            "SPF Finances": {"total": 2, "pending": 0, "accepted": 0, "implemented": 1, "refused": 1},
            "unspecified": {"total": 1, "pending": 1, "accepted": 0, "implemented": 0, "refused": 0},
        },
    }
    # A year without recommendations reads as before they existed.
    assert "recommendations" not in annual_indicators([], 2025)


# --- through the register --------------------------------------------------------------------------------------------
async def test_a_recommendation_through_its_statuses_into_the_indicators(registry_on_db):
    registry, published, clock = registry_on_db  # 24 November 2026
    outcome = await registry.on_message_received(received(at=clock.now))
    number = outcome.number
    complaint = await registry.handle(AddRecommendation(
        number, "Publier le calendrier des remboursements", AGENT, addressee="SPF Finances",
        review_date=date(2027, 1, 15), request_key="form-1"))
    again = await registry.handle(AddRecommendation(  # the same form sent twice: one recommendation
        number, "Publier le calendrier des remboursements", AGENT, addressee="SPF Finances",
        review_date=date(2027, 1, 15), request_key="form-1"))
    assert complaint.recommendations == again.recommendations == ["Publier le calendrier des remboursements"]
    [row] = await recommendation_store.of_complaint(registry.store, complaint.id)
    assert (row.addressee, row.status, row.issued_on, row.review_date) == (
        "SPF Finances", "pending", date(2026, 11, 24), date(2027, 1, 15))

    general = await registry.handle(IssueRecommendation(
        None, "Simplifier les formulaires de réclamation", AGENT, addressee="SPF Finances"))
    other = await registry.handle(IssueRecommendation(None, "Former l'accueil", AGENT, addressee="Actiris"))
    with pytest.raises(Conflict):  # a general recommendation names its addressee
        await registry.handle(IssueRecommendation(None, "Sans destinataire", AGENT))

    accepted = await registry.handle(FollowUpRecommendation(row.id, "accepted", AGENT, "courrier du 3 décembre"))
    assert accepted.status == FollowUp.ACCEPTED
    done = await registry.handle(FollowUpRecommendation(row.id, "implemented", AGENT))
    assert done.status == "implemented"
    with pytest.raises(Conflict):  # a refusal needs the administration's reason
        await registry.handle(FollowUpRecommendation(general.id, "refused", AGENT))
    await registry.handle(FollowUpRecommendation(general.id, "refused", AGENT, "pas de budget en 2027"))
    with pytest.raises(NotFound):
        await registry.handle(FollowUpRecommendation(999_999, "accepted", AGENT))

    [row] = await recommendation_store.of_complaint(registry.store, complaint.id)
    assert [(h["change"], h.get("to")) for h in row.history] == [
        ("issued", None), ("status", "accepted"), ("status", "implemented")]
    assert row.history[1]["reason"] == "courrier du 3 décembre" and row.history[1]["actor"] == AGENT
    # The file's history says it too, published as ComplaintChanged.
    changes = [e.change for e in published.of(ComplaintChanged) if e.complaint_number == number]
    assert changes == ["registered", "recommendation", "recommendation_follow_up", "recommendation_follow_up"]

    figures = await annual_report(registry.store, 2026, BRUSSELS)
    assert figures["recommendations"] == {
        "total": 3, "general": 2,
        "by_status": {"pending": 1, "accepted": 0, "implemented": 1, "refused": 1},
        "by_service": {
            "Actiris": {"total": 1, "pending": 1, "accepted": 0, "implemented": 0, "refused": 0},
            "SPF Finances": {"total": 2, "pending": 0, "accepted": 0, "implemented": 1, "refused": 1},
        },
    }
    assert other.status == "pending"
    assert await annual_report(registry.store, 2025, BRUSSELS) == annual_indicators([], 2025)

    listed = await recommendation_store.list_recommendations(
        registry.store, recommendation_store.RecommendationFilter(status="refused"))
    assert [(r.recommendation.id, r.number) for r in listed] == [(general.id, None)]
    by_service = await recommendation_store.list_recommendations(
        registry.store, recommendation_store.RecommendationFilter(addressee="SPF Finances"))
    assert [r.number for r in by_service] == [None, number]  # newest first


async def test_a_file_s_recommendation_defaults_to_the_file_s_service(registry_on_db):
    registry, _published, clock = registry_on_db
    outcome = await registry.on_message_received(received(at=clock.now))
    await registry.handle(AddRecommendation(outcome.number, "Revoir la lettre type", AGENT))
    complaint = await registry.store.complaint(outcome.number)
    [row] = await recommendation_store.of_complaint(registry.store, complaint.id)
    assert row.addressee == (complaint.service_concerned or "")
    with pytest.raises(Conflict):
        await registry.handle(AddRecommendation(outcome.number, "   ", AGENT))


async def test_the_review_reminder_goes_out_once_per_review_date(registry_on_db):
    registry, published, clock = registry_on_db  # Tuesday 24 November 2026
    outcome = await registry.on_message_received(received(at=clock.now))
    number = outcome.number
    first = await registry.handle(IssueRecommendation(number, "Clarifier le courrier", AGENT,
                                                      addressee="SPF Finances", review_date=date(2026, 11, 26)))
    # A second one of the same file reviewed the same day: one reminder covers both.
    await registry.handle(IssueRecommendation(number, "Former l'accueil", AGENT, addressee="SPF Finances",
                                              review_date=date(2026, 11, 26)))
    general = await registry.handle(IssueRecommendation(None, "Publier les délais", "chef@med.be",
                                                        addressee="Actiris", review_date=date(2026, 11, 28)))
    watcher = DeadlineWatcher(registry, lead_days=())

    def reminders():
        return [(type(e).__name__, e.complaint_number, e.due, e.handler.email if e.handler else None)
                for e in published.events if isinstance(e, DeadlineApproaching | DeadlineMissed)
                and e.deadline_kind == "recommendation_review"]

    await watcher.check()
    assert reminders() == []
    clock.advance(days=2)  # 26 November: the file's review date
    await watcher.check()
    await watcher.check()  # and again: nothing more
    # The file has no handler yet: whoever issued the recommendation is reminded.
    assert reminders() == [("DeadlineApproaching", number, date(2026, 11, 26), AGENT)]
    clock.advance(days=3)  # 29 November: the general one's date passed without a pass of the watcher that day
    await watcher.check()
    assert reminders()[1:] == [("DeadlineMissed", f"REC-{general.id}", date(2026, 11, 28), "chef@med.be")]
    # A new review date is reminded of again, once; a recommendation whose fate is known is not.
    await registry.handle(SetRecommendationReview(first.id, date(2026, 12, 3), AGENT, "relance envoyée"))
    await registry.handle(FollowUpRecommendation(general.id, "implemented", AGENT))
    await registry.handle(SetRecommendationReview(general.id, date(2026, 12, 3), AGENT))
    clock.advance(days=4)  # 3 December
    await watcher.check()
    await watcher.check()
    assert reminders()[2:] == [("DeadlineApproaching", number, date(2026, 12, 3), AGENT)]
    [event] = [e for e in published.events if isinstance(e, DeadlineApproaching)
               and e.deadline_kind == "recommendation_review" and e.due == date(2026, 12, 3)]
    assert event.subject_line == "Clarifier le courrier" and event.service_concerned == "SPF Finances"


async def test_the_sweep_reads_bounded_pages(registry_on_db):
    from services.registry.commands import RemindRecommendationReviews

    registry, published, clock = registry_on_db
    for index in range(7):
        await registry.handle(IssueRecommendation(None, f"Recommandation {index}", AGENT, addressee=f"Service {index}",
                                                  review_date=clock.now.date()))
    assert await registry.handle(RemindRecommendationReviews(clock.now.date(), page=3)) == 7
    assert await registry.handle(RemindRecommendationReviews(clock.now.date(), page=3)) == 0
    assert len({e.complaint_number for e in published.of(DeadlineApproaching)}) == 7


def test_the_cli_adds_follows_up_and_lists(database_url, monkeypatch, tmp_path):
    from services.registry.cli import app

    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    added = ok("recommendation", "add", "Publier les délais de traitement", "--by", AGENT, "--to", "SPF Finances",
               "--on", "2026-03-02", "--review", "2026-06-01", "--lang", "en")
    recommendation_id = added.split()[0]
    assert "general" in added and "SPF Finances" in added and "Pending" in added
    refused = runner.invoke(app, ["recommendation", "status", recommendation_id, "refused", "--by", AGENT])
    assert refused.exit_code == 3 and "reason" in refused.output
    ok("recommendation", "status", recommendation_id, "refused", "--by", AGENT, "--reason", "pas de budget")
    ok("recommendation", "review", recommendation_id, "none", "--by", AGENT)
    [listed] = json.loads(ok("recommendation", "list", "--status", "refused", "--json"))
    assert listed["status"] == "refused" and listed["status_reason"] == "pas de budget"
    assert listed["review_date"] is None and listed["number"] is None
    report = json.loads(ok("indicators", "2026", "--as-of", "2026-12-31"))
    assert report["recommendations"]["by_service"]["SPF Finances"]["refused"] == 1
