"""Typed settings of the registry service (environment variables `OMBUDSDESK_*`, see `shared.settings`).

Every field of `deadlines.DeadlineRules` has a setting here; `RegistrySettings.deadline_rules()` builds the rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, NonNegativeInt, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from services.registry.deadlines import DeadlineError, DeadlineRules
from shared.settings import CommonSettings, split_list


class RegistrySettings(CommonSettings):
    # Empty: a SQLite file `registry.db` under `var_dir` (see `database_url`); PostgreSQL in production.
    registry_database_url: str = ""
    # Legal deadlines of the organisation: the acknowledgment is due within this many working days ...
    acknowledgment_working_days: int = Field(default=5, ge=0)
    # ... the final answer within this many calendar days (moved to the next working day when it falls off one) ...
    answer_calendar_days: int = Field(default=45, ge=1)
    # ... or this many after the one extension (announced to the citizen before the original deadline).
    extended_answer_calendar_days: int = Field(default=90, ge=1)
    # Public holidays of this country (the `holidays` package: BE, FR...) are not working days.
    holiday_country: str = "BE"
    # Regional holidays too: a Belgian Community (Flemish, French, German) or a French département (e.g. 57, 67, 68).
    holiday_subdivision: str | None = None
    # Holiday categories of the `holidays` package counted as days off, e.g. `public,bank` adds Belgian bank holidays.
    holiday_categories: Annotated[tuple[str, ...], NoDecode, Field(min_length=1)] = ("public",)
    # Days the service itself is closed: `MM-DD` every year, `YYYY-MM-DD` once (federal services: `11-02,11-15,12-26`).
    extra_closed_days: Annotated[tuple[str, ...], NoDecode] = ()
    # Days of the week that are never working days, Monday = 0 ... Sunday = 6.
    weekend_days: Annotated[tuple[Annotated[int, Field(ge=0, le=6)], ...], NoDecode] = (5, 6)
    # An extension must be announced to the citizen at least this many days before the original answer deadline.
    extension_notice_days: int = Field(default=0, ge=0)
    # The legal start date of an email is its receipt date in the organisation's time zone, not in UTC.
    registry_timezone: str = "Europe/Brussels"
    # A message on a closed case is attached and reopens it within this many days; later it starts a linked case.
    reopen_window_days: int = Field(default=30, ge=0)
    # Deadline watcher: warn this many days before each deadline, as JSON (`[5, 1]`) or comma-separated (`5,1`).
    deadline_lead_days: Annotated[tuple[NonNegativeInt, ...], NoDecode] = (5, 1)
    # How often the deadline watcher looks for deadlines approaching or missed.
    deadline_check_interval_seconds: float = Field(default=300.0, gt=0)
    # Received messages handled at once by one process (several processes may share the work).
    registry_consumer_workers: int = Field(default=4, ge=1, le=64)
    # Address of the staff HTTP API (FastAPI, OpenAPI at /docs); it has no authentication of its own: keep it on
    # 127.0.0.1 or behind the organisation's authenticating proxy.
    registry_api_host: str = "127.0.0.1"
    # Port of the staff HTTP API; 0 disables it.
    registry_api_port: int = Field(default=8470, ge=0, le=65535)
    # Optional screening configuration files (directory of ombudsmen, keyword rules); empty: the shipped examples.
    screening_config_path: Path | None = None

    # Every check below runs at start-up (`shared.settings.load_settings` names the variable), not on the first
    # complaint or inside the wiring with a traceback.
    @field_validator("deadline_lead_days", "holiday_categories", "extra_closed_days", "weekend_days", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("registry_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Brussels)") from error
        return value

    @field_validator("extended_answer_calendar_days")
    @classmethod
    def _extension_not_shorter(cls, value: int, info: ValidationInfo) -> int:
        answer = info.data.get("answer_calendar_days")
        if answer is not None and value < answer:
            raise ValueError(f"must be at least OMBUDSDESK_ANSWER_CALENDAR_DAYS ({answer})")
        return value

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        country = value.strip().upper()
        _check_holidays(country, None)
        return country

    @field_validator("holiday_subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        country = info.data.get("holiday_country")
        if value is not None and country is not None:  # an invalid country is reported on its own variable
            _check_holidays(country, value)
        return value

    @field_validator("holiday_categories")
    @classmethod
    def _known_categories(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        country, subdivision = info.data.get("holiday_country"), info.data.get("holiday_subdivision")
        if country is not None:  # an invalid country is reported on its own variable
            _check_rules(country=country, subdivision=subdivision, categories=value)
        return value

    @field_validator("extra_closed_days")
    @classmethod
    def _valid_closed_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_rules(extra_closed_days=value)
        return value

    @field_validator("weekend_days")
    @classmethod
    def _valid_weekend(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        _check_rules(weekend=frozenset(value))
        return value

    def deadline_rules(self) -> DeadlineRules:
        """The organisation's deadline rules, every field from its setting."""
        return DeadlineRules(
            acknowledgment_working_days=self.acknowledgment_working_days,
            answer_calendar_days=self.answer_calendar_days,
            extended_answer_calendar_days=self.extended_answer_calendar_days,
            country=self.holiday_country,
            subdivision=self.holiday_subdivision,
            categories=self.holiday_categories,
            extra_closed_days=self.extra_closed_days,
            weekend=frozenset(self.weekend_days),
            extension_notice_days=self.extension_notice_days,
        )

    @property
    def database_url(self) -> str:
        if self.registry_database_url:
            return self.registry_database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'registry.db').resolve()}"


def _check_holidays(country: str, subdivision: str | None) -> None:
    """The `holidays` package knows this country (and subdivision): the same check `DeadlineRules` makes."""
    _check_rules(country=country, subdivision=subdivision)


def _check_rules(**rules: Any) -> None:
    """`DeadlineRules` accepts these values (the other rules at their defaults), else the error of the setting."""
    try:
        DeadlineRules(**rules)
    except DeadlineError as error:
        raise ValueError(str(error)) from error
