"""The life cycle of a complaint: which status changes are legal, what closing requires, and what a new message on
an existing case does. Pure functions, no I/O; the caller persists the result and records who, when and why.

Interface:

- `Status`, `Outcome`, `FoundedCategory` (re-exported from `vocabulary`; labels via `vocabulary.label`).
- `check_transition(current, target, *, outcome=None, category=None, reasons=())` -> the target `Status`, or
  `IllegalTransition` with a clear message (and `.code`) when the change is not allowed.
- `allowed_transitions(current)`, `OPEN_STATUSES`, `TERMINAL_STATUSES`, `clock_paused(status)`.
- `ReopenPolicy` + `decide_follow_up(status, *, ended_on, today, policy, automated=False)` -> `FollowUpDecision`:
  attach to the case (possibly resuming or reopening it) or register a new complaint linked to the old one.

The main path is received -> acknowledged -> in_review -> (waiting_for_citizen -> in_review) -> answered -> closed.
A complaint may be found inadmissible, redirected to the competent ombudsman or withdrawn by the citizen before it
is answered. Closed and inadmissible cases may be reopened for review (new facts, identity supplied); redirected and
withdrawn ones are final: a new message then starts a new, linked complaint. A file merged into another (issue 13)
is ended too ("merged"): only undoing the merge brings it back, to the status it had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TypeVar

from services.registry.vocabulary import FoundedCategory, InadmissibilityReason, Outcome, Status

__all__ = [
    "OPEN_STATUSES",
    "REOPENABLE_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "FollowUpAction",
    "FollowUpDecision",
    "FoundedCategory",
    "IllegalTransition",
    "Outcome",
    "ReopenPolicy",
    "Status",
    "allowed_transitions",
    "check_transition",
    "clock_paused",
    "decide_follow_up",
]

E = TypeVar("E", bound=StrEnum)

_EARLY_EXITS = frozenset({Status.INADMISSIBLE, Status.REDIRECTED, Status.WITHDRAWN})

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.ACKNOWLEDGED}) | _EARLY_EXITS,
    Status.ACKNOWLEDGED: frozenset({Status.IN_REVIEW}) | _EARLY_EXITS,
    Status.IN_REVIEW: frozenset({Status.WAITING_FOR_CITIZEN, Status.ANSWERED}) | _EARLY_EXITS,
    # The citizen's reply resumes the review; a citizen who never replies still gets an answer closing the file.
    Status.WAITING_FOR_CITIZEN: frozenset({Status.IN_REVIEW, Status.ANSWERED, Status.WITHDRAWN}),
    # The citizen may contest the answer before the file is closed.
    Status.ANSWERED: frozenset({Status.CLOSED, Status.IN_REVIEW}),
    Status.CLOSED: frozenset({Status.IN_REVIEW}),
    Status.INADMISSIBLE: frozenset({Status.IN_REVIEW}),
    Status.REDIRECTED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    # A merged file is reached and left only by the merge and its undoing (`handlers/merging.py`), which move its
    # thread and restore its former status exactly: no workflow transition goes in or out.
    Status.MERGED: frozenset(),
}

TERMINAL_STATUSES = frozenset({Status.CLOSED, Status.INADMISSIBLE, Status.REDIRECTED, Status.WITHDRAWN,
                               Status.MERGED})
OPEN_STATUSES = frozenset(Status) - TERMINAL_STATUSES
# Ended statuses a new message may reopen for review: exactly those the transitions allow back to in_review.
REOPENABLE_STATUSES = frozenset(s for s in TERMINAL_STATUSES if Status.IN_REVIEW in TRANSITIONS[s])
# Outcomes whose founded category must be stated (and only those).
_FOUNDED_OUTCOMES = frozenset({Outcome.FOUNDED, Outcome.PARTIALLY_FOUNDED})


class IllegalTransition(ValueError):
    """A refused status change. `code` is stable for API clients; the message says what would be allowed."""

    def __init__(self, code: str, message: str, *, current: str, target: str) -> None:
        super().__init__(message)
        self.code = code
        self.current = current
        self.target = target


def _parse(enum: type[E], value: str, what: str, *, current: str, target: str) -> E:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(member.value for member in enum)
        raise IllegalTransition(
            f"unknown_{what}", f"unknown {what} {value!r}; expected one of: {known}", current=current, target=target
        ) from None


def allowed_transitions(current: str) -> frozenset[Status]:
    return TRANSITIONS[Status(current)]


def clock_paused(status: str) -> bool:
    """The answer deadline stands still while we wait for the citizen (the days waited become `paused_days`)."""
    return Status(status) is Status.WAITING_FOR_CITIZEN


def check_transition(
    current: str,
    target: str,
    *,
    outcome: str | None = None,
    category: str | None = None,
    reasons: Iterable[str] = (),
) -> Status:
    """Validate a status change and return the target status.

    Closing requires an `outcome`; a founded or partially founded outcome requires its founded `category`, the
    other outcomes take none. Declaring a complaint inadmissible requires at least one reason. Outcome and category
    are refused on any other change, so that they are never recorded by accident.
    """
    source = _parse(Status, current, "status", current=current, target=target)
    destination = _parse(Status, target, "status", current=current, target=target)
    allowed = TRANSITIONS[source]
    if destination not in allowed:
        choices = ", ".join(sorted(allowed)) or "none, it is final"
        raise IllegalTransition(
            "illegal_transition",
            f"a complaint cannot go from {source.value} to {destination.value}; allowed from {source.value}: {choices}",
            current=current,
            target=target,
        )
    reason_list = list(reasons)
    if destination is Status.CLOSED:
        if outcome is None:
            raise IllegalTransition(
                "outcome_required", "closing a complaint requires its outcome", current=current, target=target
            )
        parsed_outcome = _parse(Outcome, outcome, "outcome", current=current, target=target)
        if parsed_outcome in _FOUNDED_OUTCOMES and category is None:
            raise IllegalTransition(
                "category_required",
                f"a {parsed_outcome.value} complaint requires its founded category "
                f"({', '.join(c.value for c in FoundedCategory)})",
                current=current,
                target=target,
            )
        if parsed_outcome not in _FOUNDED_OUTCOMES and category is not None:
            raise IllegalTransition(
                "category_not_allowed",
                f"a founded category is recorded only for founded or partially founded complaints, "
                f"not for {parsed_outcome.value}",
                current=current,
                target=target,
            )
        if category is not None:
            _parse(FoundedCategory, category, "category", current=current, target=target)
    elif outcome is not None or category is not None:
        raise IllegalTransition(
            "outcome_not_allowed",
            "an outcome and its category are recorded only when closing a complaint",
            current=current,
            target=target,
        )
    if destination is Status.INADMISSIBLE:
        if not reason_list:
            raise IllegalTransition(
                "reason_required", "an inadmissibility decision must state its reasons", current=current, target=target
            )
        for reason in reason_list:
            _parse(InadmissibilityReason, reason, "reason", current=current, target=target)
    return destination


class FollowUpAction(StrEnum):
    ATTACH = "attach"  # add to the file, status unchanged
    ATTACH_AND_RESUME = "attach_and_resume"  # the citizen answered our question: back in review, clock runs
    ATTACH_AND_REOPEN = "attach_and_reopen"  # a recently ended case is reviewed again
    NEW_LINKED_COMPLAINT = "new_linked_complaint"  # too late to reopen: a new complaint pointing to the old one


@dataclass(frozen=True)
class FollowUpDecision:
    action: FollowUpAction
    new_status: Status | None
    explanation: str


@dataclass(frozen=True)
class ReopenPolicy:
    """A message on an ended case reopens it when it arrives within `window_days` of the end (counted in calendar
    days, the end day being day 0) and the case ended in one of the `REOPENABLE_STATUSES` (closed, inadmissible)."""

    window_days: int = 30

    def __post_init__(self) -> None:
        if self.window_days < 0:
            raise ValueError(f"window_days must not be negative, got {self.window_days}")


def decide_follow_up(
    status: str,
    *,
    ended_on: date | None,
    today: date,
    policy: ReopenPolicy = ReopenPolicy(),
    automated: bool = False,
) -> FollowUpDecision:
    """What to do with a new message from a party of a case (the caller has already checked the sender is one).

    `ended_on` is the day the case reached its current ended status (closed, inadmissible, ...); `automated` marks
    auto-replies (RFC 3834 Auto-Submitted), which are filed but never change a case or start a new one.
    """
    current = Status(status)
    if current in OPEN_STATUSES:
        if current is Status.WAITING_FOR_CITIZEN and not automated:
            return FollowUpDecision(
                FollowUpAction.ATTACH_AND_RESUME, Status.IN_REVIEW, "the citizen replied: the review resumes"
            )
        return FollowUpDecision(FollowUpAction.ATTACH, None, f"the case is open ({current.value})")
    if ended_on is None:
        raise ValueError(f"a {current.value} case needs the date it ended")
    age = (today - ended_on).days
    within = age <= policy.window_days
    if automated:
        return FollowUpDecision(FollowUpAction.ATTACH, None, "automatic reply: filed without reopening")
    if within and current in REOPENABLE_STATUSES:
        return FollowUpDecision(
            FollowUpAction.ATTACH_AND_REOPEN,
            Status.IN_REVIEW,
            f"{current.value} {age} day(s) ago, within the {policy.window_days}-day window: reopened for review",
        )
    if within:
        return FollowUpDecision(
            FollowUpAction.ATTACH, None, f"{current.value} {age} day(s) ago: filed, a {current.value} case stays so"
        )
    return FollowUpDecision(
        FollowUpAction.NEW_LINKED_COMPLAINT,
        None,
        f"{current.value} {age} day(s) ago, beyond the {policy.window_days}-day window: a new linked complaint",
    )
