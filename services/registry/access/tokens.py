"""The random secrets of staff identity and what the database keeps of them (pure, no I/O).

Session cookies, personal API tokens and one-time links are 256-bit random values shown once; the database keeps
only their SHA-256 (a stolen database opens no session). A session's CSRF token is derived from its cookie value,
so it needs no storage and changes with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Personal API tokens start with this, so that a token pasted where it should not be is recognisable.
API_TOKEN_PREFIX = "odk_"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database stores and looks up: a random 256-bit value needs no salt nor slow hash."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_for(session_secret: str) -> str:
    return hmac.new(session_secret.encode("utf-8", "surrogatepass"), b"ombudsdesk csrf", hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison (the time taken does not tell how much of a guess was right)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
