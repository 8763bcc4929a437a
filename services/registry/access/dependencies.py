"""FastAPI dependencies shared by the JSON API and the back-office pages: who is asking, may they, is the form ours.

Contract (the pages and the API rely on these names; tests replace `api_principal` / `page_principal` through
`app.dependency_overrides`):

- `api_principal(request) -> Principal`: a personal API token (`Authorization: Bearer ...`) or a session cookie
  (`ombudsdesk_session`); 401 JSON `{"error": "unauthenticated", ...}` otherwise (a disabled account, a revoked or
  expired session or token included);
- `page_principal(request) -> Principal`: a session cookie; a redirect (303) to the login page otherwise, with the
  page asked for in `next`;
- `require(permission)` / `page_require(permission)`: the same, then 403 when the permission table refuses;
- `csrf_token(request) -> str`: the token every form and htmx request of the session sends back;
- `same_origin(request)`: for the forms posted without a session (login, set password): refuses cross-site posts.

A state-changing request authenticated by the session cookie must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`, compared in constant time) and must not come from another site (Sec-Fetch-Site,
Origin, Referer: `guards.cross_site_reason`); a bearer token is never sent by a browser on its own, so it needs none.
`install_access_handlers(app)` turns the refusals into JSON for the API and into a redirect or a page for people.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.registry.access.accounts import AccountStore, SessionIdentity
from services.registry.access.guards import SAFE_METHODS, cross_site_reason
from services.registry.access.roles import Permission, Principal
from services.registry.access.tokens import same_secret

SESSION_COOKIE = "ombudsdesk_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/backoffice/login"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class AccessRefused(Exception):
    """A request refused for who sent it (401/403), answered as JSON to the API, as a page to people."""

    def __init__(self, status: int, error: str, message: str, *, page: bool) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.page = status, error, message, page


class LoginRequired(Exception):
    """A page asked without a (live) session: the login page, then back to `next`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _accounts(request: Request) -> AccountStore:
    return request.app.state.accounts


def public_urls(request: Request) -> tuple[str, ...]:
    settings = getattr(request.app.state, "settings", None)
    url = getattr(settings, "backoffice_public_url", "") if settings is not None else ""
    return (url,) if url else ()


async def session_identity(request: Request) -> SessionIdentity | None:
    """The live session of the request's cookie (looked up once per request), and its CSRF token for rendering."""
    if hasattr(request.state, "session_identity"):
        return request.state.session_identity  # type: ignore[no-any-return]
    secret = request.cookies.get(SESSION_COOKIE)
    identity = await _accounts(request).session_identity(secret) if secret else None
    request.state.session_identity = identity
    if identity is not None:
        request.state.csrf_token = identity.csrf_token
    return identity


def refuse_cross_site(request: Request, *, page: bool) -> None:
    if request.method in SAFE_METHODS:
        return
    reason = cross_site_reason(request.headers, request.headers.get("host", ""), request.url.scheme,
                               public_urls(request))
    if reason is not None:
        raise AccessRefused(403, "cross_site", f"refused: a request from another site ({reason})", page=page)


async def _check_session_request(request: Request, identity: SessionIdentity, *, page: bool) -> None:
    """A state change through the session cookie: same site, and the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    refuse_cross_site(request, page=page)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").split(";")[0].strip().lower() in FORM_TYPES:
        value = (await request.form()).get(CSRF_FIELD)  # Starlette keeps the parsed form for the handler
        given = value if isinstance(value, str) else None
    if not same_secret(given, identity.csrf_token):
        raise AccessRefused(403, "csrf", "refused: the form's security token is missing or wrong (reload the page)",
                            page=page)


def _unauthenticated(message: str) -> AccessRefused:
    return AccessRefused(401, "unauthenticated", message, page=False)


async def api_principal(request: Request) -> Principal:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthenticated("use Authorization: Bearer <personal API token>")
        principal = await _accounts(request).token_principal(credentials.strip())
        if principal is None:
            raise _unauthenticated("this API token is unknown, revoked, or its account disabled")
        return principal
    identity = await session_identity(request)
    if identity is None:
        raise _unauthenticated("a session or a personal API token (ombudsdesk users token EMAIL) is required")
    await _check_session_request(request, identity, page=False)
    return identity.principal


async def page_principal(request: Request) -> Principal:
    identity = await session_identity(request)
    if identity is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method in SAFE_METHODS else "/backoffice/")
    await _check_session_request(request, identity, page=True)
    return identity.principal


async def same_origin(request: Request) -> None:
    """For forms posted without a session (login, set password): a cross-site post is refused (login CSRF)."""
    refuse_cross_site(request, page=True)


def _requiring(base: Callable[[Request], Awaitable[Principal]],
               permission: Permission, *, page: bool) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Principal = Depends(base)) -> Principal:
        if not principal.can(permission):
            raise AccessRefused(403, "forbidden", f"permission {permission.value} required", page=page)
        return principal
    return dependency


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    return _requiring(api_principal, permission, page=False)


def page_require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    return _requiring(page_principal, permission, page=True)


def csrf_token(request: Request) -> str:
    return getattr(request.state, "csrf_token", "")


def login_redirect(next_path: str) -> str:
    return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}"


def install_access_handlers(app: FastAPI) -> None:
    """The answers to `AccessRefused` and `LoginRequired` (JSON to the API, pages and redirects to people)."""

    @app.exception_handler(AccessRefused)
    async def _refused(request: Request, error: AccessRefused) -> Response:
        if not error.page:
            headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
            return JSONResponse({"error": error.error, "message": error.message}, status_code=error.status,
                                headers=headers)
        from services.registry.backoffice.rendering import render  # the pages import this module

        identity = getattr(request.state, "session_identity", None)
        return render(request, identity.principal if identity is not None else None, "account/refused.html",
                      status_code=error.status, error=error.error, flash=None, nav="")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, error: LoginRequired) -> Response:
        target = login_redirect(error.next_path)
        if request.headers.get("HX-Request") == "true":
            # htmx would swap the login page into a fragment: have it load the page whole instead.
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def request_details(request: Request) -> dict[str, Any]:
    return {"ip": client_ip(request), "user_agent": request.headers.get("user-agent", "")[:300]}
