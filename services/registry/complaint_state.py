"""The status bookkeeping of one complaint, as a value (pure, no I/O): its status and the dates and facts each move
sets or clears.

A handler reads the state off the stored row, asks it for the next state and writes that back (`handlers/records.py`
does both); the legality of a move is `workflow.check_transition`'s and the deadline arithmetic `deadlines`'. What
each move does, in one place:

- received: acknowledgment and answer deadlines computed from the legal start;
- acknowledged: `acknowledged_at` (a staff move, or the acknowledgment notice sent: `acknowledgment_sent`; a notice
  reported sent and then failed is undone by `acknowledgment_failed`, which reverts acknowledged -> received);
- waiting_for_citizen: `paused_since` (the answer clock stands still); leaving it adds the days waited to
  `paused_days` and moves `answer_due` by as many;
- answered: `answered_at`;
- an ended status (closed, inadmissible, redirected, withdrawn): `closed_at`, the end date, cleared again by a
  reopening; closing records the outcome and its founded category, inadmissible the admissibility decision and its
  reasons, redirected the competent ombudsman;
- `extended`: the one extension of the answer deadline; `admitted`: staff found the complaint admissible.

Field names are the `complaints` columns of the same meaning (`closed_at` is the end date of any ended status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo

from services.registry import deadlines, workflow
from services.registry.vocabulary import Status


@dataclass(frozen=True)
class ComplaintState:
    status: Status
    legal_start: date
    acknowledgment_due: date
    answer_due: date
    answer_extended: bool = False
    paused_days: int = 0
    paused_since: date | None = None
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: str | None = None
    outcome_category: str | None = None
    admissibility: str = "pending"
    admissibility_reasons: tuple[str, ...] = ()
    redirected_to: str | None = None

    @classmethod
    def registered(cls, legal_start: date, rules: deadlines.DeadlineRules) -> ComplaintState:
        """A complaint just registered: received, its two deadlines counted from the legal start."""
        return cls(Status.RECEIVED, legal_start, deadlines.acknowledgment_due(legal_start, rules),
                   deadlines.answer_due(legal_start, rules))

    @property
    def ended(self) -> bool:
        return self.status in workflow.TERMINAL_STATUSES

    def ended_on(self, zone: tzinfo) -> date | None:
        """The local day it reached its ended status (the reopening window counts from it); None while open."""
        return self.closed_at.astimezone(zone).date() if self.closed_at else None

    def moved_to(
        self,
        target: str,
        *,
        now: datetime,
        today: date,
        rules: deadlines.DeadlineRules,
        outcome: str | None = None,
        category: str | None = None,
        reasons: Sequence[str] = (),
        redirect_to: str | None = None,
    ) -> ComplaintState:
        """The state after a legal status change; `workflow.IllegalTransition` if the change is not allowed."""
        destination = workflow.check_transition(self.status, target, outcome=outcome, category=category,
                                                reasons=reasons)
        state = self
        if self.status is Status.WAITING_FOR_CITIZEN and self.paused_since is not None:
            # The clock stood still while we waited for the citizen: the answer deadline moves by those days.
            paused_days = self.paused_days + (today - self.paused_since).days
            state = replace(state, paused_days=paused_days, paused_since=None, answer_due=deadlines.answer_due(
                self.legal_start, rules, extended=self.answer_extended, paused_days=paused_days))
        if destination is Status.WAITING_FOR_CITIZEN:
            state = replace(state, paused_since=today)
        if destination is Status.ACKNOWLEDGED and state.acknowledged_at is None:
            state = replace(state, acknowledged_at=now)
        if destination is Status.ANSWERED and state.answered_at is None:
            state = replace(state, answered_at=now)
        if destination in workflow.TERMINAL_STATUSES:
            state = replace(state, closed_at=now)
        elif self.ended:
            state = replace(state, closed_at=None)  # reopened
        if destination is Status.CLOSED:
            state = replace(state, outcome=outcome, outcome_category=category)
        if destination is Status.INADMISSIBLE:
            state = replace(state, admissibility="inadmissible", admissibility_reasons=tuple(reasons))
        if destination is Status.REDIRECTED:
            state = replace(state, redirected_to=redirect_to)
        return replace(state, status=destination)

    def acknowledgment_sent(self, at: datetime) -> ComplaintState:
        """The acknowledgment notice went out at `at`: the first one counts, and a received complaint becomes
        acknowledged (a complaint staff moved on already keeps its status)."""
        if self.acknowledged_at is not None:
            return self
        status = Status.ACKNOWLEDGED if self.status is Status.RECEIVED else self.status
        return replace(self, acknowledged_at=at, status=status)

    def acknowledgment_failed(self, reported_sent_at: datetime | None) -> ComplaintState:
        """The acknowledgment reported sent at `reported_sent_at` (None: never reported sent) finally failed: if it
        is the one that counted, the citizen was not told after all, so the acknowledgment deadline opens again and
        the automatic move to acknowledged is undone (a status staff set since stays)."""
        if reported_sent_at is None or self.acknowledged_at != reported_sent_at:
            return self
        status = Status.RECEIVED if self.status is Status.ACKNOWLEDGED else self.status
        return replace(self, acknowledged_at=None, status=status)

    def extended(self, today: date, rules: deadlines.DeadlineRules) -> ComplaintState:
        """The one extension of the answer deadline, announced today; `deadlines.ExtensionRefused` if too late
        or already done."""
        answer_due = deadlines.validate_extension(self.legal_start, rules, today=today,
                                                  already_extended=self.answer_extended,
                                                  paused_days=self.paused_days)
        return replace(self, answer_due=answer_due, answer_extended=True)

    def admitted(self) -> ComplaintState:
        return replace(self, admissibility="admissible", admissibility_reasons=())

    def open_deadlines(self) -> dict[deadlines.DeadlineKind, date]:
        """The deadlines still to meet: the acknowledgment until it is sent, the answer until it is given (and not
        while the clock is paused); none once the complaint is answered or ended (as `open_complaints` pages)."""
        due: dict[deadlines.DeadlineKind, date] = {}
        if self.status is Status.ANSWERED or self.ended:
            return due
        if self.acknowledged_at is None:
            due[deadlines.DeadlineKind.ACKNOWLEDGMENT] = self.acknowledgment_due
        if self.answered_at is None and not workflow.clock_paused(self.status):
            due[deadlines.DeadlineKind.ANSWER] = self.answer_due
        return due

    def alerts_due(self, today: date, lead_days: Sequence[int]) -> list[deadlines.DeadlineAlert]:
        return deadlines.alerts_due(self.open_deadlines(), today, lead_days)
