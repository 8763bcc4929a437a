"""Typed settings of the intake service (environment variables `OMBUDSDESK_<FIELD>`).

Defaults work with no environment at all: SMTP on 127.0.0.1:2525, NATS at the embedded default, the health endpoint
on 127.0.0.1:2580. Lists accept JSON (`["a@x", "b@y"]`) or a comma-separated string (`a@x,b@y`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from services.intake.channels.imap_poller import DEFAULT_PROCESSED_KEYWORD, ImapMailbox
from shared.settings import CommonSettings, placeholder_in_file, placeholder_secret, split_list

MEGABYTE = 1024 * 1024


class IntakeSettings(CommonSettings):
    # What this process does (docs/intake.md): "all" takes mail in and understands it; "front" takes mail in (SMTP
    # into the spool, IMAP, the letters folder) and leaves the spool to "parser" processes, which only work through
    # it. Parsers may run on several machines: they share the spool's work.
    intake_role: Literal["all", "front", "parser"] = "all"
    # Address the SMTP listener (RFC 5321) binds to; 0.0.0.0 to take mail from other machines.
    smtp_host: str = "127.0.0.1"
    # SMTP port: 2525 rather than 25, so no root is needed and a system MTA is not in the way.
    smtp_port: int = 2525
    # Name the SMTP server gives in its greeting and in the Received trace header it adds.
    smtp_hostname: str = "ombudsdesk.localhost"
    # The complaint addresses: mail to any other recipient is refused with 550.
    complaint_addresses: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["plaintes@ombudsdesk.localhost"])
    # Enforced while the data is received (aiosmtpd counts bytes and answers 552 at the end of DATA, RFC 5321 4.5.3.1.7).
    max_message_bytes: int = 25 * MEGABYTE
    # Limits of the SMTP front door (docs/security.md); each answers with its own code and names itself.
    # Connections open at once, from everyone (beyond: "421 4.7.0 Too many connections") ...
    smtp_max_connections: int = Field(default=200, ge=1)
    # ... and from one client IP address.
    smtp_max_connections_per_client: int = Field(default=20, ge=1)
    # Recipients of one message (RFC 5321 4.5.3.1.8: at least 100 must be accepted); beyond: 452 4.5.3.
    smtp_max_recipients: int = Field(default=100, ge=100)
    # Commands in one session (MAIL, RCPT, NOOP... each counts); beyond: 421 and the connection is closed.
    smtp_max_commands: int = Field(default=2000, ge=10)
    # Longest life of one session: NOOP or RSET every few minutes cannot keep a connection open for ever.
    smtp_max_session_seconds: float = Field(default=1800.0, gt=0)
    # Messages per hour from one sending client IP that may be acknowledged automatically; the next ones are still
    # taken in and registered, without an automatic acknowledgment (counted in this process, a sliding hour).
    ack_rate_per_client_per_hour: int = Field(default=30, ge=1)
    # Clients exempt from that count: relays that deliver mail for many senders (the organisation's MX; loopback for
    # `make run` and local tools). IP addresses or networks (CIDR); authenticated submission sessions are exempt too.
    smtp_relay_clients: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.0/8", "::1"])
    # Optional STARTTLS (RFC 3207) for a submission port used by staff tools: certificate (PEM) ...
    smtp_tls_cert_file: Path | None = None
    # ... and its private key (PEM). Both unset: no STARTTLS.
    smtp_tls_key_file: Path | None = None
    # Refuse MAIL FROM before STARTTLS (needs the certificate and key).
    smtp_require_starttls: bool = False
    # Require AUTH (RFC 4954) before MAIL FROM, for a submission port; off by default.
    smtp_auth_required: bool = False
    # AUTH users as a JSON object {"login": "password"}; passwords are secrets, never logged.
    smtp_auth_users: dict[str, SecretStr] = Field(default_factory=dict)

    # Staff members whose forwards name the original citizen as complainant: their addresses ...
    staff_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # ... or whole staff domains (example.be).
    staff_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # SMTP AUTH logins (the submission port) that are staff members': their forwards are trusted. A copier's login
    # is not one (its password often sits on the device); empty: no login vouches for a forward.
    staff_logins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Authserv-ids (RFC 8601) of the organisation's own MX, whose Authentication-Results (SPF, DKIM, DMARC checked
    # before relaying to intake) decide a sender's verdict; those of any other authserv-id are ignored (see
    # docs/security.md). Empty: no message is ever `verified` by a header.
    authserv_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where intake is itself the MX: verify DKIM signatures itself (dkimpy, DNS lookups) for a sender's verdict.
    verify_dkim_dmarc: bool = False

    # Parser limits: beyond them a message is quarantined, never allowed to block intake. Time limit of one parse.
    parse_timeout_seconds: float = 20.0
    # Messages above this size are parsed in a worker process, killed at `parse_timeout_seconds`; smaller ones
    # inline (their work is bounded by their size). The name is historical: the worker used to be a thread.
    parse_in_thread_above_bytes: int = 64 * 1024
    # Deepest nesting of MIME parts (message/rfc822 inside multipart...) before quarantine.
    max_mime_depth: int = 12
    # Most MIME parts in one message before quarantine.
    max_mime_parts: int = 500
    # The event carries the text (it must fit one NATS message, 1 MB); the full original stays in the raw object.
    max_text_chars: int = 200_000
    # A declared expansion (TNEF, nested messages) bigger than this is treated as a zip-bomb-like message.
    max_decoded_bytes: int = 100 * MEGABYTE

    # Address of the probe endpoint (GET /health: JSON counters, quarantined messages included; /ready; /metrics).
    intake_health_host: str = "127.0.0.1"
    # Port of the health endpoint; 0 disables it.
    intake_health_port: int = 2580

    # IMAP mailboxes (issue 3): a JSON list of objects {"name", "host", "port", "ssl", "username", "password" or
    # "password_file", "folder", "processed_folder", "recipient", "staff"} (see imap_poller.ImapMailbox). Empty: no IMAP intake.
    # Passwords are SecretStr: never printed, never logged.
    imap_mailboxes: list[ImapMailbox] = Field(default_factory=list)
    # Without IDLE (RFC 2177) on the server, how often a mailbox is searched for new mail.
    imap_poll_seconds: float = 60.0
    # With IDLE, how long one IDLE lasts before it is renewed (RFC 2177: well under 29 minutes).
    imap_idle_seconds: float = 300.0
    # Set with \Seen on a message once its event is durable; a message without it is (re)taken in.
    imap_processed_keyword: str = DEFAULT_PROCESSED_KEYWORD

    # Watch the scanned-letters drop folder.
    letters_enabled: bool = True
    # The drop folder (default `<var_dir>/letters`), with processed/ and rejected/ inside.
    letters_dir: Path | None = None
    # How often the drop folder is looked at.
    letters_poll_seconds: float = 2.0
    # A dropped file is read only once it has not changed for this long (a copy may still be running).
    letters_settle_seconds: float = 2.0
    # A PDF left without metadata, or a manifest naming a PDF that never came, is rejected after this long.
    letters_incomplete_seconds: float = 600.0
    # Scan-to-email: mail to these addresses is a copier's scanned letter (PDF + metadata), see docs/intake-letters.md.
    # Empty (the default): no scan-to-email. A letter's metadata sets its legal start date, so only the copiers
    # named in letters_scan_senders may use it.
    letters_scan_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Envelope senders allowed to mail scans: addresses, or `@domain` for a whole domain of copiers.
    letters_scan_senders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A scanned letter whose receipt date lies more than this many days before the scan is held for staff to confirm.
    letters_scan_max_age_days: int = Field(default=30, ge=0)
    # Where staff stamp the receipt date: "today" for checking that a receipt date is not in the future.
    letters_timezone: str = "Europe/Brussels"
    # The language of the reason files written next to rejected letters (staff read them).
    letters_staff_language: Literal["fr", "nl", "de", "en"] = "fr"

    # Retention of what no register file names (issue 16, docs/privacy.md): a quarantine entry never replayed is
    # erased this many days after it was quarantined (with its raw original unless the message was published)...
    quarantine_retention_days: int = Field(default=30, ge=1)
    # ... and a rejected letter (letters/rejected/, with its reason file) this many days after it was rejected.
    rejected_letters_retention_days: int = Field(default=30, ge=1)
    # How often intake looks for them (the first run 10 minutes after start); 0: never (the command still works).
    intake_retention_interval_hours: float = Field(default=6.0, ge=0)

    # The public complaint form (issue 17): served by intake on this address; port 0 (the default of a service
    # started alone) disables it. `make run` serves it on 8480.
    public_web_host: str = "127.0.0.1"
    public_web_port: int = Field(default=0, ge=0, le=65535)
    # The form's public address as citizens reach it (behind a reverse proxy: https://plaintes.example.be/);
    # empty: http://PUBLIC_WEB_HOST:PUBLIC_WEB_PORT/.
    public_web_url: str = ""
    # A file holding the secret that signs the form's tokens (32 bytes or more, random); empty: a secret made at the
    # first start and kept in VAR_DIR/public-web.secret (a production deployment names its own file).
    public_web_secret_file: Path | None = None
    # Submissions of the form accepted from one client address per hour; more are refused with a clear page.
    public_form_per_client_per_hour: int = Field(default=10, ge=1)
    # Attachments of one submission: how many, and how large each may be (the form refuses more).
    public_form_max_attachments: int = Field(default=5, ge=0, le=20)
    public_form_max_attachment_bytes: int = Field(default=10 * MEGABYTE, ge=1024)
    # How long a form, once displayed, may wait before it is sent (its token expires; the page then asks again).
    public_form_token_hours: int = Field(default=12, ge=1)

    def production_refusals(self) -> list[str]:
        """Production mode (`OMBUDSDESK_ENVIRONMENT`) also refuses plaintext IMAP and placeholder mail passwords."""
        refusals = super().production_refusals()
        for mailbox in self.imap_mailboxes:
            if not mailbox.ssl or not mailbox.verify_tls:
                refusals.append(f"plaintext IMAP: mailbox {mailbox.name!r} in OMBUDSDESK_IMAP_MAILBOXES needs "
                                '"ssl": true and "verify_tls": true')
            secret = (placeholder_in_file(mailbox.password_file) if mailbox.password_file is not None
                      else placeholder_secret(mailbox.password.get_secret_value()))
            if secret:
                refusals.append(f"placeholder password for mailbox {mailbox.name!r} in OMBUDSDESK_IMAP_MAILBOXES")
        if any(placeholder_secret(password.get_secret_value()) for password in self.smtp_auth_users.values()):
            refusals.append("placeholder password in OMBUDSDESK_SMTP_AUTH_USERS")
        if self.public_web_port and self.public_web_secret_file is None:
            refusals.append("the public web form needs its own signing secret: set OMBUDSDESK_PUBLIC_WEB_SECRET_FILE")
        elif self.public_web_port and self.public_web_secret_file and placeholder_in_file(self.public_web_secret_file):
            refusals.append("placeholder secret in OMBUDSDESK_PUBLIC_WEB_SECRET_FILE")
        return refusals

    def public_form_url(self) -> str:
        """Where citizens reach the complaint form (printed by `make run`, the origin its posts must come from)."""
        if self.public_web_url:
            return self.public_web_url.rstrip("/") + "/"
        host = "127.0.0.1" if self.public_web_host in ("0.0.0.0", "", "::") else self.public_web_host
        return f"http://{host}:{self.public_web_port}/"

    def spool_ack_wait_seconds(self) -> float:
        """A spool entry is redelivered only after its parse could have timed out twice over."""
        return max(self.ack_wait_seconds, 2 * self.parse_timeout_seconds + 10)

    def letters_path(self) -> Path:
        return self.letters_dir or self.var_dir / "letters"

    @field_validator("letters_scan_senders", mode="before")
    @classmethod
    def _scan_senders(cls, value: Any) -> Any:
        return [sender.lower() for sender in split_list(value)]

    @model_validator(mode="after")
    def _scan_to_email_needs_its_senders(self) -> "IntakeSettings":
        if self.letters_scan_addresses and not self.letters_scan_senders:
            raise ValueError("letters_scan_addresses is set but letters_scan_senders is empty: name the copiers "
                             "allowed to mail scanned letters (OMBUDSDESK_LETTERS_SCAN_SENDERS)")
        return self

    @field_validator("letters_scan_addresses", mode="before")
    @classmethod
    def _scan_addresses(cls, value: Any) -> Any:
        value = split_list(value)
        return [str(item).strip().lower() for item in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _smtp_security_is_complete(self) -> IntakeSettings:
        # Refuse at start-up rather than silently serving without the protection that was asked for.
        if self.smtp_require_starttls and not self.smtp_tls_cert_file:
            raise ValueError("smtp_require_starttls needs smtp_tls_cert_file (and smtp_tls_key_file)")
        if self.smtp_auth_required and not self.smtp_auth_users:
            raise ValueError("smtp_auth_required needs at least one user in smtp_auth_users")
        return self

    @field_validator("smtp_relay_clients", mode="before")
    @classmethod
    def _relay_clients(cls, value: Any) -> Any:
        value = split_list(value)
        for item in value if isinstance(value, list) else ():
            try:
                ipaddress.ip_network(str(item).strip(), strict=False)
            except ValueError:
                raise ValueError(f"smtp_relay_clients: {item!r} is not an IP address or network") from None
        return value

    def relay_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in self.smtp_relay_clients)

    @field_validator("complaint_addresses", "staff_addresses", "staff_domains", "authserv_ids", "staff_logins",
                     mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("complaint_addresses", "staff_addresses", "staff_domains", "authserv_ids", "staff_logins")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [item.strip().lower() for item in value]
