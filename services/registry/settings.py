"""Typed settings of the registry service (environment variables `OMBUDSDESK_*`, see `shared.settings`).

Every field of `deadlines.DeadlineRules` has a setting here; `RegistrySettings.deadline_rules()` builds the rules.
The staff identity settings (issue 13: allowed hosts, sessions, login throttling, single sign-on) are read by
`access.accounts.identity_policy` and `api.create_api`.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, NonNegativeInt, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from services.registry.public.citizen_access import CitizenPolicy
from services.registry.deadlines import DeadlineError, DeadlineRules
from services.registry.mediation.information_requests import InformationPolicy
from services.registry.privacy.schedule import RetentionSchedule
from shared.sealing import LinkSeal
from shared.settings import CommonSettings, placeholder_in_file, placeholder_in_url, split_list


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
    # Address of the staff HTTP API and back office (FastAPI, OpenAPI at /openapi.json, pages at /backoffice/).
    # Every request but the probes (/health, /ready, /metrics) needs a session or a personal API token.
    registry_api_host: str = "127.0.0.1"
    # Port of the staff HTTP API and back office; 0 disables it.
    registry_api_port: int = Field(default=8470, ge=0, le=65535)
    # Host names the API and back office answer to (others get 400: DNS rebinding), comma-separated; the API host
    # and the host of the public back-office URL are added.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ("localhost", "127.0.0.1", "[::1]")
    # Public address of the back office, as staff reach it (links printed by `ombudsdesk users`, the single sign-on
    # return address); empty: http://API_HOST:API_PORT/backoffice/.
    backoffice_public_url: str = ""
    # A back-office session ends after this many minutes without a request ...
    session_idle_minutes: int = Field(default=120, ge=1)
    # ... and this many hours after the login in any case.
    session_absolute_hours: int = Field(default=12, ge=1)
    # The session cookie's Secure flag: `auto` (set when the back office is reached over https), `true` or `false`.
    session_cookie_secure: Literal["auto", "true", "false"] = "auto"
    # Login throttling: after this many failed logins for one account within the window, logins are refused ...
    login_max_failures_per_account: int = Field(default=5, ge=1)
    # ... and after this many from one IP address (any account) ...
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    # ... until the oldest failure leaves this window (minutes).
    login_failure_window_minutes: int = Field(default=15, ge=1)
    # A one-time link (set the password, first login) expires after this many hours.
    one_time_link_hours: int = Field(default=72, ge=1)
    # Argon2id cost of stored passwords (RFC 9106 second recommendation); a login rehashes a password hashed with
    # other values.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=8192)
    # How many Argon2id hashes are computed at the same time (in worker threads, off the event loop); more logins at
    # once wait their turn, so that a flood of logins takes neither every thread nor memory x 64 MiB.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    # Single sign-on through an OpenID Connect provider: its issuer URL (discovery at
    # ISSUER/.well-known/openid-configuration); empty: local accounts only.
    oidc_issuer: str = ""
    # The client registered at the provider, and the file holding its secret (never the secret itself in the
    # environment); no file: a public client (PKCE only).
    oidc_client_id: str = ""
    oidc_client_secret_file: Path | None = None
    # Scopes asked for (`openid` and `email` at least: accounts are matched by verified email on a first login).
    oidc_scopes: Annotated[tuple[str, ...], NoDecode] = ("openid", "email", "profile")
    # Text of the single sign-on button on the login page; empty: "Single sign-on" in the person's language.
    oidc_button_label: str = ""
    # Optional screening configuration files (directory of ombudsmen, keyword rules); empty: the shipped examples.
    screening_config_path: Path | None = None
    # The administration concerned (issue 15): a request for its position is followed by a reminder to it this many
    # days before its answer deadline (the administration's own days); 0: no reminder. When the deadline passes
    # without an answer, the file's handler is warned.
    position_reminder_days: int = Field(default=7, ge=0, le=365)
    # Possible duplicates (issue 15): a new complaint is flagged when the same citizen (email, or name and postal
    # address) wrote about the same service within this many days before it; 0 disables the check.
    duplicate_window_days: int = Field(default=90, ge=0, le=3650)
    # Requests for information to the citizen (issue 15): the citizen is reminded this many calendar days after the
    # request when they have not answered ...
    information_reminder_days: int = Field(default=14, ge=1, le=365)
    # ... and the file is closed for lack of answer after the reply date told to them: the request day plus this
    # many calendar days (moved to the next working day), which must be more than the reminder's.
    information_closing_days: int = Field(default=30, ge=2, le=730)
    # The public web's address as citizens reach it (issue 17; the same variable as intake's): the personal links to
    # a file and the survey links the notices carry start with it. Empty: no such link is issued.
    public_web_url: str = ""
    # The key file that seals those links for the notifier (the notifier's own setting names the same file); empty:
    # `VAR_DIR/citizen-link.key`, made at the first start (services on separate hosts install one file on both).
    citizen_link_key_file: Path | None = None
    # A personal link works until this many days after its file is closed (a reopened file's works again).
    citizen_link_days_after_close: int = Field(default=180, ge=1, le=3650)
    # "Send me my link again": at most this many new links a day for one file, whoever asks.
    citizen_link_resends_per_day: int = Field(default=3, ge=1, le=50)
    # Kinds of file (complaint, question, suggestion, compliment) whose closing invites the citizen to the
    # satisfaction survey, comma-separated; empty: no survey.
    survey_kinds: Annotated[tuple[str, ...], NoDecode] = ("complaint",)
    # A survey link may be answered for this many days after the invitation.
    survey_link_days: int = Field(default=60, ge=1, le=730)
    # Only files closed within this many days are invited (turning the survey on does not mail a whole history).
    survey_window_days: int = Field(default=14, ge=1, le=365)

    # Retention (issue 16, docs/privacy.md): a closed (or answered) file is anonymised this many years after the day
    # it ended (identity and texts replaced, the facts the statistics count kept); a merged file likewise.
    retention_closed_years: int = Field(default=5, ge=1, le=100)
    # ... a closed file of one of these kinds after its own period instead, as `kind=years` pairs, e.g.
    # `question=2,suggestion=2` (kinds: complaint, suggestion, compliment, question).
    retention_kind_years: Annotated[tuple[str, ...], NoDecode] = ()
    # An inadmissible file is anonymised this many years after it was declared so ...
    retention_inadmissible_years: int = Field(default=1, ge=1, le=100)
    # ... a redirected one (sent to the competent ombudsman) after this many ...
    retention_redirected_years: int = Field(default=1, ge=1, le=100)
    # ... a withdrawn one after this many.
    retention_withdrawn_years: int = Field(default=1, ge=1, le=100)
    # A message of the holding pen never attached to a file (pending or discarded) is deleted this many days after
    # it was received.
    retention_held_days: int = Field(default=90, ge=1, le=3650)
    # Outbox rows already published are deleted this many days after publication (a replayed event older than the
    # streams' age is not expected; see OMBUDSDESK_STREAM_MAX_AGE_DAYS).
    retention_outbox_days: int = Field(default=30, ge=1, le=3650)
    # The daily retention run of the registry service (`ombudsdesk privacy retention` does the same by hand) ...
    retention_enabled: bool = True
    # ... at this time of day, HH:MM in the register's time zone.
    retention_run_at: str = "02:30"

    @field_validator("retention_kind_years", mode="before")
    @classmethod
    def _split_kind_years(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("retention_kind_years")
    @classmethod
    def _valid_kind_years(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _kind_years(value)
        return value

    @field_validator("retention_run_at")
    @classmethod
    def _valid_run_at(cls, value: str) -> str:
        try:
            time.fromisoformat(value.strip())
        except ValueError as error:
            raise ValueError(f"{value!r} is not a time of day HH:MM") from error
        return value.strip()

    def retention_schedule(self) -> RetentionSchedule:
        """The retention schedule, every period from its setting."""
        return RetentionSchedule(closed_years=self.retention_closed_years,
                                 inadmissible_years=self.retention_inadmissible_years,
                                 redirected_years=self.retention_redirected_years,
                                 withdrawn_years=self.retention_withdrawn_years, held_days=self.retention_held_days,
                                 kind_years=_kind_years(self.retention_kind_years))

    # Every check below runs at start-up (`shared.settings.load_settings` names the variable), not on the first
    # complaint or inside the wiring with a traceback.
    @field_validator("deadline_lead_days", "holiday_categories", "extra_closed_days", "weekend_days", "allowed_hosts",
                     "oidc_scopes", "survey_kinds", mode="before")
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

    @field_validator("information_closing_days")
    @classmethod
    def _closing_after_reminder(cls, value: int, info: ValidationInfo) -> int:
        reminder = info.data.get("information_reminder_days")
        if reminder is not None and value <= reminder:
            raise ValueError(f"must be more than OMBUDSDESK_INFORMATION_REMINDER_DAYS ({reminder})")
        return value

    def information_policy(self) -> InformationPolicy:
        """The reminder and closing times of requests for information to the citizen."""
        return InformationPolicy(reminder_days=self.information_reminder_days,
                                 closing_days=self.information_closing_days)

    def citizen_policy(self) -> CitizenPolicy:
        """The personal link's and the survey's rules (issue 17)."""
        url = self.public_web_url  # ends with "/" (`_http_url`)
        return CitizenPolicy(
            public_url=url,
            link_days_after_close=self.citizen_link_days_after_close,
            resends_per_day=self.citizen_link_resends_per_day,
            survey_kinds=tuple(kind.strip().lower() for kind in self.survey_kinds if kind.strip()),
            survey_days=self.survey_link_days,
            survey_window_days=self.survey_window_days,
            seal=LinkSeal(self.citizen_link_key_file or self.var_dir / "citizen-link.key") if url else None,
        )

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

    @field_validator("allowed_hosts")
    @classmethod
    def _plain_host_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(name.strip().lower() for name in value if name.strip())
        for name in names:
            if "/" in name or "@" in name or " " in name:
                raise ValueError(f"{name!r} is not a host name (no scheme, path or port)")
        return names

    @field_validator("backoffice_public_url", "public_web_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("an http:// or https:// URL, e.g. https://desk.example.be/backoffice/")
            if not value.endswith("/"):
                value += "/"
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("the issuer's URL, e.g. https://login.example.be/realms/staff")
        return value

    @field_validator("oidc_client_id")
    @classmethod
    def _client_with_issuer(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("oidc_issuer") and not value.strip():
            raise ValueError("required with OMBUDSDESK_OIDC_ISSUER")
        return value.strip()

    @field_validator("oidc_client_secret_file")
    @classmethod
    def _readable_secret(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file {value}")
        return value

    def backoffice_url(self) -> str:
        """Where staff open the back office (ends with `/`): the public URL, or the API's own address."""
        if self.backoffice_public_url:
            return self.backoffice_public_url
        host = self.registry_api_host
        host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
        return f"http://{_bracketed(host)}:{self.registry_api_port}/backoffice/"

    def host_names(self) -> frozenset[str]:
        """Every host name the API and back office answer to (`allowed_hosts`, the API host, the public URL's)."""
        names = set(self.allowed_hosts)
        if self.registry_api_host not in ("", "0.0.0.0", "::"):  # a wildcard address is not a name a browser sends
            names.add(_bracketed(self.registry_api_host.lower()))
        if self.backoffice_public_url:
            names.add(_bracketed(urlsplit(self.backoffice_public_url).hostname or ""))
        return frozenset(names)

    def production_refusals(self) -> list[str]:
        """Production mode (`OMBUDSDESK_ENVIRONMENT`) also refuses placeholder secrets of the registry."""
        refusals = super().production_refusals()
        if placeholder_in_url(self.registry_database_url):
            refusals.append("placeholder password in OMBUDSDESK_REGISTRY_DATABASE_URL")
        if placeholder_in_file(self.oidc_client_secret_file):
            refusals.append("placeholder secret in OMBUDSDESK_OIDC_CLIENT_SECRET_FILE")
        return refusals

    def oidc_client_secret(self) -> str | None:
        if self.oidc_client_secret_file is None:
            return None
        return self.oidc_client_secret_file.read_text(encoding="utf-8").strip() or None

    @property
    def database_url(self) -> str:
        if self.registry_database_url:
            return self.registry_database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'registry.db').resolve()}"


def _bracketed(host: str) -> str:
    """An IPv6 address as it appears in a URL and a Host header: `[::1]`."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _check_holidays(country: str, subdivision: str | None) -> None:
    """The `holidays` package knows this country (and subdivision): the same check `DeadlineRules` makes."""
    _check_rules(country=country, subdivision=subdivision)


def _check_rules(**rules: Any) -> None:
    """`DeadlineRules` accepts these values (the other rules at their defaults), else the error of the setting."""
    try:
        DeadlineRules(**rules)
    except DeadlineError as error:
        raise ValueError(str(error)) from error


def _kind_years(pairs: tuple[str, ...]) -> dict[str, int]:
    """`kind=years` pairs as a mapping; an unknown kind or a period that is no whole number of years is refused."""
    from services.registry.vocabulary import Kind

    periods: dict[str, int] = {}
    for pair in pairs:
        kind, _, years = pair.partition("=")
        if kind.strip() not in {k.value for k in Kind} or not years.strip().isdigit() or int(years) < 1:
            raise ValueError(f"{pair!r} is not kind=years with a known kind ({', '.join(k.value for k in Kind)}) "
                             f"and 1 year or more")
        periods[kind.strip()] = int(years)
    return periods
