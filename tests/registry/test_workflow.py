"""The complaint life cycle: legal and illegal transitions, closing rules, follow-ups on ended cases, labels."""

from __future__ import annotations

from datetime import date
from itertools import pairwise, product

import pytest

from services.registry.vocabulary import LABELS, LANGUAGES, FoundedCategory, InadmissibilityReason, Kind, label
from services.registry.workflow import (
    OPEN_STATUSES,
    REOPENABLE_STATUSES,
    TERMINAL_STATUSES,
    FollowUpAction,
    IllegalTransition,
    Outcome,
    ReopenPolicy,
    Status,
    allowed_transitions,
    check_transition,
    clock_paused,
    decide_follow_up,
)

MAIN_PATH = [
    Status.RECEIVED,
    Status.ACKNOWLEDGED,
    Status.IN_REVIEW,
    Status.WAITING_FOR_CITIZEN,
    Status.IN_REVIEW,
    Status.ANSWERED,
]


def test_main_path_is_legal() -> None:
    for current, target in pairwise(MAIN_PATH):
        assert check_transition(current, target) is target
    assert (
        check_transition("answered", "closed", outcome="partially_founded", category="file_processing") is Status.CLOSED
    )


# Every pair the workflow allows; everything else must be refused.
EXPECTED_LEGAL = {
    ("received", "acknowledged"),
    ("received", "inadmissible"),
    ("received", "redirected"),
    ("received", "withdrawn"),
    ("acknowledged", "in_review"),
    ("acknowledged", "inadmissible"),
    ("acknowledged", "redirected"),
    ("acknowledged", "withdrawn"),
    ("in_review", "waiting_for_citizen"),
    ("in_review", "answered"),
    ("in_review", "inadmissible"),
    ("in_review", "redirected"),
    ("in_review", "withdrawn"),
    ("waiting_for_citizen", "in_review"),
    ("waiting_for_citizen", "answered"),
    ("waiting_for_citizen", "withdrawn"),
    ("answered", "closed"),
    ("answered", "in_review"),
    ("closed", "in_review"),
    ("inadmissible", "in_review"),
}


@pytest.mark.parametrize(("current", "target"), list(product([s.value for s in Status], repeat=2)))
def test_transition_table(current: str, target: str) -> None:
    kwargs: dict = {}
    if target == "closed":
        kwargs = {"outcome": "unfounded"}
    if target == "inadmissible":
        kwargs = {"reasons": ["anonymous"]}
    if (current, target) in EXPECTED_LEGAL:
        assert check_transition(current, target, **kwargs) == target
        assert Status(target) in allowed_transitions(current)
    else:
        with pytest.raises(IllegalTransition) as refused:
            check_transition(current, target, **kwargs)
        assert refused.value.code == "illegal_transition"
        assert f"from {current} to {target}" in str(refused.value)


def test_final_statuses_say_so() -> None:
    with pytest.raises(IllegalTransition, match="none, it is final"):
        check_transition("withdrawn", "in_review")


def test_error_lists_allowed_targets() -> None:
    with pytest.raises(IllegalTransition, match="allowed from received: acknowledged, inadmissible, redirected"):
        check_transition("received", "answered")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({}, "outcome_required"),
        ({"outcome": "founded"}, "category_required"),
        ({"outcome": "partially_founded"}, "category_required"),
        ({"outcome": "unfounded", "category": "staff_attitude"}, "category_not_allowed"),
        ({"outcome": "no_assessment", "category": "staff_attitude"}, "category_not_allowed"),
        ({"outcome": "fondée"}, "unknown_outcome"),
        ({"outcome": "founded", "category": "rudeness"}, "unknown_category"),
    ],
)
def test_closing_rules(kwargs: dict, code: str) -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_transition("answered", "closed", **kwargs)
    assert refused.value.code == code


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_can_close(outcome: Outcome) -> None:
    category = "staff_attitude" if outcome in (Outcome.FOUNDED, Outcome.PARTIALLY_FOUNDED) else None
    assert check_transition("answered", "closed", outcome=outcome, category=category) is Status.CLOSED


def test_outcome_only_when_closing() -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_transition("in_review", "answered", outcome="founded", category="service_quality")
    assert refused.value.code == "outcome_not_allowed"


def test_inadmissible_needs_known_reasons() -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_transition("received", "inadmissible")
    assert refused.value.code == "reason_required"
    with pytest.raises(IllegalTransition) as refused:
        check_transition("received", "inadmissible", reasons=["boring"])
    assert refused.value.code == "unknown_reason"
    assert check_transition("received", "inadmissible", reasons=["anonymous", "facts_too_old"]) is Status.INADMISSIBLE


def test_unknown_status() -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_transition("received", "archived")
    assert refused.value.code == "unknown_status"
    assert "expected one of" in str(refused.value)


def test_open_and_terminal_partition_statuses() -> None:
    assert set(Status) == OPEN_STATUSES | TERMINAL_STATUSES
    assert not OPEN_STATUSES & TERMINAL_STATUSES
    assert clock_paused("waiting_for_citizen")
    assert not any(clock_paused(s) for s in Status if s is not Status.WAITING_FOR_CITIZEN)


