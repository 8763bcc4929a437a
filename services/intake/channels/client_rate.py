"""How many messages one sending client sent within the last hour (pure, no I/O): beyond the setting
`ack_rate_per_client_per_hour`, its messages are still taken in and registered, but not acknowledged automatically,
so that intake cannot be used to mail-bomb a third party whose address a sender writes in `From`.

The count lives in this process (a sliding window of arrival times per client IP, memory bounded by the limit per
client and by `max_clients`): a restart forgets it, and several intake processes each count their own share. That is
acceptable for its purpose: a flood large enough to matter stays above the limit in every process.
"""

from __future__ import annotations

from collections import OrderedDict, deque

SUPPRESSED_REASON = "rate limit: sending client"
WINDOW_SECONDS = 3600.0


class ClientRate:
    def __init__(self, per_hour: int, *, window_seconds: float = WINDOW_SECONDS, max_clients: int = 100_000) -> None:
        self.per_hour = per_hour
        self.window = window_seconds
        self.max_clients = max_clients
        self._arrivals: OrderedDict[str, deque[float]] = OrderedDict()

    def record(self, client: str | None, now: float) -> str | None:
        """Count one message from `client` at `now` (seconds); the suppression reason when it is over the limit."""
        if not client:
            return None
        arrivals = self._arrivals.pop(client, None)
        if arrivals is None:
            arrivals = deque(maxlen=self.per_hour + 1)
        while arrivals and arrivals[0] <= now - self.window:
            arrivals.popleft()
        arrivals.append(now)
        self._arrivals[client] = arrivals  # most recent last
        while len(self._arrivals) > self.max_clients:
            self._arrivals.popitem(last=False)  # the client heard from least recently
        return SUPPRESSED_REASON if len(arrivals) > self.per_hour else None
