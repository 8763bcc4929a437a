"""The SMTP front door's limits (pure, no I/O): what is counted and the answer each limit gives.

Every refusal carries its RFC 5321 reply code, an RFC 3463 enhanced status code and a text naming the limit, so that
the sending server's bounce tells a citizen's mail administrator what happened:

- command lines: 512 octets (RFC 5321 4.5.3.1.4), "500 5.5.2"; the data lines have their own limit;
- connections at once, overall and per client IP address: "421 4.7.0 Too many connections" (RFC 5321 3.8, 4.2.5);
- recipients per message: 100 must be accepted (RFC 5321 4.5.3.1.8), the next get "452 4.5.3" (RFC 5321 4.5.3.1.10);
- commands per session and the session's whole life: "421 4.7.0", then the connection is closed. aiosmtpd's idle
  timeout restarts at every command, so without these a client sending NOOP every few minutes holds a connection
  (and a place among the connections) for ever;
- message size: "552 5.3.4 Message too big for this system" (RFC 1870, RFC 3463 5.3.4).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MEGABYTE = 1024 * 1024
# RFC 5321 4.5.3.1.4: a command line, CRLF included.
COMMAND_LINE_OCTETS = 512
# What the reader may buffer of one line outside DATA: AUTH lines may be up to 12288 octets (RFC 4954 4).
COMMAND_READ_LIMIT = 12288 + 2


@dataclass(frozen=True)
class SmtpLimits:
    max_message_bytes: int
    max_connections: int = 200
    max_connections_per_client: int = 20
    max_recipients: int = 100
    max_commands: int = 2000
    max_session_seconds: float = 1800.0

    def too_many_connections(self) -> str:
        return "421 4.7.0 Too many connections, try again later"

    def too_many_recipients(self) -> str:
        return f"452 4.5.3 Too many recipients, max {self.max_recipients} per message"

    def too_many_commands(self) -> str:
        return f"421 4.7.0 Too many commands in one session, max {self.max_commands}, closing"

    def session_too_long(self) -> str:
        return f"421 4.7.0 Session too long, max {self.max_session_seconds:g} s, closing"

    def message_too_big(self) -> str:
        size = self.max_message_bytes / MEGABYTE
        return f"552 5.3.4 Message too big for this system, max {size:g} MB"

    @staticmethod
    def line_too_long() -> str:
        return f"500 5.5.2 Line too long, max {COMMAND_LINE_OCTETS} octets"


@dataclass
class ConnectionCounter:
    """Connections open now, overall and per client address (one per listener, on the event loop's thread)."""

    limits: SmtpLimits
    per_client: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def admit(self, client: str) -> bool:
        """Count the connection in and return True, or return False (nothing counted) when a limit is reached."""
        if self.total >= self.limits.max_connections or \
                self.per_client[client] >= self.limits.max_connections_per_client:
            return False
        self.total += 1
        self.per_client[client] += 1
        return True

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]
