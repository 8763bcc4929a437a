"""One structlog configuration for every service: readable in a terminal, JSON in production, secrets redacted.

Handlers bind `complaint_number` and `message_id` with `structlog.contextvars.bound_contextvars` so that every
line written while a message is being processed carries them.

The correlation id of one complaint across the three services is its `message_key` (a digest, never personal data):
intake binds it while the message goes through its pipeline (with the SMTP session's `spool_id`), the registry
while it registers the message (its line names the `complaint_number` given), the notifier while it records the
acknowledgment; later notices carry the `complaint_number` (docs/operations.md, "Following one complaint").
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
from typing import Any

import structlog

_SECRET_MARKERS = ("password", "secret", "token", "credential", "authorization")
REDACTED = "[redacted]"


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Never let a secret reach a log line, whatever a caller bound."""
    for key in event_dict:
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event_dict[key] = REDACTED
    return event_dict


def redact_url(url: str) -> str:
    """A URL fit for a log line: any `user:password@` part replaced (several URLs may be comma-separated)."""
    return ",".join(re.sub(r"//[^/@]*@", "//[redacted]@", part) for part in url.split(","))


def configure_logging(level: str = "INFO", log_format: str = "console", service: str | None = None) -> None:
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        shared_processors.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared_processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    # Libraries (FastStream, aiosmtpd, SQLAlchemy) log through the standard library: keep their warnings only.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


# Keyed per process: a plain hash of an address can be reversed by hashing a list of known addresses.
_DIGEST_KEY = secrets.token_bytes(32)


def log_digest(value: str | None) -> str | None:
    """A short stand-in for personal data (an address, a login, an IP) in a log line: within one process the same
    value always gives the same 12 hex digits, so repeats can be told apart, but the value itself is neither written
    nor recoverable (an HMAC under a key that lives only in the process's memory; issue 10)."""
    if value is None:
        return None
    normalised = value.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.new(_DIGEST_KEY, normalised, hashlib.sha256).hexdigest()[:12]
