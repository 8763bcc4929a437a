"""The status bookkeeping of a complaint (`complaint_state.ComplaintState`, pure): which statuses each move reaches
and which dates it sets or clears. Expected dates are counted by hand on the 2026-2027 Belgian calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.registry.complaint_state import ComplaintState
from services.registry.deadlines import DeadlineKind, DeadlineRules, ExtensionRefused
from services.registry.vocabulary import Status
from services.registry.workflow import IllegalTransition

RULES = DeadlineRules()  # 5 working days to acknowledge, 45 calendar days to answer, 90 when extended
START = date(2026, 11, 24)  # a Tuesday
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)


def _registered() -> ComplaintState:
    return ComplaintState.registered(START, RULES)


def _moved(state: ComplaintState, *targets: str, now: datetime = NOW, **details: object) -> ComplaintState:
    for target in targets:
        state = state.moved_to(target, now=now, today=now.date(), rules=RULES, **details)
    return state


def test_a_registered_complaint_is_received_with_its_two_deadlines():
    state = _registered()
    assert state.status is Status.RECEIVED
    # 5 working days after Tuesday 24 November: 25, 26, 27, 30 November, 1 December.
    assert state.acknowledgment_due == date(2026, 12, 1)
    # 24 November + 45 days = Friday 8 January 2027.
    assert state.answer_due == date(2027, 1, 8)
    assert (state.acknowledged_at, state.answered_at, state.closed_at, state.paused_since) == (None,) * 4
    assert state.open_deadlines() == {DeadlineKind.ACKNOWLEDGMENT: date(2026, 12, 1),
                                      DeadlineKind.ANSWER: date(2027, 1, 8)}


def test_acknowledging_dates_it_once():
    state = _moved(_registered(), "acknowledged")
    assert (state.status, state.acknowledged_at) == (Status.ACKNOWLEDGED, NOW)
    assert DeadlineKind.ACKNOWLEDGMENT not in state.open_deadlines()
    reopened = _moved(state, "in_review", "answered", now=NOW + timedelta(days=3))
    assert reopened.acknowledged_at == NOW  # later moves never date it again


def test_the_acknowledgment_sent_acknowledges_a_received_complaint_only():
    sent_at = datetime(2026, 11, 24, 9, 31, tzinfo=timezone.utc)
    state = _registered().acknowledgment_sent(sent_at)
    assert (state.status, state.acknowledged_at) == (Status.ACKNOWLEDGED, sent_at)
    assert state.acknowledgment_sent(sent_at + timedelta(hours=1)) == state  # the first one counts
    # Staff had already declared it inadmissible: the notice dates the acknowledgment, the status stays.
    ended = _moved(_registered(), "inadmissible", reasons=("anonymous",)).acknowledgment_sent(sent_at)
    assert (ended.status, ended.acknowledged_at) == (Status.INADMISSIBLE, sent_at)


def test_a_failed_acknowledgment_reverts_what_it_did():
    sent_at = datetime(2026, 11, 24, 9, 31, tzinfo=timezone.utc)
    acknowledged = _registered().acknowledgment_sent(sent_at)
    reverted = acknowledged.acknowledgment_failed(sent_at)
    assert (reverted.status, reverted.acknowledged_at) == (Status.RECEIVED, None)
    assert DeadlineKind.ACKNOWLEDGMENT in reverted.open_deadlines()  # the deadline runs again
    # Another notice's failure, or one never reported sent, changes nothing.
    assert acknowledged.acknowledgment_failed(sent_at + timedelta(minutes=5)) == acknowledged
    assert acknowledged.acknowledgment_failed(None) == acknowledged
    # Staff moved on since: the date is cleared, their status stays.
    in_review = _moved(acknowledged, "in_review").acknowledgment_failed(sent_at)
    assert (in_review.status, in_review.acknowledged_at) == (Status.IN_REVIEW, None)


def test_waiting_for_the_citizen_pauses_the_answer_clock_and_moves_the_deadline():
    waiting = _moved(_registered(), "acknowledged", "in_review", "waiting_for_citizen")
    assert waiting.paused_since == NOW.date()
    assert DeadlineKind.ANSWER not in waiting.open_deadlines()
    later = NOW + timedelta(days=10)
    resumed = _moved(waiting, "in_review", now=later)
    assert (resumed.paused_since, resumed.paused_days) == (None, 10)
    # 24 November + 45 + 10 days = Monday 18 January 2027.
    assert resumed.answer_due == date(2027, 1, 18)
    assert resumed.open_deadlines()[DeadlineKind.ANSWER] == date(2027, 1, 18)


def test_answering_closing_and_reopening_set_and_clear_the_end_date():
    answered = _moved(_registered(), "acknowledged", "in_review", "answered")
    assert (answered.answered_at, answered.closed_at) == (NOW, None)
    assert answered.open_deadlines() == {}  # no deadline runs once answered
    closed_at = NOW + timedelta(days=2)
    closed = _moved(answered, "closed", now=closed_at, outcome="founded", category="file_processing")
    assert (closed.status, closed.closed_at, closed.outcome, closed.outcome_category) == (
        Status.CLOSED, closed_at, "founded", "file_processing")
    assert closed.ended and closed.ended_on(ZoneInfo("Europe/Brussels")) == date(2026, 11, 27)
    reopened = _moved(closed, "in_review", now=closed_at + timedelta(days=5))
    assert (reopened.status, reopened.closed_at, reopened.ended_on(ZoneInfo("Europe/Brussels"))) == (
        Status.IN_REVIEW, None, None)
    assert reopened.answered_at == NOW  # the first answer stays dated


def test_early_exits_record_their_decision():
    inadmissible = _moved(_registered(), "inadmissible", reasons=("anonymous", "facts_too_old"))
    assert (inadmissible.admissibility, inadmissible.admissibility_reasons, inadmissible.closed_at) == (
        "inadmissible", ("anonymous", "facts_too_old"), NOW)
    redirected = _moved(_registered(), "redirected", redirect_to="federal-ombudsman")
    assert (redirected.status, redirected.redirected_to, redirected.closed_at) == (
        Status.REDIRECTED, "federal-ombudsman", NOW)
    assert redirected.open_deadlines() == {}
    assert _registered().admitted().admissibility == "admissible"


def test_an_illegal_move_changes_nothing():
    state = _registered()
    with pytest.raises(IllegalTransition, match="cannot go from received to closed"):
        _moved(state, "closed", outcome="unfounded")
    assert state == _registered()


def test_one_extension_before_the_notice_deadline():
    extended = _registered().extended(date(2026, 12, 10), RULES)
    # 24 November + 90 days = Monday 22 February 2027.
    assert (extended.answer_due, extended.answer_extended) == (date(2027, 2, 22), True)
    with pytest.raises(ExtensionRefused, match="already been extended"):
        extended.extended(date(2026, 12, 11), RULES)
    with pytest.raises(ExtensionRefused):
        _registered().extended(date(2027, 1, 20), RULES)  # after the original deadline
