"""Typed configuration of the notifier (env `OMBUDSDESK_<FIELD>`); defaults work with no environment at all."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.settings import CommonSettings, placeholder_in_url, placeholder_secret, split_list

SUPPORTED_LANGUAGES = ("fr", "nl", "de", "en")


class NotifierSettings(CommonSettings):
    # The notifier's own database (outbox, address flags, print queue); SQLite `var_dir/notifier.db` when empty.
    notifier_database_url: str = ""

    # Host of the SMTP relay every notice leaves through (the local mail catcher under `make run`).
    relay_host: str = "127.0.0.1"
    # Port of the SMTP relay.
    relay_port: int = 1025
    # Require STARTTLS (RFC 3207) with the relay.
    relay_starttls: bool = False
    # Speak TLS from the first byte (implicit TLS, RFC 8314, usually port 465) instead of STARTTLS.
    relay_implicit_tls: bool = False
    # PEM file of the certificates to trust for the relay's TLS certificate instead of the system's (an internal CA);
    # the system's trusted certificates when empty.
    relay_tls_ca_file: Path | None = None
    # User name for SMTP AUTH with the relay (RFC 4954); no AUTH when empty. Needs `relay_starttls` or
    # `relay_implicit_tls`: the password never crosses the network in clear (refused at start-up).
    relay_username: str | None = None
    # Password for SMTP AUTH with the relay (never logged).
    relay_password: SecretStr | None = None
    # Time limit of each SMTP command, in seconds.
    relay_timeout_seconds: float = 30.0
    # First wait before retrying a 4xx answer or a connection error; it doubles at each attempt.
    relay_retry_first_seconds: float = 30.0
    # Longest wait between two attempts.
    relay_retry_longest_seconds: float = 3600.0
    # Give up (NotificationFailed) when a notice is still refused this long after it was recorded.
    relay_retry_deadline_seconds: float = 3 * 24 * 3600.0
    # A notice claimed by a relay that died is sent again after this lease (at-least-once beats a lost notice). It
    # must exceed the longest single send (a few SMTP commands of `relay_timeout_seconds` each).
    relay_lease_seconds: float = 600.0
    # The relay also wakes up this often when no new notice signalled it (retries, notices of another instance).
    relay_poll_seconds: float = 5.0

    # From address and envelope sender of every notice (bounces come back to intake through it).
    sender_address: str = "plaintes@ombudsdesk.localhost"
    # Signature above the organisation's name under citizen notices (e.g. a mediator's name); empty: the name alone.
    organisation_signature: str = ""
    # Postal address in the signature and the letterhead of PDF letters (lines separated by newlines).
    organisation_postal_address: str = "Rue de la Loi 1\n1000 Bruxelles"
    # Telephone number in the signature (omitted when empty).
    organisation_phone: str = ""
    # Web site in the signature (omitted when empty).
    organisation_website: str = ""
    # Logo shown at the top of HTML notices (omitted when empty).
    organisation_logo_url: str = ""
    # Name of the second-line (federal / national) ombudsman a citizen may turn to when not satisfied with our answer;
    # empty: the one the jurisdiction's legal notice names (`legal_notices/<jurisdiction>.toml`), per language.
    second_line_name: str = ""
    # The second-line ombudsman's name in other languages, JSON object by language, e.g. {"nl": "Federale Ombudsman"}.
    second_line_name_translations: dict[str, str] = Field(default_factory=dict)
    # How to reach the second-line ombudsman, as printed in notices; empty: the jurisdiction's legal notice's.
    second_line_contact: str = ""
    # The second-line contact in other languages, JSON object by language (a web address per language, a street name).
    second_line_contact_translations: dict[str, str] = Field(default_factory=dict)
    # A deployment's folder of templates overriding the shipped ones (same relative paths, e.g. `fr/acknowledgment.j2`).
    templates_dir: Path | None = None
    # Language of citizen notices when the citizen's is unknown or not one of fr, nl, de, en.
    default_language: str = "fr"

    # Legal notices (issue 15): whose law the appeal-deadline and second-line sentences of citizen notices state,
    # `BE` or `FR` (the shipped `services/notifier/legal_notices/<code>.toml`), or any two-letter code with a file in
    # `legal_notices_dir`.
    jurisdiction: str = Field(default="BE", pattern=r"^[A-Za-z]{2}$")
    # A deployment's folder of legal notices: its `<jurisdiction>.toml` (e.g. `be.toml`) replaces the shipped one.
    legal_notices_dir: Path | None = None
    # The key file that opens the citizen's personal and survey links the registry seals (issue 17; the registry's
    # setting of the same name names the same file); empty: `VAR_DIR/citizen-link.key`.
    citizen_link_key_file: Path | None = None

    # Address in copy of every deadline warning (besides the file's handler); none when empty.
    supervisor_address: str | None = None
    # Language of deadline warnings when the handler's is unknown.
    staff_language: str = "fr"
    # Local hour from which each handler gets the daily digest of their files at risk; no digest when empty.
    deadline_digest_hour: int | None = Field(default=None, ge=0, le=23)
    # Time zone of `deadline_digest_hour`.
    deadline_digest_timezone: str = "Europe/Brussels"

    # Our own complaint mailboxes: never written to (mail loops). Same setting as intake's; JSON list or a,b,c.
    complaint_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["plaintes@ombudsdesk.localhost"]
    )
    # Staff who forward complaints on behalf of citizens: never get the citizen's notices (deadline warnings still
    # go to them). Same setting as intake's.
    staff_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Domains of such staff. Same setting as intake's.
    staff_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # "Your message was added to case N": at most this many per address and calendar day (in `notifier_timezone`).
    follow_up_notices_per_day: int = 1
    # Acknowledgments one address gets in any 24 hours, counted in the outbox (all instances); beyond it they are
    # recorded as suppressed with the reason, so mail sent in a third party's name cannot flood that party.
    acknowledgment_limit_per_recipient: int = Field(default=5, ge=1)
    # Time zone of the service's calendar: the day of the follow-up limit, the date printed on letters.
    notifier_timezone: str = "Europe/Brussels"

    # Address of the probe endpoint (GET /health, /ready and /metrics; docs/operations.md).
    notifier_health_host: str = "127.0.0.1"
    # Port of the probe endpoint; 0 disables it.
    notifier_health_port: int = Field(default=2581, ge=0, le=65535)

    @field_validator("complaint_addresses", "staff_addresses", "staff_domains", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("complaint_addresses", "staff_addresses", "staff_domains")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [item.strip().lower() for item in value]

    @field_validator("second_line_name_translations",
                     "second_line_contact_translations")
    @classmethod
    def _known_languages(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SUPPORTED_LANGUAGES))
        if unknown:
            raise ValueError(f"languages must be among {', '.join(SUPPORTED_LANGUAGES)}; got {', '.join(unknown)}")
        return {language: text for language, text in value.items() if text.strip()}

    @field_validator("notifier_timezone", "deadline_digest_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Brussels)") from error
        return value

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> "NotifierSettings":
        if self.relay_starttls and self.relay_implicit_tls:
            raise ValueError("relay_starttls and relay_implicit_tls exclude each other: choose one")
        if self.relay_username and not (self.relay_starttls or self.relay_implicit_tls):
            raise ValueError(
                "relay_username is set but neither relay_starttls nor relay_implicit_tls: the relay password would "
                "cross the network in clear; set OMBUDSDESK_RELAY_STARTTLS=true or OMBUDSDESK_RELAY_IMPLICIT_TLS=true"
            )
        return self

    def production_refusals(self) -> list[str]:
        """Production mode (`OMBUDSDESK_ENVIRONMENT`) also refuses a relay without TLS and placeholder secrets."""
        refusals = super().production_refusals()
        if not (self.relay_starttls or self.relay_implicit_tls):
            refusals.append("a relay without TLS: set OMBUDSDESK_RELAY_STARTTLS=true or "
                            "OMBUDSDESK_RELAY_IMPLICIT_TLS=true")
        if self.relay_password is not None and placeholder_secret(self.relay_password.get_secret_value()):
            refusals.append("placeholder password in OMBUDSDESK_RELAY_PASSWORD")
        if placeholder_in_url(self.notifier_database_url):
            refusals.append("placeholder password in OMBUDSDESK_NOTIFIER_DATABASE_URL")
        return refusals

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.notifier_timezone)

    def localized(self, name: str, language: str) -> str:
        """A citizen-facing name (`organisation_name`, `second_line_name`, `second_line_contact`) in `language`,
        the French value when that language has none."""
        translations: dict[str, str] = getattr(self, f"{name}_translations")
        return translations.get(language) or getattr(self, name)

    @property
    def database_url(self) -> str:
        if self.notifier_database_url:
            return self.notifier_database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'notifier.db').resolve()}"
