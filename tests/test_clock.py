"""The tests' own date oracle (`tests/clock.py`) at the hours where UTC's day and Brussels' day differ."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tests import clock
from tests.clock import ReceiptWindow, brussels_day

UTC = timezone.utc


@pytest.mark.parametrize(("moment", "day"), [
    # Winter (CET, UTC+1): 23:30 UTC is 00:30 the next day in Brussels.
    (datetime(2026, 12, 4, 23, 30, tzinfo=UTC), date(2026, 12, 5)),
    (datetime(2026, 12, 4, 22, 59, tzinfo=UTC), date(2026, 12, 4)),
    # Summer (CEST, UTC+2): from 22:00 UTC on.
    (datetime(2026, 7, 1, 22, 30, tzinfo=UTC), date(2026, 7, 2)),
    (datetime(2026, 7, 1, 21, 59, tzinfo=UTC), date(2026, 7, 1)),
    # New Year's Eve at 23:30 UTC is already next year's first day: the case number's year changes too.
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), date(2027, 1, 1)),
    # An offset other than UTC's is honoured, not read as a wall clock.
    (datetime(2026, 12, 5, 8, 30, tzinfo=timezone(timedelta(hours=9))), date(2026, 12, 5)),
])
def test_the_receipt_day_is_the_brussels_day_of_the_moment(moment, day):
    assert brussels_day(moment) == day


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        brussels_day(datetime(2026, 12, 4, 23, 30))


def test_a_window_across_brussels_midnight_offers_both_days(monkeypatch):
    moments = iter([datetime(2026, 12, 4, 22, 59, 58, tzinfo=UTC), datetime(2026, 12, 4, 23, 0, 3, tzinfo=UTC)])
    monkeypatch.setattr(clock, "utc_now", lambda: next(moments))
    window = ReceiptWindow()
    window.close()
    assert window.days() == [date(2026, 12, 4), date(2026, 12, 5)]


def test_at_2330_utc_today_and_yesterday_are_brussels_days(monkeypatch):
    monkeypatch.setattr(clock, "utc_now", lambda: datetime(2026, 12, 4, 23, 30, tzinfo=UTC))
    window = ReceiptWindow()
    window.close()
    assert window.days() == [date(2026, 12, 5)]
    assert clock.brussels_today() == date(2026, 12, 5)
    assert clock.brussels_yesterday() == date(2026, 12, 4)
