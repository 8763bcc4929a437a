"""Typed configuration of the notifier (env `OMBUDSDESK_<FIELD>`); defaults work with no environment at all."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from shared.settings import CommonSettings

SUPPORTED_LANGUAGES = ("fr", "nl", "de", "en")


class NotifierSettings(CommonSettings):
    # The notifier's own database (outbox, address flags, print queue); SQLite under var_dir when empty.
    notifier_database_url: str = ""

    # The SMTP relay every notice leaves through (the local mail catcher under `make run`).
    relay_host: str = "127.0.0.1"
    relay_port: int = 1025
    relay_starttls: bool = False
    relay_username: str | None = None
    relay_password: SecretStr | None = None
    relay_timeout_seconds: float = 30.0
    # Retries of 4xx answers and connection errors: exponential backoff until the deadline, then give up.
    relay_retry_first_seconds: float = 30.0
    relay_retry_longest_seconds: float = 3600.0
    relay_retry_deadline_seconds: float = 3 * 24 * 3600.0
    # A notice claimed by a relay that died is sent again after this lease (at-least-once beats a lost notice).
    relay_lease_seconds: float = 120.0
    # The relay also wakes up this often when no new notice signalled it (retries, notices of another instance).
    relay_poll_seconds: float = 5.0

    # Who we are, in one place: every template reads these.
    sender_address: str = "plaintes@ombudsdesk.localhost"
    organisation_name: str = "Service de médiation"
    organisation_signature: str = "Le service de médiation"
    organisation_postal_address: str = "Rue de la Loi 1\n1000 Bruxelles"
    organisation_phone: str = ""
    organisation_website: str = ""
    organisation_logo_url: str = ""
    # The second-line (federal / national) ombudsman a citizen may turn to when not satisfied with our answer.
    second_line_name: str = "Médiateur fédéral"
    second_line_contact: str = "Rue Ducale 43, 1000 Bruxelles – contact@mediateurfederal.be – www.mediateurfederal.be"
    # A deployment's folder of templates overriding the shipped ones (same relative paths).
    templates_dir: Path | None = None
    default_language: str = "fr"

    # Deadline warnings: the handler of the file, and a supervisor in copy when configured.
    supervisor_address: str | None = None
    staff_language: str = "fr"

    # Never write to these (our own mailboxes, staff who forward complaints on behalf of citizens).
    suppressed_addresses: list[str] = []
    suppressed_domains: list[str] = []
    # "Your message was added to case N": at most this many per address and calendar day.
    follow_up_notices_per_day: int = 1

    @property
    def database_url(self) -> str:
        if self.notifier_database_url:
            return self.notifier_database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'notifier.db').resolve()}"
