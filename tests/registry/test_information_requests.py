"""Requests for information to the citizen (issue 15): the pure rules (what screening proposes to ask, when the
reminder and the closing fall due, the days a pause lasts across holidays), then the handlers on a real database
(SQLite and PostgreSQL): the pause, the reply that resumes it, the reminder and the closing each exactly once, and
the same command or event handled twice changing nothing.

Expected dates are worked out by hand in the comments (weekdays and Belgian public holidays), not by the code."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone

import pytest

from services.registry import deadlines
from services.registry.commands import (
    RecordFacts,
    RequestInformation,
    SweepInformationRequests,
    Transition,
)
from services.registry.complaint_state import ComplaintState
from services.registry.handlers import Conflict, Registry
from services.registry.mediation.information_requests import (
    DueAction,
    InformationPolicy,
    InformationRequestError,
    MissingItem,
    parse_missing,
    pause_record,
    proposal_missing,
    proposed_missing,
)
from services.registry.models import InformationRequest
from services.registry.watcher import DeadlineWatcher
from shared.events import ComplaintChanged, NoticeRequested
from tests.registry.conftest import received

BE = deadlines.DeadlineRules()
AGENT = "agent@med.be"


# --- the pure rules --------------------------------------------------------------------------------------------------
def test_screening_findings_become_what_to_ask_in_a_fixed_order():
    codes = ["competence_to_verify", "identity_to_verify", "first_line_to_verify", "facts_too_old",
             "first_line_to_verify"]
    assert proposed_missing(codes) == (MissingItem.FIRST_LINE_CONTACT, MissingItem.LAST_STEP_DATE,
                                       MissingItem.IDENTITY)
    assert proposed_missing(["anonymous", "out_of_competence"]) == ()  # decided, nothing to ask


def test_a_stored_proposal_without_the_list_still_proposes_from_its_checks():
    old = {"reasons": [], "checks": [{"code": "facts_date_to_verify"}, {"code": "identity_to_verify"}]}
    assert proposal_missing(old) == (MissingItem.FACTS_DATE, MissingItem.IDENTITY)
    assert proposal_missing({**old, "information_request": ["postal_address", "not-an-item"]}) == (
        MissingItem.POSTAL_ADDRESS,)
    assert proposal_missing(None) == ()


def test_a_required_postal_address_missing_is_a_check_and_a_question():
    from services.registry.screening import ScreeningConfig, ScreeningInput, screen
    from services.registry.screening_files import EXAMPLE_DIRECTORY, EXAMPLE_RULES

    rules = EXAMPLE_RULES.read_text(encoding="utf-8").replace(
        "require_first_line = true", "require_first_line = true\nrequire_postal_address = true")
    strict = ScreeningConfig.from_toml(rules, EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    text = "Plainte: j'ai contacté le service des plaintes, sans réponse."
    by_mail = ScreeningInput(received=date(2026, 11, 24), sender_name="", sender_email="j@example.org", text=text)
    proposal = screen(by_mail, strict)
    assert [c.code for c in proposal.checks] == ["identity_to_verify", "postal_address_to_verify"]
    assert proposal.to_dict()["information_request"] == ["identity", "postal_address"]
    with_address = ScreeningInput(received=date(2026, 11, 24), sender_name="Jeanne Dupont",
                                  postal_address="Rue Haute 1, 1000 Bruxelles", text=text)
    assert screen(with_address, strict).to_dict()["information_request"] == []


@pytest.mark.parametrize("hostile", ["", "facts date", "FACTS_DATE", "postal_address\n", "<script>", "é" * 500])
def test_unknown_items_are_refused_by_name(hostile):
    if hostile.strip() == "postal_address":
        assert parse_missing([hostile]) == (MissingItem.POSTAL_ADDRESS,)  # surrounding space is not a new item
        return
    with pytest.raises(InformationRequestError, match="unknown missing item"):
        parse_missing(["facts_date", hostile])


def test_policy_refuses_a_closing_not_after_the_reminder():
    with pytest.raises(InformationRequestError):
        InformationPolicy(reminder_days=14, closing_days=14)
    with pytest.raises(InformationRequestError):
        InformationPolicy(reminder_days=0, closing_days=30)


def test_reply_date_moves_to_the_next_working_day_like_the_answer_deadline():
    policy = InformationPolicy(reminder_days=14, closing_days=30)
    # Thursday 24 November 2026 + 30 days = Thursday 24 December 2026, a working day.
    assert policy.reply_by(date(2026, 11, 24), BE) == date(2026, 12, 24)
    # Friday 26 February 2027 + 30 = Sunday 28 March 2027 (Easter); Monday 29 March is Easter Monday: Tuesday 30.
    assert policy.reply_by(date(2027, 2, 26), BE) == date(2027, 3, 30)


def test_reminder_then_closing_fall_due_on_their_days():
    policy = InformationPolicy(reminder_days=14, closing_days=30)
    asked, reply_by = date(2026, 11, 24), date(2026, 12, 24)

    def due(today: date, reminded: bool = False) -> DueAction | None:
        return policy.due_action(reply_by=reply_by, requested_on=asked, reminded=reminded, today=today)

    assert due(date(2026, 12, 7)) is None  # 13 days
    assert due(date(2026, 12, 8)) is DueAction.REMIND  # 14 days
    assert due(date(2026, 12, 9), reminded=True) is None
    assert due(date(2026, 12, 24), reminded=True) is None  # the reply date itself still counts
    assert due(date(2026, 12, 25), reminded=True) is DueAction.CLOSE
    assert due(date(2027, 1, 5)) is DueAction.CLOSE  # a watcher down for weeks closes; no stale reminder first


def test_days_paused_across_the_holidays_are_calendar_days():
    state = ComplaintState.registered(date(2026, 12, 1), BE)
    # 1 December 2026 + 45 days = Friday 15 January 2027.
    assert state.answer_due == date(2027, 1, 15)
    for status, day in (("acknowledged", date(2026, 12, 2)), ("in_review", date(2026, 12, 3)),
                        ("waiting_for_citizen", date(2026, 12, 20))):
        state = state.moved_to(status, now=datetime(2026, 12, 20, tzinfo=timezone.utc), today=day, rules=BE)
    resumed = state.moved_to("in_review", now=datetime(2027, 1, 4, tzinfo=timezone.utc), today=date(2027, 1, 4),
                             rules=BE)
    # 20 December to 4 January: 15 calendar days, Christmas, 26 December and New Year's Day included.
    record = pause_record(state, resumed)
    assert record["paused_days"] == 15 and record["total_paused_days"] == 15
    assert record["paused_since"] == date(2026, 12, 20)
    # 1 December + 60 days = Saturday 30 January 2027: Monday 1 February.
    assert record["answer_due"] == {"from": date(2027, 1, 15), "to": date(2027, 2, 1)}


def test_a_moved_deadline_falling_on_easter_monday_goes_to_the_tuesday():
    state = ComplaintState.registered(date(2027, 1, 20), BE)
    # 20 January 2027 + 45 = Saturday 6 March: Monday 8 March.
    assert state.answer_due == date(2027, 3, 8)
    for status in ("acknowledged", "in_review", "waiting_for_citizen"):
        state = state.moved_to(status, now=datetime(2027, 2, 1, tzinfo=timezone.utc), today=date(2027, 2, 1),
                               rules=BE)
    resumed = state.moved_to("in_review", now=datetime(2027, 2, 22, tzinfo=timezone.utc), today=date(2027, 2, 22),
                             rules=BE)
    # 21 days paused: 20 January + 66 = Saturday 27 March, Sunday 28 (Easter), Monday 29 (Easter Monday): Tuesday 30.
    assert pause_record(state, resumed)["answer_due"]["to"] == date(2027, 3, 30)


def test_pause_record_refuses_a_change_that_ended_no_pause():
    state = ComplaintState.registered(date(2027, 1, 20), BE)
    with pytest.raises(InformationRequestError):
        pause_record(state, state)


# --- the handlers on a database --------------------------------------------------------------------------------------
async def _acknowledged(registry: Registry, clock, **fields) -> str:
    outcome = await registry.on_message_received(received(at=clock.now, **fields))
    await registry.handle(Transition(outcome.number, "acknowledged", AGENT))
    return outcome.number


async def _requests(registry: Registry, number: str) -> list[InformationRequest]:
    from sqlalchemy import select

    async with registry.store.transaction() as tx:
        complaint = await tx.complaint_by_number(number)
        rows = await tx.session.execute(select(InformationRequest).where(
            InformationRequest.complaint_id == complaint.id).order_by(InformationRequest.id))
        return list(rows.scalars())


def _notices(published, kind: str, number: str) -> list[NoticeRequested]:
    return [e for e in published.of(NoticeRequested) if e.notice_kind == kind and e.complaint_number == number]


def _changes(published, change: str, number: str) -> list[ComplaintChanged]:
    return [e for e in published.of(ComplaintChanged) if e.change == change and e.complaint_number == number]


async def test_a_request_pauses_the_clock_and_asks_in_the_citizens_language(registry_on_db):
    registry, published, clock = registry_on_db  # Tuesday 24 November 2026, 10:00 UTC
    number = await _acknowledged(registry, clock, language="nl")
    command = RequestInformation(number, ("postal_address", "first_line_contact"),
                                 "  Graag ook uw rijksregisternummer. ", AGENT, "screening proposal")
    complaint = await registry.handle(command)
    assert complaint.status == "waiting_for_citizen" and complaint.paused_since == date(2026, 11, 24)
    [notice] = _notices(published, "information_request", number)
    assert notice.recipient.language == "nl" and notice.recipient.email == "jeanne.dupont@example.org"
    # In the closed list's order, whatever the order staff ticked them in; 24 November + 30 = 24 December.
    assert notice.context["missing"] == ["first_line_contact", "postal_address"]
    assert notice.context["text"] == "Graag ook uw rijksregisternummer."
    assert notice.context["reply_by"] == "2026-12-24"
    statuses = [(c.details["from"], c.details["to"]) for c in _changes(published, "status", number)]
    assert statuses[-2:] == [("acknowledged", "in_review"), ("in_review", "waiting_for_citizen")]
    [logged] = _changes(published, "information_requested", number)
    assert logged.actor == AGENT and logged.details["paused"] is True

    # The same form submitted again (a double click, a retry) is the same request: nothing more.
    again = await registry.handle(command)
    assert again.status == "waiting_for_citizen"
    assert len(_notices(published, "information_request", number)) == 1
    assert len(await _requests(registry, number)) == 1


@pytest.mark.parametrize(("missing", "text", "message"), [
    ((), "   ", "says what is missing"),
    (("facts_date", "birthday"), "", "unknown missing item"),
    (("facts_date",), "x" * 20_001, "at most"),
])
async def test_a_request_that_asks_nothing_or_anything_is_refused(registry_on_db, missing, text, message):
    registry, published, clock = registry_on_db
    number = await _acknowledged(registry, clock)
    with pytest.raises(Conflict, match=message):
        await registry.handle(RequestInformation(number, missing, text, AGENT))
    assert (await registry.store.complaint(number)).status == "acknowledged"
    assert _notices(published, "information_request", number) == []


async def test_a_request_needs_an_acknowledged_open_file_and_a_way_to_reach_the_citizen(registry_on_db):
    registry, _published, clock = registry_on_db
    outcome = await registry.on_message_received(received(at=clock.now))
    with pytest.raises(Conflict, match="this one is received"):
        await registry.handle(RequestInformation(outcome.number, ("facts_date",), "", AGENT))
    await registry.handle(Transition(outcome.number, "withdrawn", AGENT))
    with pytest.raises(Conflict, match="this one is withdrawn"):
        await registry.handle(RequestInformation(outcome.number, ("facts_date",), "", AGENT))
    unreachable = await _acknowledged(registry, clock, email=None, name="Jeanne Dupont")
    with pytest.raises(Conflict, match="neither an email nor a postal address"):
        await registry.handle(RequestInformation(unreachable, ("facts_date",), "", AGENT))


async def test_the_citizens_reply_resumes_the_clock_with_the_days_counted(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _acknowledged(registry, clock)
    before = await registry.store.complaint(number)
    assert before.answer_due == date(2027, 1, 8)  # 24 November 2026 + 45 days
    await registry.handle(RequestInformation(number, ("facts_date",), "", AGENT))
    clock.advance(days=10)  # Friday 4 December
    reply = received(at=clock.now, subject=f"Re: [{number}] informations", candidate_case_numbers=(number,))
    outcome = await registry.on_message_received(reply)
    assert outcome.action == "appended"
    resumed = await registry.store.complaint(number)
    # 10 calendar days paused: 24 November + 55 = Monday 18 January 2027.
    assert (resumed.status, resumed.paused_days, resumed.paused_since) == ("in_review", 10, None)
    assert resumed.answer_due == date(2027, 1, 18)
    [answered] = _changes(published, "information_answered", number)
    assert answered.actor == "registry" and answered.details["message_key"] == reply.message_key
    assert answered.details["paused_days"] == 10 and answered.details["paused_since"] == "2026-11-24"
    assert answered.details["answer_due"] == {"from": "2027-01-08", "to": "2027-01-18"}
    [row] = await _requests(registry, number)
    assert row.resolution == "answered" and row.answer_message_key == reply.message_key

    # The same reply delivered again: a replay, the clock and the request as they were.
    assert (await registry.on_message_received(reply)).replay
    assert (await registry.store.complaint(number)).paused_days == 10
    assert len(_changes(published, "information_answered", number)) == 1
    # Nothing left to remind or close.
    clock.advance(days=40)
    assert await registry.handle(SweepInformationRequests(registry.today())) == 0


async def test_staff_resuming_or_answering_ends_the_request_with_the_pause_recorded(registry_on_db):
    registry, published, clock = registry_on_db
    phoned, answered = await _acknowledged(registry, clock), await _acknowledged(registry, clock)
    for number in (phoned, answered):
        await registry.handle(RequestInformation(number, ("first_line_contact",), "", AGENT))
    clock.advance(days=3)
    await registry.handle(RecordFacts(phoned, AGENT, "by phone", first_line_contacted=True))
    await registry.handle(Transition(phoned, "in_review", AGENT, "the citizen phoned"))
    await registry.handle(Transition(answered, "answered", AGENT, answer_text="Nous clôturons."))
    assert [r.resolution for r in await _requests(registry, phoned)] == ["answered"]
    assert [r.resolution for r in await _requests(registry, answered)] == ["ended"]
    [resumed] = _changes(published, "information_answered", phoned)
    assert resumed.actor == AGENT and resumed.details["paused_days"] == 3
    [ended] = _changes(published, "information_request_ended", answered)
    assert ended.details["paused_days"] == 3


async def test_reminder_then_closing_each_exactly_once(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _acknowledged(registry, clock, language="de")
    await registry.handle(RequestInformation(number, ("identity", "postal_address"), "", AGENT))
    watcher = DeadlineWatcher(registry, lead_days=(5, 1))
    sweep = SweepInformationRequests

    clock.advance(days=13)  # 7 December: 13 days
    assert await registry.handle(sweep(registry.today())) == 0
    clock.advance(days=1)  # 8 December: the reminder
    assert await registry.handle(sweep(registry.today())) == 1
    assert await registry.handle(sweep(registry.today())) == 0
    restarted = Registry(registry.store, registry.policy, published, clock=clock)  # another process, same database
    assert await restarted.handle(sweep(registry.today())) == 0
    [reminder] = _notices(published, "information_reminder", number)
    assert reminder.recipient.language == "de" and reminder.context["missing"] == ["identity", "postal_address"]
    assert (await registry.store.complaint(number)).status == "waiting_for_citizen"

    clock.advance(days=16)  # 24 December, the reply date: still waiting
    assert await registry.handle(sweep(registry.today())) == 0
    clock.advance(days=1)  # 25 December: closed, by the watcher's own pass
    assert await watcher.check() == 1
    assert await watcher.check() == 0 and await restarted.handle(sweep(registry.today())) == 0
    closed = await registry.store.complaint(number)
    assert (closed.status, closed.outcome) == ("closed", "no_assessment")
    # Paused from 24 November to 25 December: 31 days; the last answer deadline (8 January) moved to 8 February.
    assert closed.paused_days == 31 and closed.answer_due == date(2027, 2, 8)
    [notice] = _notices(published, "closed_no_answer", number)
    assert notice.context["reply_by"] == "2026-12-24"
    assert notice.context["reopen_until"] == "2027-01-24"  # the reopening window: 30 days from the closing day
    [logged] = _changes(published, "closed_no_answer", number)
    assert logged.details["paused_days"] == 31
    assert [r.resolution for r in await _requests(registry, number)] == ["closed_no_answer"]
    assert len(_notices(published, "information_reminder", number)) == 1


async def test_two_watchers_at_once_send_one_reminder(registry_on_db):
    registry, published, clock = registry_on_db
    numbers = [await _acknowledged(registry, clock) for _ in range(3)]
    for number in numbers:
        await registry.handle(RequestInformation(number, ("facts_date",), "", AGENT))
    clock.advance(days=14)
    other = Registry(registry.store, registry.policy, published, clock=clock)
    counts = await asyncio.gather(registry.handle(SweepInformationRequests(registry.today())),
                                  other.handle(SweepInformationRequests(registry.today())))
    assert sum(counts) == 3
    for number in numbers:
        assert len(_notices(published, "information_reminder", number)) == 1


async def test_sweep_reads_in_pages(registry_on_db):
    registry, published, clock = registry_on_db
    from dataclasses import replace

    paged = Registry(registry.store, replace(registry.policy, information=InformationPolicy(page_size=2)),
                     published, clock=clock)
    numbers = [await _acknowledged(paged, clock) for _ in range(5)]
    for number in numbers:
        await paged.handle(RequestInformation(number, ("facts_date",), "", AGENT))
    clock.advance(days=14)
    assert await paged.handle(SweepInformationRequests(paged.today())) == 5
    assert all(len(_notices(published, "information_reminder", n)) == 1 for n in numbers)


async def test_a_second_request_joins_the_pause_and_the_file_waits_for_its_later_date(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _acknowledged(registry, clock)
    await registry.handle(RequestInformation(number, ("facts_date",), "", AGENT))
    clock.advance(days=10)  # 4 December: another question, reply by 3 January 2027 (Sunday): Monday 4 January
    complaint = await registry.handle(RequestInformation(number, ("last_step_date",), "", AGENT))
    assert complaint.paused_since == date(2026, 11, 24)  # the pause that runs already
    first, second = await _requests(registry, number)
    assert (first.paused, second.paused) == (True, False)
    assert second.reply_by == date(2027, 1, 4)
    clock.advance(days=21)  # 25 December: the first request's date has passed, not the second's
    assert await registry.handle(SweepInformationRequests(registry.today())) == 1  # the second's reminder only
    assert (await registry.store.complaint(number)).status == "waiting_for_citizen"
    clock.advance(days=11)  # 5 January 2027
    assert await registry.handle(SweepInformationRequests(registry.today())) == 1
    assert (await registry.store.complaint(number)).status == "closed"
    [notice] = _notices(published, "closed_no_answer", number)
    assert notice.context["missing"] == ["facts_date", "last_step_date"]
    assert notice.context["reply_by"] == "2027-01-04"


async def test_a_reply_after_the_closing_follows_the_reopening_rules(registry_on_db):
    registry, _published, clock = registry_on_db
    late, too_late = await _acknowledged(registry, clock), await _acknowledged(registry, clock)
    for number in (late, too_late):
        await registry.handle(RequestInformation(number, ("facts_date",), "", AGENT))
    clock.advance(days=31)  # 25 December: both closed
    assert await registry.handle(SweepInformationRequests(registry.today())) == 2
    clock.advance(days=5)  # within the 30-day window: reopened for review
    outcome = await registry.on_message_received(received(at=clock.now, subject=f"Re: [{late}]",
                                                           candidate_case_numbers=(late,)))
    assert (outcome.action, (await registry.store.complaint(late)).status) == ("appended", "in_review")
    clock.advance(days=40)  # beyond it: a new complaint linked to the closed one
    outcome = await registry.on_message_received(received(at=clock.now, subject=f"Re: [{too_late}]",
                                                           candidate_case_numbers=(too_late,)))
    assert outcome.action == "registered"
    assert (await registry.store.complaint(outcome.number)).linked_number == too_late


async def test_screening_proposes_what_to_ask_and_recorded_facts_move_the_proposal(registry_on_db):
    registry, _published, clock = registry_on_db
    # No sign the service was contacted first, and only an old year: screening cannot decide either.
    outcome = await registry.on_message_received(received(at=clock.now, subject="Plainte: allocations").model_copy(
        update={"text": "Mon allocation de 2019 n'a jamais été payée."}))
    number = outcome.number
    proposal = (await registry.store.complaint(number)).screening_proposal
    assert proposal["information_request"] == ["first_line_contact", "facts_date"]
    # The citizen's answer, recorded by staff: screening runs again with the facts and asks for less.
    await registry.handle(RecordFacts(number, AGENT, "the citizen's reply", first_line_contacted=True))
    assert (await registry.store.complaint(number)).screening_proposal["information_request"] == ["facts_date"]
    await registry.handle(RecordFacts(number, AGENT, "the citizen's reply", facts_date=date(2019, 3, 1)))
    # The facts are old with no later step known: the proposal now asks for the last step.
    proposal = (await registry.store.complaint(number)).screening_proposal
    assert proposal["information_request"] == ["last_step_date"] and not proposal["admissible"]
    await registry.handle(RecordFacts(number, AGENT, "the citizen's reply", last_step_date=date(2026, 10, 1)))
    proposal = (await registry.store.complaint(number)).screening_proposal
    assert proposal["information_request"] == [] and proposal["admissible"]


async def test_facts_from_a_letters_metadata_feed_the_first_proposal(registry_on_db):
    registry, _published, clock = registry_on_db
    outcome = await registry.on_message_received(received(
        at=clock.now, first_line_contacted=True, facts_date=date(2026, 9, 1)).model_copy(
        update={"text": "Mon allocation de 2019 n'a jamais été payée."}))
    proposal = (await registry.store.complaint(outcome.number)).screening_proposal
    assert proposal["information_request"] == []


def test_settings_refuse_a_closing_before_the_reminder():
    from pydantic import ValidationError

    from services.registry.settings import RegistrySettings

    with pytest.raises(ValidationError, match="INFORMATION_REMINDER_DAYS"):
        RegistrySettings(information_reminder_days=14, information_closing_days=14)
    policy = RegistrySettings(information_reminder_days=7, information_closing_days=21).information_policy()
    assert (policy.reminder_days, policy.closing_days) == (7, 21)
