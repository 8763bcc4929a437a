"""The retention schedule (issue 16): which file is anonymised when, and why — pure rules, no I/O.

A file is kept whole while it may still be needed (reopened, contested, audited), then its identity and free texts
are replaced by placeholders (`anonymise.py`) while the facts statistics count stay. How long depends on how it
ended (`RetentionSchedule`, from the registry's settings):

- closed or answered: `closed_years` after the day it ended (a kind may have its own period: `kind_years`);
- inadmissible, redirected, withdrawn: their own, shorter periods (nothing was investigated);
- merged into another file: as a closed file (its thread lives on in the target, which follows its own schedule).

An open file is never due. A file under a legal hold is listed as "suspended" rather than anonymised, so that the
dry run shows it. Messages of the holding pen that were never attached to a file are deleted `held_days` after
their receipt (`held_due`).

The day a file is due is its ending day (in the register's time zone) plus the period; 29 February plus a year
is 28 February.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from services.registry.vocabulary import Status

__all__ = ["Action", "Decision", "FileFacts", "RetentionSchedule", "Rule", "add_years", "decide", "held_due"]


class Rule(StrEnum):
    """Why a file or message is due: the line of the schedule that applies."""

    CLOSED = "closed"
    INADMISSIBLE = "inadmissible"
    REDIRECTED = "redirected"
    WITHDRAWN = "withdrawn"
    MERGED = "merged"
    HELD_MESSAGE = "held_message"


class Action(StrEnum):
    ANONYMISE = "anonymise"
    DELETE = "delete"  # a held message: it has no statistics to keep
    SUSPENDED = "suspended"  # due, but a legal hold is on


# The status a file ended in -> the line of the schedule (an answered file counts as closed: it ended with an answer).
_RULES: Mapping[str, Rule] = {
    Status.CLOSED.value: Rule.CLOSED,
    Status.ANSWERED.value: Rule.CLOSED,
    Status.INADMISSIBLE.value: Rule.INADMISSIBLE,
    Status.REDIRECTED.value: Rule.REDIRECTED,
    Status.WITHDRAWN.value: Rule.WITHDRAWN,
    Status.MERGED.value: Rule.MERGED,
}
ENDED_STATUSES = frozenset(_RULES)


@dataclass(frozen=True)
class RetentionSchedule:
    """How long the register keeps a file whole after it ended, by how it ended (years), and held messages (days)."""

    closed_years: int = 5
    inadmissible_years: int = 1
    redirected_years: int = 1
    withdrawn_years: int = 1
    held_days: int = 90
    # A kind of file with its own period when closed or answered (e.g. {"question": 2}); others: `closed_years`.
    kind_years: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        periods = [self.closed_years, self.inadmissible_years, self.redirected_years, self.withdrawn_years,
                   self.held_days, *self.kind_years.values()]
        if any(period < 0 for period in periods):
            raise ValueError("a retention period is 0 or more")

    def years(self, rule: Rule, kind: str) -> int:
        if rule in (Rule.CLOSED, Rule.MERGED):
            return self.kind_years.get(kind, self.closed_years)
        return {Rule.INADMISSIBLE: self.inadmissible_years, Rule.REDIRECTED: self.redirected_years,
                Rule.WITHDRAWN: self.withdrawn_years}[rule]

    def shortest_years(self) -> int:
        """The shortest period of any ended file: files that ended after `today - shortest` are never due."""
        return min(self.closed_years, self.inadmissible_years, self.redirected_years, self.withdrawn_years,
                   *self.kind_years.values())


@dataclass(frozen=True)
class FileFacts:
    """What the schedule looks at: how and when (local day) the file ended, its kind, whether a hold is on."""

    number: str
    status: str
    kind: str
    ended_on: date | None
    on_hold: bool = False
    anonymised: bool = False


@dataclass(frozen=True, order=True)
class Decision:
    """One line of a retention run: the file (or held message `held:<id>`), what happens to it, by which rule, and
    the day it became due. A dry run and a real run on the same day produce the same decisions."""

    subject: str
    action: Action
    rule: Rule
    due_on: date


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def decide(facts: FileFacts, today: date, schedule: RetentionSchedule) -> Decision | None:
    """The file's decision today, or None when it is not due (open, recently ended, already anonymised)."""
    rule = _RULES.get(facts.status)
    if rule is None or facts.ended_on is None or facts.anonymised:
        return None
    due_on = add_years(facts.ended_on, schedule.years(rule, facts.kind))
    if due_on > today:
        return None
    return Decision(facts.number, Action.SUSPENDED if facts.on_hold else Action.ANONYMISE, rule, due_on)


def held_due(held_id: int, received_on: date, today: date, schedule: RetentionSchedule) -> Decision | None:
    """A held message (never attached, or discarded) is deleted `held_days` after it was received."""
    due_on = received_on + timedelta(days=schedule.held_days)
    if due_on > today:
        return None
    return Decision(f"held:{held_id}", Action.DELETE, Rule.HELD_MESSAGE, due_on)
