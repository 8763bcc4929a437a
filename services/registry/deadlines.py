"""Legal deadlines of a complaint: pure date arithmetic, no clock and no I/O (pass `today` in).

Interface used by the rest of the registry:

- `DeadlineRules` — one organisation's rules (frozen; every field is a registry setting, built by
  `RegistrySettings.deadline_rules()`).
- `acknowledgment_due(received, rules)` — the N-th working day after the receipt date.
- `answer_due(received, rules, *, extended=False, paused_days=0)` — receipt date + N calendar days (+ days the clock
  was paused while waiting for the citizen, which the complaint's state counts), moved to the next working day when
  it falls on a weekend or a public holiday.
- `validate_extension(received, rules, *, today, ...)` — accept (returning the new deadline) or refuse
  (`ExtensionRefused`) the extension whose notice goes out today.
- `alerts_due(deadlines, today, lead_times)` — the "approaching" / "missed" alerts a watcher should publish now, each
  with a stable `key` so that it publishes each exactly once per complaint and deadline, across restarts.
- `is_working_day`, `next_working_day`, `add_working_days`, `working_days_between` — the calendar primitives.

How days are counted (Belgian Judicial Code art. 52-53, French Code de procédure civile art. 641-642, the same rule):
the day of receipt is not counted; the last day is; a final day falling on a Saturday, Sunday or public holiday moves
to the next working day. The acknowledgment deadline counts working days only, starting the day after receipt.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import holidays

# Python's weekday(): Monday is 0, Saturday 5, Sunday 6.
SATURDAY_SUNDAY = frozenset({5, 6})
# The holidays package uses Belgium's subdivisions (the Communities) for school holidays only; each Community's own
# public holiday is added here: Flemish Community 11 July (decree of 7 November 1990), French Community / Fédération
# Wallonie-Bruxelles 27 September (decree of 20 July 1991), German-speaking Community 15 November (decree of 1 December
# 2008). These are days off in that Community's administrations, not nationally.
COMMUNITY_DAYS: Mapping[tuple[str, str], str] = {
    ("BE", "Flemish"): "07-11",
    ("BE", "French"): "09-27",
    ("BE", "German"): "11-15",
}
# The holidays package has no data before this and dates past it are certainly a bug in the caller.
_FIRST_YEAR, _LAST_YEAR = 1900, 2200


class DeadlineError(ValueError):
    """Rules or dates that make no sense (negative periods, unknown country, dates out of range)."""


class ExtensionRefused(DeadlineError):
    """A requested extension of the answer deadline is not allowed; `reason` is a stable machine code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DeadlineRules:
    """The deadline rules of one organisation.

    `country` / `subdivision` / `categories` select the public holidays of the `holidays` package: e.g. BE with
    subdivision "Flemish" (11 July), "French" (27 September) or "German" (15 November), see `COMMUNITY_DAYS`; FR with
    "57" or "6AE" (Alsace-Moselle: Good Friday and 26 December) or an overseas department ("971"...).
    `extra_closed_days` adds days the service itself is closed, either recurring ("12-26", "11-15") or once
    ("2026-12-24"), e.g. the Belgian federal administration's 2 and 15 November and 26 December.
    `extension_notice_days` is how many days before the original deadline, at the latest, the citizen must be told
    of an extension (0: up to and including the deadline day itself).
    """

    acknowledgment_working_days: int = 5
    answer_calendar_days: int = 45
    extended_answer_calendar_days: int = 90
    country: str = "BE"
    subdivision: str | None = None
    categories: tuple[str, ...] = ("public",)
    extra_closed_days: tuple[str, ...] = ()
    weekend: frozenset[int] = SATURDAY_SUNDAY
    extension_notice_days: int = 0

    def __post_init__(self) -> None:
        for name in ("acknowledgment_working_days", "answer_calendar_days", "extension_notice_days"):
            if getattr(self, name) < 0:
                raise DeadlineError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.extended_answer_calendar_days < self.answer_calendar_days:
            raise DeadlineError(
                f"extended_answer_calendar_days ({self.extended_answer_calendar_days}) must be at least "
                f"answer_calendar_days ({self.answer_calendar_days})"
            )
        if not set(self.weekend) <= set(range(7)) or len(set(self.weekend)) == 7:
            raise DeadlineError(f"weekend must be a proper subset of weekdays 0..6, got {sorted(self.weekend)}")
        # Fail at start-up rather than on the first complaint: unknown country, subdivision or category.
        try:
            _holiday_calendar(self.country, self.subdivision, tuple(self.categories), 2000)
        except (NotImplementedError, KeyError, ValueError) as exc:
            raise DeadlineError(
                f"no public holidays for country={self.country!r} subdivision={self.subdivision!r} "
                f"categories={self.categories!r}: {exc}"
            ) from exc
        for spec in self.extra_closed_days:
            _parse_closed_day(spec)


