"""Property-based tests (hypothesis) of the deadline invariants, over real holiday calendars and random rules."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.registry.deadlines import (
    AlertKind,
    DeadlineKind,
    DeadlineRules,
    ExtensionRefused,
    acknowledgment_due,
    alerts_due,
    answer_due,
    extension_notice_deadline,
    is_working_day,
    validate_extension,
    working_days_between,
)

PLACES = [
    ("BE", None, ()),
    ("BE", "Flemish", ()),
    ("BE", "German", ("12-26", "11-02")),
    ("FR", None, ()),
    ("FR", "57", ()),
    ("FR", "974", ("2030-06-03",)),
]

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@st.composite
def rules_strategy(draw: st.DrawFn) -> DeadlineRules:
    country, subdivision, extra = draw(st.sampled_from(PLACES))
    answer = draw(st.integers(min_value=0, max_value=120))
    return DeadlineRules(
        acknowledgment_working_days=draw(st.integers(min_value=0, max_value=20)),
        answer_calendar_days=answer,
        extended_answer_calendar_days=answer + draw(st.integers(min_value=0, max_value=90)),
        country=country,
        subdivision=subdivision,
        extra_closed_days=extra,
        extension_notice_days=draw(st.integers(min_value=0, max_value=15)),
    )


rules_st = rules_strategy()


@given(received=dates, rules=rules_st, extended=st.booleans(), paused=st.integers(min_value=0, max_value=200))
def test_answer_due_is_the_first_working_day_on_or_after_the_period(
    received: date, rules: DeadlineRules, extended: bool, paused: int
) -> None:
    due = answer_due(received, rules, extended=extended, paused_days=paused)
    period = rules.extended_answer_calendar_days if extended else rules.answer_calendar_days
    earliest = received + timedelta(days=period + paused)
    assert due >= earliest >= received
    assert is_working_day(due, rules)
    # Minimal: every day between the nominal end and the due date is a day off.
    day = earliest
    while day < due:
        assert not is_working_day(day, rules)
        day += timedelta(days=1)
    # Nothing closes for more than a fortnight (catches a runaway loop or an inverted rule).
    assert (due - earliest).days < 15


@given(received=dates, rules=rules_st)
def test_acknowledgment_due_counts_exactly_n_working_days(received: date, rules: DeadlineRules) -> None:
    due = acknowledgment_due(received, rules)
    assert due >= received
    assert is_working_day(due, rules)
    if rules.acknowledgment_working_days > 0:
        assert due > received
        assert working_days_between(received, due, rules) == rules.acknowledgment_working_days
        assert working_days_between(received, due - timedelta(days=1), rules) == rules.acknowledgment_working_days - 1


@given(first=dates, second=dates, rules=rules_st, extended=st.booleans())
def test_deadlines_are_monotonic_in_the_receipt_date(
    first: date, second: date, rules: DeadlineRules, extended: bool
) -> None:
    early, late = sorted((first, second))
    assert answer_due(early, rules, extended=extended) <= answer_due(late, rules, extended=extended)
    assert acknowledgment_due(early, rules) <= acknowledgment_due(late, rules)


@given(received=dates, rules=rules_st, a=st.integers(0, 200), b=st.integers(0, 200))
def test_pauses_only_push_later(received: date, rules: DeadlineRules, a: int, b: int) -> None:
    less, more = sorted((a, b))
    assert answer_due(received, rules) <= answer_due(received, rules, paused_days=less)
    assert answer_due(received, rules, paused_days=less) <= answer_due(received, rules, paused_days=more)


@given(received=dates, rules=rules_st, paused=st.integers(0, 200))
def test_extension_never_shortens(received: date, rules: DeadlineRules, paused: int) -> None:
    assert answer_due(received, rules, extended=True, paused_days=paused) >= answer_due(
        received, rules, paused_days=paused
    )


@given(received=dates, rules=rules_st, offset=st.integers(-10, 200))
def test_extension_accepted_exactly_when_notice_is_in_time(received: date, rules: DeadlineRules, offset: int) -> None:
    assume(rules.extended_answer_calendar_days > rules.answer_calendar_days)
    today = received + timedelta(days=offset)  # the notice goes out the day staff extend
    in_time = today <= extension_notice_deadline(received, rules)
    try:
        extended = validate_extension(received, rules, today=today)
    except ExtensionRefused:
        assert not in_time
    else:
        assert in_time
        assert extended == answer_due(received, rules, extended=True)
        assert extended >= answer_due(received, rules)


@settings(max_examples=200)
@given(due=dates, today=dates, leads=st.lists(st.integers(0, 30), max_size=4))
def test_alerts_invariants(due: date, today: date, leads: list[int]) -> None:
    alerts = alerts_due({DeadlineKind.ANSWER: due}, today, leads)
    assert len(alerts) <= 1
    if today > due:
        assert [a.alert for a in alerts] == [AlertKind.MISSED]
    elif alerts:
        (alert,) = alerts
        assert alert.alert is AlertKind.APPROACHING
        assert alert.lead_days in leads
        assert (due - today).days <= alert.lead_days
        # The tightest lead reached: no smaller lead time is also reached.
        assert not [lead for lead in leads if (due - today).days <= lead < alert.lead_days]
    else:
        assert all((due - today).days > lead for lead in leads)


@given(due=dates, leads=st.lists(st.integers(0, 30), min_size=1, max_size=4))
def test_a_daily_watcher_sees_each_lead_and_one_missed_alert(due: date, leads: list[int]) -> None:
    # Running the watcher every day from before the first lead time to after the deadline: every distinct lead time
    # gives one alert key and exactly one "missed" key appears, last.
    keys: list[str] = []
    day = due - timedelta(days=max(leads) + 1)
    while day <= due + timedelta(days=3):
        for alert in alerts_due({DeadlineKind.ANSWER: due}, day, leads):
            if alert.key not in keys:
                keys.append(alert.key)
        day += timedelta(days=1)
    assert keys[-1] == f"answer:{due.isoformat()}:missed"
    assert len([k for k in keys if k.endswith("missed")]) == 1
    assert sorted(k for k in keys if "approaching" in k) == sorted(
        f"answer:{due.isoformat()}:approaching:{lead}d" for lead in set(leads)
    )
