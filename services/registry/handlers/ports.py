"""What a handler is given (the register's policy and clock; the unit of work is `unit_of_work.py`), what it may
raise, and what an incoming message became."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from services.registry import deadlines, workflow
from services.registry.public.citizen_access import CitizenPolicy
from services.registry.mediation.information_requests import InformationPolicy
from services.registry.numbering import NumberFormat
from services.registry.screening import ScreeningConfig


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class NotFound(LookupError):
    """No complaint (or held message) with that number (or id)."""


class Conflict(ValueError):
    """The action contradicts the register's state (already resolved, illegal transition...)."""


@dataclass(frozen=True)
class RegistryPolicy:
    """The organisation's rules: case numbers, deadlines, time zone, reopening window, screening (optional)."""

    number_format: NumberFormat
    rules: deadlines.DeadlineRules
    timezone: ZoneInfo
    reopen: workflow.ReopenPolicy
    screening: ScreeningConfig | None = None
    # Possible duplicates (issue 15, `duplicates.py`): the window, in days, before a new complaint; 0 disables.
    duplicate_window_days: int = 0
    # Requests for information to the citizen (issue 15, `information_requests.py`): reminder and closing times.
    information: InformationPolicy = InformationPolicy()
    # The citizen's personal link and the satisfaction survey (issue 17, `citizen_access.py`): off by default.
    citizen: CitizenPolicy = CitizenPolicy()


@dataclass(frozen=True)
class RegisterClock:
    """The time of the register: `now()` in UTC, days in the organisation's zone (a receipt at 23:30 UTC in winter
    is the next day in Brussels)."""

    now: Callable[[], datetime]
    zone: ZoneInfo

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def today(self) -> date:
        return self.local_date(self.now())


@dataclass(frozen=True)
class Outcome:
    """What an incoming (or held) message became: registered, appended, receipt, held, discarded, or a replay."""

    action: str
    number: str | None = None
    replay: bool = False
    reason: str | None = None