@functools.lru_cache(maxsize=1024)
def _holiday_calendar(country: str, subdivision: str | None, categories: tuple[str, ...], year: int) -> frozenset[date]:
    # The holidays data is static for a given package version, so caching per year keeps the property tests fast.
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=year, categories=categories)
    return frozenset(calendar.keys())


def _parse_closed_day(spec: str) -> tuple[int | None, int, int]:
    """'MM-DD' (every year) or 'YYYY-MM-DD' (once) → (year or None, month, day)."""
    parts = spec.split("-")
    try:
        if len(parts) == 2:
            month, day = int(parts[0]), int(parts[1])
            date(2000, month, day)  # 2000 is a leap year: accepts 02-29 but rejects 02-30
            return None, month, day
        if len(parts) == 3:
            parsed = date.fromisoformat(spec)
            return parsed.year, parsed.month, parsed.day
    except ValueError:
        pass
    raise DeadlineError(f"extra closed day {spec!r} is neither MM-DD nor YYYY-MM-DD")


def _closed_day_specs(rules: DeadlineRules) -> tuple[str, ...]:
    community_day = COMMUNITY_DAYS.get((rules.country, rules.subdivision or ""))
    return rules.extra_closed_days + ((community_day,) if community_day else ())


def _check_range(day: date) -> None:
    if not _FIRST_YEAR <= day.year <= _LAST_YEAR:
        raise DeadlineError(f"date {day.isoformat()} is outside the supported years {_FIRST_YEAR}-{_LAST_YEAR}")


def is_holiday(day: date, rules: DeadlineRules) -> bool:
    """A public holiday under the rules, or a day the service itself declared closed."""
    _check_range(day)
    if day in _holiday_calendar(rules.country, rules.subdivision, tuple(rules.categories), day.year):
        return True
    for spec in _closed_day_specs(rules):
        year, month, dom = _parse_closed_day(spec)
        if (month, dom) == (day.month, day.day) and year in (None, day.year):
            return True
    return False


def is_working_day(day: date, rules: DeadlineRules) -> bool:
    return day.weekday() not in rules.weekend and not is_holiday(day, rules)


def next_working_day(day: date, rules: DeadlineRules) -> date:
    """`day` itself when it is a working day, otherwise the first working day after it."""
    while not is_working_day(day, rules):
        day += timedelta(days=1)
    return day


def add_working_days(start: date, count: int, rules: DeadlineRules) -> date:
    """The `count`-th working day after `start` (`start` itself not counted); 0 gives `next_working_day(start)`."""
    if count < 0:
        raise DeadlineError(f"cannot add a negative number of working days ({count})")
    if count == 0:
        return next_working_day(start, rules)
    day = start
    remaining = count
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, rules):
            remaining -= 1
    return day


