"""Settings common to every service, read from `OMBUDSDESK_*` environment variables and validated at start-up.

Each service extends `CommonSettings` with its own typed fields; nothing else in the code base reads the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

ENV_PREFIX = "OMBUDSDESK_"

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


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # NATS server(s) with JetStream; a cluster as comma-separated URLs. Default: the embedded server of `make run`.
    nats_url: str = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}"
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
    # JetStream replicas of every stream: 1 on one server, 3 on a cluster.
    stream_replicas: int = 1
    # How often a consumer tries an event before handing it to the dead-letter stream.
    max_deliveries: int = 8
    # How long JetStream waits for an ack before redelivering to another (or the restarted) process.
    ack_wait_seconds: float = 30.0


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
