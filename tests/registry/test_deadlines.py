"""Example tests of the legal deadlines with real Belgian and French public holidays, computed by hand."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import pytest

from services.registry.deadlines import (
    AlertKind,
    DeadlineAlert,
    DeadlineError,
    DeadlineKind,
    DeadlineRules,
    ExtensionRefused,
    acknowledgment_due,
    add_working_days,
    alerts_due,
    answer_due,
    extension_notice_deadline,
    is_working_day,
    validate_extension,
    working_days_between,
)

BE = DeadlineRules()
FR = DeadlineRules(country="FR")


@pytest.mark.parametrize(
    ("received", "rules", "expected"),
    [
        # +45 = Fri 25 Dec 2026 (Christmas), weekend, so Monday 28.
        (date(2026, 11, 10), BE, date(2026, 12, 28)),
        (date(2026, 11, 10), FR, date(2026, 12, 28)),
        # +45 = Fri 1 Jan 2027 (New Year), weekend, so Monday 4.
        (date(2026, 11, 17), BE, date(2027, 1, 4)),
        # +45 = Mon 29 Mar 2027, Easter Monday in both countries.
        (date(2027, 2, 12), BE, date(2027, 3, 30)),
        (date(2027, 2, 12), FR, date(2027, 3, 30)),
        # +45 = Wed 21 Jul 2027: Belgian national day, an ordinary day in France.
        (date(2027, 6, 6), BE, date(2027, 7, 22)),
        (date(2027, 6, 6), FR, date(2027, 7, 21)),
        # +45 = Wed 14 Jul 2027: French national day, an ordinary day in Belgium.
        (date(2027, 5, 30), FR, date(2027, 7, 15)),
        (date(2027, 5, 30), BE, date(2027, 7, 14)),
        # +45 = Wed 11 Nov 2026, Armistice in both.
        (date(2026, 9, 27), BE, date(2026, 11, 12)),
        (date(2026, 9, 27), FR, date(2026, 11, 12)),
        # +45 = Thu 10 Dec 2026, an ordinary working day: no move.
        (date(2026, 10, 26), BE, date(2026, 12, 10)),
    ],
)
def test_answer_due_moves_to_next_working_day(received: date, rules: DeadlineRules, expected: date) -> None:
    assert answer_due(received, rules) == expected


@pytest.mark.parametrize(
    ("received", "rules", "expected"),
    [
        # Mon 21 Dec 2026: 22, 23, 24, (25 Christmas, weekend), 28, 29.
        (date(2026, 12, 21), BE, date(2026, 12, 29)),
        # Wed 30 Dec 2026: 31, (1 Jan), 4, 5, 6, 7.
        (date(2026, 12, 30), BE, date(2027, 1, 7)),
        # Thu 2 Apr 2026: Good Friday is worked in Belgium: 3, (6 Easter Monday), 7, 8, 9, 10.
        (date(2026, 4, 2), BE, date(2026, 4, 10)),
        # ... but a holiday in Alsace-Moselle: (3), (6), 7, 8, 9, 10, 13.
        (date(2026, 4, 2), DeadlineRules(country="FR", subdivision="57"), date(2026, 4, 13)),
        (date(2026, 4, 2), FR, date(2026, 4, 10)),
        # Received on a Saturday: counting starts Monday 16 Nov 2026: 16, 17, 18, 19, 20.
        (date(2026, 11, 14), BE, date(2026, 11, 20)),
        # Fri 8 May 2026 is Victory Day in France only. FR: (8), 11, 12, 13, (14 Ascension), 15, 18.
        (date(2026, 5, 7), FR, date(2026, 5, 18)),
        # BE: 8, 11, 12, 13, (14 Ascension), 15.
        (date(2026, 5, 7), BE, date(2026, 5, 15)),
    ],
)
def test_acknowledgment_counts_working_days(received: date, rules: DeadlineRules, expected: date) -> None:
    assert acknowledgment_due(received, rules) == expected


def test_victory_day_differs_between_countries() -> None:
    assert not is_working_day(date(2026, 5, 8), FR)
    assert is_working_day(date(2026, 5, 8), BE)
    # Mon 4 May 2026: BE counts 5, 6, 7, 8, 11; FR skips the 8th.
    assert acknowledgment_due(date(2026, 5, 4), BE) == date(2026, 5, 11)
    assert acknowledgment_due(date(2026, 5, 4), FR) == date(2026, 5, 12)


@pytest.mark.parametrize(
    ("subdivision", "received", "expected"),
    [
        # Fri 11 Jul 2025, Flemish Community holiday: 7, 8, 9, 10, (11), 14.
        ("Flemish", date(2025, 7, 4), date(2025, 7, 14)),
        (None, date(2025, 7, 4), date(2025, 7, 11)),
        # Mon 27 Sep 2027, Fédération Wallonie-Bruxelles: 21, 22, 23, 24, (27), 28.
        ("French", date(2027, 9, 20), date(2027, 9, 28)),
        (None, date(2027, 9, 20), date(2027, 9, 27)),
        # Mon 15 Nov 2027, German-speaking Community: 9, 10, (11 Armistice), 12, (15), 16, 17.
        ("German", date(2027, 11, 8), date(2027, 11, 17)),
        (None, date(2027, 11, 8), date(2027, 11, 16)),
    ],
)
def test_belgian_community_days_are_options(subdivision: str | None, received: date, expected: date) -> None:
    assert acknowledgment_due(received, DeadlineRules(subdivision=subdivision)) == expected


def test_extra_closed_days_recurring_and_once() -> None:
    # Belgian federal administration: 15 November (King's Feast) and 26 December are days off.
    rules = DeadlineRules(extra_closed_days=("11-15", "12-26", "2027-01-08"))
    assert not is_working_day(date(2027, 11, 15), rules)
    assert is_working_day(date(2027, 11, 15), BE)
    assert not is_working_day(date(2027, 1, 8), rules)
    assert is_working_day(date(2029, 1, 8), rules)  # a Monday: the once-only closure does not recur
    # Wed 23 Dec 2026 + 45 = Sat 6 Feb 2027 -> Mon 8 Feb; a once-only closure on 8 Feb 2027 would push it to the 9th.
    assert answer_due(date(2026, 12, 23), BE) == date(2027, 2, 8)
    assert answer_due(date(2026, 12, 23), DeadlineRules(extra_closed_days=("2027-02-08",))) == date(2027, 2, 9)


@pytest.mark.parametrize("spec", ["13-01", "02-30", "tomorrow", "2027-02-29", "1-2-3-4"])
def test_bad_closed_day_refused_at_configuration(spec: str) -> None:
    with pytest.raises(DeadlineError, match="neither MM-DD nor YYYY-MM-DD"):
        DeadlineRules(extra_closed_days=(spec,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"country": "XX"},
        {"subdivision": "Atlantis"},
        {"categories": ("nonsense",)},
        {"answer_calendar_days": -1},
        {"acknowledgment_working_days": -5},
        {"answer_calendar_days": 60, "extended_answer_calendar_days": 30},
        {"weekend": frozenset(range(7))},
    ],
)
def test_bad_rules_refused_at_configuration(kwargs: dict) -> None:
    with pytest.raises(DeadlineError):
        DeadlineRules(**kwargs)


def test_paused_days_push_the_answer_deadline() -> None:
    # Received 10 Nov 2026: 45 days -> 25 Dec (Christmas) -> 28 Dec; with 19 paused days: 13 Jan 2027, a Wednesday.
    assert answer_due(date(2026, 11, 10), BE, paused_days=19) == date(2027, 1, 13)
    with pytest.raises(DeadlineError):
        answer_due(date(2026, 11, 10), BE, paused_days=-1)


def test_extension_accepted_until_the_original_deadline() -> None:
    received = date(2026, 11, 10)
    # Original deadline Mon 28 Dec 2026; 10 Nov + 90 = Mon 8 Feb 2027.
    assert validate_extension(received, BE, today=date(2026, 12, 28)) == date(2027, 2, 8)
    with pytest.raises(ExtensionRefused) as refused:
        validate_extension(received, BE, today=date(2026, 12, 29))
    assert refused.value.reason == "notice_too_late"


def test_extension_notice_period() -> None:
    rules = DeadlineRules(extension_notice_days=10)
    received = date(2026, 11, 10)
    assert extension_notice_deadline(received, rules) == date(2026, 12, 18)
    assert validate_extension(received, rules, today=date(2026, 12, 18))
    with pytest.raises(ExtensionRefused, match="after the last day"):
        validate_extension(received, rules, today=date(2026, 12, 19))


def test_extension_only_once() -> None:
    with pytest.raises(ExtensionRefused) as refused:
        validate_extension(date(2026, 11, 10), BE, today=date(2026, 12, 1), already_extended=True)
    assert refused.value.reason == "already_extended"


def test_no_extension_when_rules_allow_none() -> None:
    rules = DeadlineRules(answer_calendar_days=30, extended_answer_calendar_days=30)
    with pytest.raises(ExtensionRefused) as refused:
        validate_extension(date(2026, 11, 10), rules, today=date(2026, 11, 11))
    assert refused.value.reason == "no_extension_allowed"


def test_extension_keeps_paused_days() -> None:
    # 10 Nov 2026 + 90 + 10 paused = Thu 18 Feb 2027.
    extended = validate_extension(date(2026, 11, 10), BE, today=date(2026, 12, 1), paused_days=10)
    assert extended == date(2027, 2, 18)


def test_working_day_primitives() -> None:
    assert add_working_days(date(2026, 12, 24), 1, BE) == date(2026, 12, 28)
    assert add_working_days(date(2026, 12, 26), 0, BE) == date(2026, 12, 28)
    assert working_days_between(date(2026, 12, 21), date(2026, 12, 29), BE) == 5
    assert working_days_between(date(2026, 12, 29), date(2026, 12, 21), BE) == 0
    with pytest.raises(DeadlineError):
        add_working_days(date(2026, 12, 24), -1, BE)


def test_dates_out_of_range_refused() -> None:
    with pytest.raises(DeadlineError, match="outside the supported years"):
        is_working_day(date(1850, 1, 2), BE)


class TestAlerts:
    due: ClassVar[dict[DeadlineKind, date]] = {DeadlineKind.ANSWER: date(2026, 12, 28)}

    @pytest.mark.parametrize(
        ("today", "expected"),
        [
            (date(2026, 12, 20), []),
            (date(2026, 12, 21), [(AlertKind.APPROACHING, 7)]),
            (date(2026, 12, 25), [(AlertKind.APPROACHING, 7)]),
            (date(2026, 12, 26), [(AlertKind.APPROACHING, 2)]),
            (date(2026, 12, 28), [(AlertKind.APPROACHING, 2)]),
            (date(2026, 12, 29), [(AlertKind.MISSED, None)]),
            (date(2027, 3, 1), [(AlertKind.MISSED, None)]),
        ],
    )
    def test_alert_sequence(self, today: date, expected: list) -> None:
        alerts = alerts_due(self.due, today, lead_times=(2, 7, 7))
        assert [(a.alert, a.lead_days) for a in alerts] == expected

    def test_keys_are_stable_and_distinct(self) -> None:
        first = alerts_due(self.due, date(2026, 12, 21), (7, 2))[0]
        again = alerts_due(self.due, date(2026, 12, 23), (7, 2))[0]
        later = alerts_due(self.due, date(2026, 12, 27), (7, 2))[0]
        missed = alerts_due(self.due, date(2026, 12, 30), (7, 2))[0]
        assert first.key == again.key == "answer:2026-12-28:approaching:7d"
        assert later.key == "answer:2026-12-28:approaching:2d"
        assert missed.key == "answer:2026-12-28:missed"
        # A moved deadline (extension) starts a new series of alerts.
        moved = alerts_due({DeadlineKind.ANSWER: date(2027, 2, 8)}, date(2027, 2, 1), (7, 2))[0]
        assert moved.key == "answer:2027-02-08:approaching:7d"

    def test_several_deadlines_and_met_ones(self) -> None:
        alerts = alerts_due(
            {DeadlineKind.ACKNOWLEDGMENT: date(2026, 11, 17), DeadlineKind.ANSWER: None}, date(2026, 11, 18), (2,)
        )
        assert alerts == [DeadlineAlert(DeadlineKind.ACKNOWLEDGMENT, date(2026, 11, 17), AlertKind.MISSED)]

    def test_negative_lead_refused(self) -> None:
        with pytest.raises(DeadlineError):
            alerts_due(self.due, date(2026, 12, 1), (-1,))
