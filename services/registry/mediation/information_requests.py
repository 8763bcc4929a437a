"""Requests for information to the citizen (issue 15), the pure part: what may be asked, what screening proposes to
ask, when the reminder and the closing for lack of answer fall due, and how a pause is told in the change log.

The clock itself is the register's existing pause (`workflow.clock_paused`, `ComplaintState.moved_to`): a request
moves the file to `waiting_for_citizen` (the answer deadline stands still from that day), the citizen's reply moves
it back to `in_review` and the calendar days waited are added to `paused_days`, moving `answer_due` by as many. The
answer deadline counts calendar days (`deadlines.answer_due`), so the days paused are calendar days too, weekends and
public holidays included; only the final day of the moved deadline goes to the next working day.

Interface:

- `MissingItem` — the closed vocabulary of what a request asks for (labels: `vocabulary.label(code,
  "missing_information")`); `parse_missing(values)` validates a list of codes from outside.
- `proposed_missing(finding_codes)` — what screening's reasons and checks say is missing (see `FINDINGS`).
- `InformationPolicy` — the configured reminder and closing times (registry settings) and the sweep's page size;
  `.reply_by(requested_on, rules)`, `.reminder_on(requested_on)`, `.due_action(...)`.
- `pause_record(before, after)` — what the change log says of a pause that ended (days, deadline moved).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from services.registry import deadlines
from services.registry.complaint_state import ComplaintState
from services.registry.vocabulary import Status

__all__ = [
    "FINDINGS",
    "DueAction",
    "InformationPolicy",
    "InformationRequestError",
    "MissingItem",
    "Resolution",
    "parse_missing",
    "pause_record",
    "proposed_missing",
]


class MissingItem(StrEnum):
    """What the office may ask the citizen for; the order is the order of the checkboxes and of the notice's list."""

    FIRST_LINE_CONTACT = "first_line_contact"  # whether, and when, the service concerned was contacted first
    FACTS_DATE = "facts_date"  # when the facts complained of happened
    LAST_STEP_DATE = "last_step_date"  # the citizen's latest step about old facts (a letter, a first-line complaint)
    IDENTITY = "identity"  # the citizen's full name
    POSTAL_ADDRESS = "postal_address"


_CODES = frozenset(item.value for item in MissingItem)


class Resolution(StrEnum):
    """How a request ended (NULL while it waits)."""

    ANSWERED = "answered"  # the citizen replied (or staff resumed the review with what the citizen said)
    CLOSED_NO_ANSWER = "closed_no_answer"  # no answer by the reply date: the file was closed
    ENDED = "ended"  # the file left the pause otherwise (answered, withdrawn, merged) before any answer


class DueAction(StrEnum):
    REMIND = "remind"
    CLOSE = "close"


class InformationRequestError(ValueError):
    """A request that cannot be made as given (unknown item, nothing asked)."""


# Screening's findings (`screening.Finding.code`) that a request for information can settle, and what it then asks.
# A reason found in what the citizen said (they wrote they did not contact the service) is no question: only the
# doubts (`*_to_verify`) and old facts with no known later step are.
FINDINGS: Mapping[str, MissingItem] = {
    "first_line_to_verify": MissingItem.FIRST_LINE_CONTACT,
    "facts_date_to_verify": MissingItem.FACTS_DATE,
    "facts_too_old": MissingItem.LAST_STEP_DATE,
    "identity_to_verify": MissingItem.IDENTITY,
    "postal_address_to_verify": MissingItem.POSTAL_ADDRESS,
}


def _in_order(items: Iterable[MissingItem]) -> tuple[MissingItem, ...]:
    chosen = set(items)
    return tuple(item for item in MissingItem if item in chosen)


def proposed_missing(finding_codes: Iterable[str]) -> tuple[MissingItem, ...]:
    """What to ask the citizen, from the codes of screening's reasons and checks (unknown codes ignored)."""
    return _in_order(FINDINGS[code] for code in finding_codes if code in FINDINGS)


def proposal_missing(proposal: Mapping[str, Any] | None) -> tuple[MissingItem, ...]:
    """What a stored screening proposal proposes to ask: its `information_request` list, or (a proposal stored
    before it had one) what its reasons and checks imply."""
    if not proposal:
        return ()
    stated = proposal.get("information_request")
    if isinstance(stated, list):
        return _in_order(MissingItem(v) for v in stated if v in _CODES)
    codes = [str(f.get("code")) for key in ("reasons", "checks") for f in proposal.get(key) or ()
             if isinstance(f, Mapping)]
    return proposed_missing(codes)


def parse_missing(values: Iterable[str]) -> tuple[MissingItem, ...]:
    """Validate codes from outside (a form, the API): each a `MissingItem`, duplicates dropped, in order."""
    items = []
    for value in values:
        try:
            items.append(MissingItem(str(value).strip()))
        except ValueError:
            known = ", ".join(item.value for item in MissingItem)
            raise InformationRequestError(f"unknown missing item {str(value)[:60]!r}; expected one of: {known}"
                                          ) from None
    return _in_order(items)


@dataclass(frozen=True)
class InformationPolicy:
    """When the citizen is reminded and when the file is closed for lack of answer, counted in calendar days from
    the day of the request (the day itself not counted, like every period of `deadlines`).

    The reply date told to the citizen is the request day + `closing_days`, moved to the next working day when it
    falls on a weekend or a public holiday (the rule of the answer deadline); the file is closed the day after it.
    The reminder goes out on the request day + `reminder_days` (a reminder needs no working day). The sweep reads
    the open requests `page_size` at a time.
    """

    reminder_days: int = 14
    closing_days: int = 30
    page_size: int = 200

    def __post_init__(self) -> None:
        if self.reminder_days < 1:
            raise InformationRequestError(f"reminder_days must be at least 1, got {self.reminder_days}")
        if self.closing_days <= self.reminder_days:
            raise InformationRequestError(
                f"closing_days ({self.closing_days}) must be more than reminder_days ({self.reminder_days})")
        if self.page_size < 1:
            raise InformationRequestError(f"page_size must be at least 1, got {self.page_size}")

    def reply_by(self, requested_on: date, rules: deadlines.DeadlineRules) -> date:
        return deadlines.next_working_day(requested_on + timedelta(days=self.closing_days), rules)

    def reminder_on(self, requested_on: date) -> date:
        return requested_on + timedelta(days=self.reminder_days)

    def due_action(self, *, reply_by: date, requested_on: date, reminded: bool, today: date) -> DueAction | None:
        """What is due today for an open request: the closing once its reply date has passed (even if the watcher
        was down when the reminder fell due: the request itself stated the date), else the reminder once."""
        if today > reply_by:
            return DueAction.CLOSE
        if not reminded and today >= self.reminder_on(requested_on):
            return DueAction.REMIND
        return None


def pause_record(before: ComplaintState, after: ComplaintState) -> dict[str, Any]:
    """The change log's account of a pause that just ended: from which day, until which day, the calendar days it
    lasted, the file's paused days in all, and the answer deadline before and after (moved by those days)."""
    if before.status is not Status.WAITING_FOR_CITIZEN or after.status is Status.WAITING_FOR_CITIZEN:
        raise InformationRequestError("no pause ended between these two states")
    return {
        "paused_since": before.paused_since,
        "paused_days": after.paused_days - before.paused_days,
        "total_paused_days": after.paused_days,
        "answer_due": {"from": before.answer_due, "to": after.answer_due},
    }
