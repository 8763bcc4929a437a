"""Dates as the services give them, worked out independently of their code: a receipt is dated on the day in
Europe/Brussels (the default `registry_timezone`), never on UTC's day nor the day of the machine running the tests.

Between 22:00 (summer) or 23:00 (winter) and 24:00 UTC, Brussels is already on the next day, so an expected value
taken from `datetime.now(timezone.utc).date()` or `date.today()` is wrong for an hour or two each night. A test that
sends a message and reads the result takes the moment before and after (`ReceiptWindow`): the service dated the
receipt on one of the (at most two) Brussels days those moments fall on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def brussels_day(moment: datetime) -> date:
    """The calendar day in Brussels at `moment` (an aware datetime: a naive one has no place in time)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime is no moment: {moment!r}")
    return moment.astimezone(BRUSSELS).date()


def brussels_today() -> date:
    return brussels_day(utc_now())


def brussels_yesterday() -> date:
    """Never "in the future" for a service dating in Brussels, whatever zone the tests run in."""
    return brussels_today() - timedelta(days=1)


@dataclass
class ReceiptWindow:
    """The moments around a receipt: opened before the message is sent, closed once its result is seen."""

    opened: datetime = field(default_factory=lambda: utc_now())  # looked up at call time: a test may fake it
    closed: datetime | None = None

    def close(self) -> None:
        self.closed = utc_now()

    def days(self) -> list[date]:
        """Every Brussels day the receipt may be dated on, in order (one, or two across midnight)."""
        if self.closed is None:
            raise RuntimeError("close() the window once the result is seen")
        first, last = brussels_day(self.opened), brussels_day(self.closed)
        return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