class TestFollowUp:
    today = date(2026, 11, 24)
    policy = ReopenPolicy(window_days=30)

    @pytest.mark.parametrize("status", ["received", "acknowledged", "in_review", "answered"])
    def test_open_case_attaches(self, status: str) -> None:
        decision = decide_follow_up(status, ended_on=None, today=self.today, policy=self.policy)
        assert decision.action is FollowUpAction.ATTACH
        assert decision.new_status is None

    def test_reply_while_waiting_resumes(self) -> None:
        decision = decide_follow_up("waiting_for_citizen", ended_on=None, today=self.today, policy=self.policy)
        assert (decision.action, decision.new_status) == (FollowUpAction.ATTACH_AND_RESUME, Status.IN_REVIEW)
        # ... and the resumed status is a legal transition.
        check_transition("waiting_for_citizen", decision.new_status)

    @pytest.mark.parametrize(
        ("ended_on", "action"),
        [
            (date(2026, 11, 24), FollowUpAction.ATTACH_AND_REOPEN),
            (date(2026, 10, 25), FollowUpAction.ATTACH_AND_REOPEN),  # day 30: still within
            (date(2026, 10, 24), FollowUpAction.NEW_LINKED_COMPLAINT),  # day 31
            (date(2025, 1, 1), FollowUpAction.NEW_LINKED_COMPLAINT),
        ],
    )
    @pytest.mark.parametrize("status", ["closed", "inadmissible"])
    def test_reopen_window(self, status: str, ended_on: date, action: FollowUpAction) -> None:
        decision = decide_follow_up(status, ended_on=ended_on, today=self.today, policy=self.policy)
        assert decision.action is action
        if action is FollowUpAction.ATTACH_AND_REOPEN:
            assert decision.new_status is Status.IN_REVIEW
            check_transition(status, decision.new_status)

    @pytest.mark.parametrize("status", ["redirected", "withdrawn"])
    def test_final_cases_never_reopen(self, status: str) -> None:
        recent = decide_follow_up(status, ended_on=date(2026, 11, 20), today=self.today, policy=self.policy)
        assert (recent.action, recent.new_status) == (FollowUpAction.ATTACH, None)
        old = decide_follow_up(status, ended_on=date(2026, 1, 20), today=self.today, policy=self.policy)
        assert old.action is FollowUpAction.NEW_LINKED_COMPLAINT

    def test_auto_replies_never_change_a_case(self) -> None:
        for status, ended in [
            ("waiting_for_citizen", None),
            ("closed", date(2026, 11, 23)),
            ("closed", date(2020, 1, 1)),
        ]:
            decision = decide_follow_up(status, ended_on=ended, today=self.today, policy=self.policy, automated=True)
            assert (decision.action, decision.new_status) == (FollowUpAction.ATTACH, None)

    def test_zero_window_and_bad_policies(self) -> None:
        zero = ReopenPolicy(window_days=0)
        assert decide_follow_up("closed", ended_on=self.today, today=self.today, policy=zero).action is (
            FollowUpAction.ATTACH_AND_REOPEN
        )
        assert decide_follow_up("closed", ended_on=date(2026, 11, 23), today=self.today, policy=zero).action is (
            FollowUpAction.NEW_LINKED_COMPLAINT
        )
        with pytest.raises(ValueError):
            ReopenPolicy(window_days=-1)
        # What may be reopened follows from the transitions, not from a policy: closed and inadmissible only.
        assert REOPENABLE_STATUSES == {Status.CLOSED, Status.INADMISSIBLE}
        with pytest.raises(ValueError, match="needs the date"):
            decide_follow_up("closed", ended_on=None, today=self.today)


def test_every_vocabulary_value_has_all_labels() -> None:
    for vocabulary in (Kind, Status, Outcome, FoundedCategory, InadmissibilityReason):
        for value in vocabulary:
            assert set(LABELS[value]) == set(LANGUAGES), value


def test_labels_french_first() -> None:
    assert label("partially_founded") == "Partiellement fondée"
    assert label("partially_founded", "nl-BE") == "Gedeeltelijk gegrond"
    assert label("founded", "de") == "Begründet"
    assert label("no_assessment", "en") == "No assessment"
    assert label("file_processing", "it") == "Traitement du dossier"
    assert label("not-a-value", "nl") == "not-a-value"


def _reachable(start: Status) -> set[Status]:
    seen = {start}
    frontier = [start]
    while frontier:
        for target in allowed_transitions(frontier.pop()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_every_status_is_reachable_and_every_case_can_end() -> None:
    # "merged" is reached only by merging two files (`handlers/merging.py`), never by a workflow transition.
    assert _reachable(Status.RECEIVED) == set(Status) - {Status.MERGED}
    assert not any(Status.MERGED in allowed_transitions(status) for status in Status)
    for status in OPEN_STATUSES:
        assert _reachable(status) & TERMINAL_STATUSES, status
    # Nothing goes back to "received", and only a received case gets "acknowledged": they describe how it started.
    for status in Status:
        assert Status.RECEIVED not in allowed_transitions(status)
        assert (Status.ACKNOWLEDGED in allowed_transitions(status)) == (status is Status.RECEIVED)
