"""Typed settings of the registry service (environment variables `OMBUDSDESK_*`, see `shared.settings`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import CommonSettings


class RegistrySettings(CommonSettings):
    # Empty: a SQLite file `registry.db` under `var_dir` (see `database_url`); PostgreSQL in production.
    registry_database_url: str = ""
    # Legal deadlines of the organisation (issue 4, "Legal deadlines").
    acknowledgment_working_days: int = Field(default=5, ge=0)
    answer_calendar_days: int = Field(default=45, ge=1)
    extended_answer_calendar_days: int = Field(default=90, ge=1)
    holiday_country: str = "BE"
    holiday_subdivision: str | None = None
    # The legal start date of an email is its receipt date in the organisation's time zone, not in UTC.
    registry_timezone: str = "Europe/Brussels"
    # A message on a closed case is attached and reopens it within this many days; later it starts a linked case.
    reopen_window_days: int = Field(default=30, ge=0)
    # Deadline watcher: warn this many days before each deadline; check this often.
    deadline_lead_days: tuple[int, ...] = (5, 1)
    deadline_check_interval_seconds: float = Field(default=300.0, gt=0)
    # Received messages handled at once by one process (several processes may share the work).
    registry_consumer_workers: int = Field(default=4, ge=1, le=64)
    # Staff HTTP API (FastAPI); 0 disables it.
    registry_api_host: str = "127.0.0.1"
    registry_api_port: int = Field(default=8470, ge=0, le=65535)
    # Optional screening configuration files (directory of ombudsmen, keyword rules); empty: the shipped examples.
    screening_config_path: Path | None = None

    @property
    def database_url(self) -> str:
        if self.registry_database_url:
            return self.registry_database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'registry.db').resolve()}"
