"""Login throttling (pure, no I/O): after `limit` failed logins within `window`, the next are refused until the
oldest of them leaves the window.

The failures themselves are rows of `login_failures` (`accounts.AccountStore`), counted per account and per IP
address, so that every process of the registry refuses alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta


def retry_after(failures: Sequence[datetime], *, limit: int, window: timedelta, now: datetime) -> int | None:
    """Seconds until one more attempt is allowed (at least 1), or None when it is allowed now.

    `failures`: when the recent failures happened (any order; older ones than the window are ignored).
    """
    recent = sorted(at for at in failures if now - at < window)
    if len(recent) < limit:
        return None
    # Attempts are allowed again once the count in the window falls below the limit.
    freed_at = recent[len(recent) - limit] + window
    return max(1, math.ceil((freed_at - now).total_seconds()))
