"""Recommendations followed up (issue 15): the rules, pure. The office addresses a recommendation to an
administration (from a file, or general), then follows what the administration did with it.

- Follow-up status (`FollowUp`): pending (sent, no answer yet) -> accepted (the administration agreed, not done yet)
  -> implemented (done); or refused, which needs the administration's reason. Implemented is final; an accepted or
  refused recommendation may still move (an administration that refused may come round after a review, one that
  accepted may end up refusing), never back to pending.
- Review date: when the handler looks again at what became of it. On that day (or at the first pass of the watcher
  after it, if none ran that day) the handler is reminded once (`review_reminder`): `DeadlineApproaching` on the day,
  `DeadlineMissed` when the day has passed, `deadline_kind="recommendation_review"`; a new review date gets its own
  reminder. An implemented or refused recommendation is not reminded of.
- Bounds: a text of at most `TEXT_MAX` characters, an addressee name of at most `ADDRESSEE_MAX` (indexed), a reason of
  at most `REASON_MAX`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = ["ADDRESSEE_MAX", "DEADLINE_KIND", "FINAL", "FollowUp", "RecommendationRefused", "ReviewReminder",
           "TEXT_MAX", "check_addressee", "check_text", "follow_up", "reference", "review_reminder"]

TEXT_MAX = 20_000
ADDRESSEE_MAX = 300
REASON_MAX = 2_000
# The `deadline_kind` of the reminders (shared.events.DeadlineAlert), rendered by the notifier's deadline notices.
DEADLINE_KIND = "recommendation_review"


class FollowUp(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    IMPLEMENTED = "implemented"
    REFUSED = "refused"


# Statuses after which nothing is reviewed any more (no reminder): the recommendation's fate is known.
FINAL = frozenset({FollowUp.IMPLEMENTED, FollowUp.REFUSED})

_NEXT: dict[FollowUp, frozenset[FollowUp]] = {
    FollowUp.PENDING: frozenset({FollowUp.ACCEPTED, FollowUp.IMPLEMENTED, FollowUp.REFUSED}),
    FollowUp.ACCEPTED: frozenset({FollowUp.IMPLEMENTED, FollowUp.REFUSED}),
    FollowUp.REFUSED: frozenset({FollowUp.ACCEPTED, FollowUp.IMPLEMENTED}),
    FollowUp.IMPLEMENTED: frozenset(),
}


class RecommendationRefused(ValueError):
    """The change contradicts the recommendation's state or rules; `code` names it (messages and the CLI)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _one_line(value: str | None) -> str:
    return " ".join((value or "").split())


def check_text(text: str) -> str:
    cleaned = (text or "").replace("\r\n", "\n").strip()
    if not cleaned:
        raise RecommendationRefused("text_required", "a recommendation needs its text")
    if len(cleaned) > TEXT_MAX:
        raise RecommendationRefused("too_long", f"a recommendation is at most {TEXT_MAX} characters")
    return cleaned


def check_addressee(name: str | None) -> str:
    """The addressee's name on one line; required (an administration of the directory gives its own name)."""
    cleaned = _one_line(name)
    if not cleaned:
        raise RecommendationRefused("addressee_required", "a recommendation needs its addressee (an administration)")
    if len(cleaned) > ADDRESSEE_MAX:
        raise RecommendationRefused("too_long", f"an addressee is named in at most {ADDRESSEE_MAX} characters")
    return cleaned


def follow_up(current: str, target: str, reason: str | None) -> tuple[FollowUp, str | None]:
    """The new status and the reason kept with it, or `RecommendationRefused` (unknown status, a move the rules do
    not allow, a refusal without its reason)."""
    try:
        status, wanted = FollowUp(current), FollowUp(target)
    except ValueError:
        known = ", ".join(s.value for s in FollowUp)
        raise RecommendationRefused("unknown_status", f"unknown follow-up status {target!r}; one of: {known}") from None
    if wanted not in _NEXT[status]:
        raise RecommendationRefused("illegal_follow_up", f"a recommendation cannot go from {status} to {wanted}")
    why = _one_line(reason) or None
    if why is not None and len(why) > REASON_MAX:
        raise RecommendationRefused("too_long", f"a reason is at most {REASON_MAX} characters")
    if wanted is FollowUp.REFUSED and why is None:
        raise RecommendationRefused("reason_required", "a refusal is recorded with the administration's reason")
    return wanted, why


@dataclass(frozen=True)
class ReviewReminder:
    """The reminder due for a recommendation: `missed` when the review date has already passed."""

    review_date: date
    missed: bool


def review_reminder(status: str, review_date: date | None, reminded_for: date | None, today: date
                    ) -> ReviewReminder | None:
    """The reminder to raise today, if any: the review date has come, the recommendation is still open, and no
    reminder went out for that review date yet."""
    if review_date is None or review_date > today or reminded_for == review_date:
        return None
    if FollowUp(status) in FINAL:
        return None
    return ReviewReminder(review_date, missed=review_date < today)


def reference(recommendation_id: int) -> str:
    """How a general recommendation is named where a case number is expected (the reminder's subject): REC-<id>."""
    return f"REC-{recommendation_id}"