def working_days_between(start: date, end: date, rules: DeadlineRules) -> int:
    """Working days in the half-open interval (start, end]: 0 when end <= start. Inverse of `add_working_days`."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day, rules):
            count += 1
    return count


def acknowledgment_due(received: date, rules: DeadlineRules) -> date:
    """Last day to acknowledge: the `acknowledgment_working_days`-th working day after the receipt date."""
    return add_working_days(received, rules.acknowledgment_working_days, rules)


def answer_due(received: date, rules: DeadlineRules, *, extended: bool = False, paused_days: int = 0) -> date:
    """Last day to answer: receipt + N calendar days (+ paused days), moved forward to a working day if needed."""
    if paused_days < 0:
        raise DeadlineError(f"paused_days must not be negative, got {paused_days}")
    period = rules.extended_answer_calendar_days if extended else rules.answer_calendar_days
    return next_working_day(received + timedelta(days=period + paused_days), rules)


def extension_notice_deadline(received: date, rules: DeadlineRules, *, paused_days: int = 0) -> date:
    """Last day on which the citizen may be told of an extension: the original deadline minus the notice period."""
    return answer_due(received, rules, paused_days=paused_days) - timedelta(days=rules.extension_notice_days)


def validate_extension(
    received: date,
    rules: DeadlineRules,
    *,
    today: date,
    already_extended: bool = False,
    paused_days: int = 0,
) -> date:
    """Check the extension whose notice to the citizen goes out `today` (the registry asks for the notice in the
    same transaction); return the extended answer deadline, or raise `ExtensionRefused`. The rules allow one
    extension, announced by the last day `extension_notice_deadline`.
    """
    if already_extended:
        raise ExtensionRefused("already_extended", "the answer deadline has already been extended once")
    if rules.extended_answer_calendar_days == rules.answer_calendar_days:
        raise ExtensionRefused("no_extension_allowed", "these rules allow no extension of the answer deadline")
    last_notice_day = extension_notice_deadline(received, rules, paused_days=paused_days)
    if today > last_notice_day:
        raise ExtensionRefused(
            "notice_too_late",
            f"the extension notice ({today}) came after the last day to give it ({last_notice_day})",
        )
    return answer_due(received, rules, extended=True, paused_days=paused_days)


class DeadlineKind(StrEnum):
    ACKNOWLEDGMENT = "acknowledgment"
    ANSWER = "answer"


class AlertKind(StrEnum):
    APPROACHING = "approaching"
    MISSED = "missed"


@dataclass(frozen=True)
class DeadlineAlert:
    """An alert a watcher should publish. `key` is stable for a (deadline, due date, alert, lead time): store it with
    the complaint and publish only keys not yet stored, which makes publication exactly-once across restarts. A
    deadline that moves (extension, pause) has a new due date, hence new keys.
    """

    deadline: DeadlineKind
    due: date
    alert: AlertKind
    lead_days: int | None = None

    @property
    def key(self) -> str:
        suffix = f":{self.lead_days}d" if self.lead_days is not None else ""
        return f"{self.deadline.value}:{self.due.isoformat()}:{self.alert.value}{suffix}"


def alerts_due(
    deadlines: Mapping[DeadlineKind, date | None],
    today: date,
    lead_times: Sequence[int] = (7, 2),
) -> list[DeadlineAlert]:
    """The alerts due at `today` for the still-open deadlines of one complaint (pass only deadlines not yet met).

    - a deadline whose due date has passed gives one MISSED alert (none of its approaching alerts any more);
    - otherwise the tightest lead time already reached (due - lead <= today) gives one APPROACHING alert: a watcher
      that was down for a while sends the alert that is still relevant, not a burst of stale ones.
    Lead times are calendar days; duplicates and order do not matter.
    """
    if any(lead < 0 for lead in lead_times):
        raise DeadlineError(f"lead times must not be negative, got {list(lead_times)}")
    result: list[DeadlineAlert] = []
    for kind, due in sorted(deadlines.items(), key=lambda item: item[0].value):
        if due is None:
            continue
        days_left = (due - today).days
        if days_left < 0:
            result.append(DeadlineAlert(kind, due, AlertKind.MISSED))
            continue
        reached = [lead for lead in set(lead_times) if days_left <= lead]
        if reached:
            result.append(DeadlineAlert(kind, due, AlertKind.APPROACHING, min(reached)))
    return result
