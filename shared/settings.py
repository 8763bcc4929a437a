"""Settings common to every service, read from `OMBUDSDESK_*` environment variables and validated at start-up.

Each service extends `CommonSettings` with its own typed fields; nothing else in the code base reads the environment.
"""

from __future__ import annotations

import json
import re
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

ENV_PREFIX = "OMBUDSDESK_"

# The languages of what people read, French first (the registry's `vocabulary.Language` names the same four).
LANGUAGES = ("fr", "nl", "de", "en")

# The embedded NATS server of `make run` listens here, away from a system NATS on the standard 4222.
EMBEDDED_NATS_PORT = 14222


def split_list(value: Any) -> Any:
    """A list setting as operators type it: a JSON list (`["a@x", "b@y"]`) or comma-separated (`a@x,b@y`).

    Used as a `mode="before"` validator on fields marked `NoDecode`, so a plain comma list never reaches pydantic's
    JSON decoding; a malformed JSON list becomes a clear error naming the variable.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON list: {error}") from error
    return [item.strip() for item in text.split(",") if item.strip()]


class SettingsError(SystemExit):
    """Raised at start-up when the environment does not describe a valid configuration."""


# Words of example and default secrets (`CHANGE-ME` in deploy/ombudsdesk.env.example): a production secret that
# contains one, or is one of the trivial values below, was never set by anybody (`placeholder_secret`).
PLACEHOLDER_WORDS = ("changeme", "changeit", "replaceme", "placeholder", "example", "yourpassword", "yoursecret",
                     "notsecret")
PLACEHOLDER_VALUES = frozenset({"", "password", "passwd", "secret", "admin", "test", "default", "todo", "xxx",
                                "ombudsdesk", "nats", "guest", "1234", "12345678", "0000"})


def placeholder_secret(value: str) -> bool:
    """True for an empty secret, an example value (`CHANGE-ME`, `changeme`, `example-secret`...) or a trivial one."""
    word = re.sub(r"[^a-z0-9]", "", value.lower())
    return word in PLACEHOLDER_VALUES or any(placeholder in word for placeholder in PLACEHOLDER_WORDS)


def placeholder_in_url(url: str) -> bool:
    """A URL (a database's) whose password is a placeholder; a URL without a password has none."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return False
    return password is not None and placeholder_secret(password)


def placeholder_in_file(path: Path | None) -> bool:
    """A secret file (password file) whose content is a placeholder; an unreadable file is reported elsewhere."""
    if path is None:
        return False
    try:
        return placeholder_secret(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return False


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # NATS server(s) with JetStream; a cluster as comma-separated URLs. Default: the embedded server of `make run`.
    nats_url: str = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}"
    # `development` (`make run`, tests) or `production`: in production a service refuses to start with plaintext NATS,
    # NATS without credentials, plaintext IMAP, a relay without TLS or a placeholder secret (docs/security.md).
    environment: Literal["development", "production"] = "development"
    # This process's NATS user (`intake`, `registry`, `notifier`, or `admin` for staff commands: `ombudsdesk nats
    # config` writes their permissions); empty: no credentials (the embedded server of `make run`).
    nats_user: str = ""
    # File holding that user's password, read at connection time: a password is never in the environment itself.
    nats_password_file: Path | None = None
    # Instead of a password: a NATS `.creds` file (user JWT and NKey seed, decentralised auth; needs `nkeys`).
    nats_credentials_file: Path | None = None
    # PEM file of the CA that signed the NATS servers' certificates. Set (or `tls://` URLs), every connection is TLS,
    # and TLS from the first byte (servers need `handshake_first: true`, as `ombudsdesk nats config` writes).
    nats_tls_ca_file: Path | None = None
    # Client certificate (PEM) for servers that verify clients (`verify: true`) ...
    nats_tls_cert_file: Path | None = None
    # ... and its private key (PEM).
    nats_tls_key_file: Path | None = None
    # Local state: default SQLite databases, the embedded NATS store, the mail catcher's outbox.
    var_dir: Path = Path("var")
    # DEBUG, INFO, WARNING or ERROR.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # `console` (readable in a terminal) or `json` (one object per line, for production log collectors).
    log_format: Literal["console", "json"] = "console"
    # Our outgoing Message-IDs end in this domain; intake recognises our own mail coming back by it (RFC 5322 3.6.4).
    message_id_domain: str = "ombudsdesk.localhost"
    # Case numbers look like PREFIX-YEAR-00042; the registry formats them, intake and notifier recognise them.
    case_number_prefix: str = "MED"
    # Digits of the yearly sequence in a case number (5: MED-2026-00042).
    case_number_width: int = 5
    # Name of the organisation, in every notice, as the From display name and on the annual report (French, and any
    # language without its own name in `organisation_name_translations`).
    organisation_name: str = "Service de médiation"
    # The organisation's name in other languages, JSON object by language, e.g. {"nl": "Ombudsdienst", "de": "..."}.
    organisation_name_translations: dict[str, str] = Field(default_factory=dict)
    # JetStream replicas of every stream and bucket: 1 on one server, 3 on a cluster. Applied when a stream is
    # created; an existing stream that differs is reported at start and changed only by `ombudsdesk streams update`.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Events older than this many days leave the three event streams (0: kept forever). Not the spool, the dead
    # letters or the raw originals' buckets, which are never aged; a consumer stopped longer than this loses events.
    stream_max_age_days: int = Field(default=0, ge=0)
    # Server tags every stream and bucket is placed on (JetStream placement: `server_tags` in each server's config),
    # comma-separated; empty: anywhere in the cluster.
    stream_placement_tags: Annotated[tuple[str, ...], NoDecode] = ()
    # Most bytes each of the three event streams may hold (0: no limit). A full stream refuses new events rather
    # than dropping old ones: publishers retry (the spool and the outboxes keep theirs) until space is made.
    stream_max_bytes: int = Field(default=0, ge=0)
    # How often a consumer tries an event before handing it to the dead-letter stream.
    max_deliveries: int = 8
    # How long JetStream waits for an ack before redelivering to another (or the restarted) process.
    ack_wait_seconds: float = 30.0

    @field_validator("stream_placement_tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        return split_list(value)

    @model_validator(mode="after")
    def _nats_credentials_and_tls(self) -> "CommonSettings":
        """Credentials and TLS files that fit together and exist: refused at start-up, not on the first connect."""
        if self.nats_password_file is not None and not self.nats_user:
            raise ValueError("OMBUDSDESK_NATS_PASSWORD_FILE is set but OMBUDSDESK_NATS_USER is empty")
        if self.nats_password_file is not None and self.nats_credentials_file is not None:
            raise ValueError("OMBUDSDESK_NATS_PASSWORD_FILE and OMBUDSDESK_NATS_CREDENTIALS_FILE exclude each other")
        if self.nats_user and self.nats_password_file is None and self.nats_credentials_file is None:
            raise ValueError("OMBUDSDESK_NATS_USER needs OMBUDSDESK_NATS_PASSWORD_FILE (or a .creds file in "
                             "OMBUDSDESK_NATS_CREDENTIALS_FILE)")
        if (self.nats_tls_cert_file is None) != (self.nats_tls_key_file is None):
            raise ValueError("OMBUDSDESK_NATS_TLS_CERT_FILE and OMBUDSDESK_NATS_TLS_KEY_FILE go together")
        for name in ("nats_password_file", "nats_credentials_file", "nats_tls_ca_file", "nats_tls_cert_file",
                     "nats_tls_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{ENV_PREFIX}{name.upper()}: no file {path}")
        if self.nats_credentials_file is not None and find_spec("nkeys") is None:
            raise ValueError("OMBUDSDESK_NATS_CREDENTIALS_FILE needs the `nkeys` package (pip install nkeys); "
                             "or use OMBUDSDESK_NATS_USER with OMBUDSDESK_NATS_PASSWORD_FILE")
        return self

    def nats_uses_tls(self) -> bool:
        """Every NATS connection is TLS: a CA or client certificate is configured, or the URLs say `tls://`."""
        urls = [url.strip() for url in self.nats_url.split(",") if url.strip()]
        return (self.nats_tls_ca_file is not None or self.nats_tls_cert_file is not None
                or (bool(urls) and all(url.lower().startswith("tls://") for url in urls)))

    def production_refusals(self) -> list[str]:
        """What production mode refuses in these settings, each naming its variable. A service's settings add their
        own (`super().production_refusals() + [...]`); `_production_ready` raises them all at once."""
        refusals = []
        if not self.nats_uses_tls():
            refusals.append("plaintext NATS: set OMBUDSDESK_NATS_TLS_CA_FILE (or tls:// URLs in OMBUDSDESK_NATS_URL)")
        if self.nats_password_file is None and self.nats_credentials_file is None:
            refusals.append("NATS without credentials: set OMBUDSDESK_NATS_USER and OMBUDSDESK_NATS_PASSWORD_FILE "
                            "(or OMBUDSDESK_NATS_CREDENTIALS_FILE)")
        if any("@" in url.split("//", 1)[-1].split("/", 1)[0] for url in self.nats_url.split(",")):
            refusals.append("credentials in OMBUDSDESK_NATS_URL: put them in OMBUDSDESK_NATS_PASSWORD_FILE")
        if placeholder_in_file(self.nats_password_file):
            refusals.append("placeholder password in OMBUDSDESK_NATS_PASSWORD_FILE")
        return refusals

    @model_validator(mode="after")
    def _production_ready(self) -> "CommonSettings":
        if self.environment == "production":
            refusals = self.production_refusals()
            if refusals:
                raise ValueError("OMBUDSDESK_ENVIRONMENT=production refuses to start with:"
                                 + "".join(f"\n    - {refusal}" for refusal in refusals))
        return self

    @field_validator("organisation_name_translations")
    @classmethod
    def _translations_in_our_languages(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"languages must be among {', '.join(LANGUAGES)}; got {', '.join(unknown)}")
        return {language: text for language, text in value.items() if text.strip()}

    def localized_organisation_name(self, language: str) -> str:
        """The organisation's name in `language`, the French name when that language has none."""
        return self.organisation_name_translations.get(language) or self.organisation_name


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def load_settings(settings_class: type[SettingsT], **overrides: object) -> SettingsT:
    """Build the settings or stop with a message naming each bad environment variable."""
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        lines = [f"ombudsdesk: invalid configuration for {settings_class.__name__}:"]
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"  {ENV_PREFIX}{field.upper()}: {message}" if field else f"  {message}")
        raise SettingsError("\n".join(lines)) from None
    except PydanticSettingsError as error:
        # Raised while decoding an environment variable (e.g. a list that is not JSON), before validation.
        raise SettingsError(f"ombudsdesk: invalid configuration for {settings_class.__name__}: {error}") from None
