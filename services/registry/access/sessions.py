"""The session cookie `ombudsdesk_session`: opaque (a random secret; the database keeps its digest), HttpOnly (no
script reads it), SameSite=Lax (not sent with cross-site posts), Secure whenever the back office is reached over
https (`OMBUDSDESK_SESSION_COOKIE_SECURE=auto`), valid for the whole server (`/`: the JSON API accepts it too).
"""

from __future__ import annotations

from fastapi import Request, Response

from services.registry.access.dependencies import SESSION_COOKIE, client_ip
from services.registry.access.accounts import AccountStore


def cookie_secure(request: Request) -> bool:
    settings = getattr(request.app.state, "settings", None)
    choice = getattr(settings, "session_cookie_secure", "auto")
    if choice != "auto":
        return choice == "true"
    public = getattr(settings, "backoffice_public_url", "") or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    # No Max-Age: the cookie goes with the browser; the server ends the session anyway (idle and absolute limits).
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax", secure=cookie_secure(request),
                        path="/")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=cookie_secure(request), path="/")


async def open_session(response: Response, request: Request, account_id: int) -> None:
    """Log the account in on this browser: a new session (any previous cookie of this browser is replaced)."""
    accounts: AccountStore = request.app.state.accounts
    secret = await accounts.issue_session(account_id, ip=client_ip(request),
                                          user_agent=request.headers.get("user-agent", ""))
    set_session_cookie(response, request, secret)
