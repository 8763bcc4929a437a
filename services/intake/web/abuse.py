"""Submissions of the public form per client address (the abuse guard, issue 17): at most `limit` per hour from one
address; more get a clear page and keep their typing. No third-party captcha; with the form's signed token and its
honeypot field, enough against the scripts that fill forms at random.

Memory is bounded: at most `MAX_CLIENTS` addresses are tracked, the least recently seen forgotten first. The count
is per intake process (several instances each count their own): the limit is a brake, not a quota, and a reverse
proxy can add a global one. The client address is the TCP peer's (behind a proxy, configure the proxy to pass it
and to limit).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_CLIENTS = 50_000
WINDOW_SECONDS = 3600.0


class SubmissionLimiter:
    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Whether `client` may submit now; counts the submission when it may."""
        now = self.clock()
        times = self._seen.pop(client, None) or deque()
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        allowed = len(times) < self.limit
        if allowed:
            times.append(now)
        self._seen[client] = times
        while len(self._seen) > MAX_CLIENTS:
            self._seen.popitem(last=False)
        return allowed
