"""Logging in and out, and one's own account: the login form (email, password, a TOTP code when the second factor is
on, the single sign-on button when configured, the throttling message), logout, the one-time link that sets a
password (`/welcome/{secret}`, printed by `ombudsdesk users add|link` and by `make run` on a first start), the
account page (language, password, second factor with its QR code, own API tokens), and the OpenID Connect login.

Forms posted without a session (login, set password) are refused when they come from another site
(`dependencies.same_origin`); the others carry the session's CSRF token (`dependencies.page_principal`). A new
session is opened on every login (no session fixation), and every session of the account ends when its password
changes. Logins, failed logins and logouts go to the audit trail; a failed login names the account when the email
is one, else "unknown" (what a stranger typed — perhaps a password in the wrong field — is not kept).

For an account whose second factor is on, the one-time link asks for a current code too (a link alone — an
administrator's, a mailbox's — does not log in past the factor), and replacing the factor asks for a code of the one
in place as well as of the new one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.registry.access import totp
from services.registry.access.accounts import Account, AccountStore
from services.registry.access.audit import record_access, record_request
from services.registry.access.dependencies import client_ip, page_principal, same_origin, session_identity
from services.registry.access.guards import safe_next
from services.registry.access.oidc import COOKIE as OIDC_COOKIE
from services.registry.access.oidc import FLOW_SECONDS, OidcClient, SsoError
from services.registry.access.passwords import MAX_LENGTH, MIN_LENGTH, password_problem
from services.registry.access.roles import Principal
from services.registry.access.sessions import clear_session_cookie, cookie_secure, open_session
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.rendering import BASE_PATH, render
from services.registry.vocabulary import LANGUAGES
from shared.logging import get_logger

router = APIRouter()
log = get_logger(__name__)

HOME = f"{BASE_PATH}/"
LANGUAGE_COOKIE = "ombudsdesk_lang"
# Pages holding a secret in their URL or a form about secrets: never cached, never named in a Referer.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
# Messages the account page shows after a change (`?done=`): only these keys, never text from the URL.
DONE = {"language": "account.done.language", "password": "account.done.password", "totp_on": "account.done.totp_on",
        "totp_off": "account.done.totp_off", "token": "account.done.token_revoked"}
WELCOME_CODE_ERRORS = {"code_required": "account.welcome.code_required", "invalid": "account.totp.wrong_code"}
# The actor of a failed login whose email is no account's.
UNKNOWN_ACTOR = "unknown"
LOGIN_ERRORS = {"invalid": "account.login.invalid", "code_required": "account.login.code_required",
                "throttled": "account.login.throttled"}


def _accounts(request: Request) -> AccountStore:
    return request.app.state.accounts


def _oidc(request: Request) -> OidcClient | None:
    return getattr(request.app.state, "oidc", None)


def _page(request: Request, principal: Principal | None, template: str, **context: Any) -> HTMLResponse:
    """`render` with what the base template reads (`flash`, `nav`) given a value when the page has none."""
    context.setdefault("flash", None)
    context.setdefault("nav", "")
    return render(request, principal, template, **context)


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


@router.get("/", include_in_schema=False)
async def index() -> RedirectResponse:
    return _redirect(f"{BASE_PATH}/register")


# --- login and logout ------------------------------------------------------------------------------------------------
def _login_page(request: Request, *, next_path: str, status_code: int = 200, error: str | None = None,
                email: str = "", params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
                ) -> HTMLResponse:
    oidc = _oidc(request)
    return _page(request, None, "account/login.html", status_code=status_code, next_path=next_path, error=error,
                  error_params=params or {}, email=email, sso=oidc is not None,
                  sso_label=oidc.button_label if oidc is not None else "", headers={**PRIVATE, **(headers or {})})


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "", lang: str = "") -> Response:
    next_path = safe_next(next, BASE_PATH, HOME)
    if await session_identity(request) is not None and not lang:
        return _redirect(next_path)
    if lang in LANGUAGES:
        # `render` takes an anonymous page's language from the cookie: this answer is already in the one chosen.
        request.cookies[LANGUAGE_COOKIE] = lang
        response = _login_page(request, next_path=next_path)
        response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True,
                            secure=cookie_secure(request))
        return response
    return _login_page(request, next_path=next_path)


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
async def login(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")
    code = str(form.get("code") or "")[:16]
    next_path = safe_next(str(form.get("next") or ""), BASE_PATH, HOME)
    accounts = _accounts(request)
    outcome = await accounts.login(email, password, code=code, ip=client_ip(request))
    if outcome.result != "ok" or outcome.account_id is None:
        if outcome.result == "throttled":
            # Recorded by the account store (login_failures) and logged, not in the audit trail: a flood of refused
            # attempts must not be able to flood the trail too.
            minutes = max(1, -(-outcome.retry_after // 60))
            return _login_page(request, next_path=next_path, status_code=429, error=LOGIN_ERRORS["throttled"],
                               params={"minutes": minutes}, email=email,
                               headers={"Retry-After": str(outcome.retry_after)})
        await _record_failed_login(request, outcome.account_id, outcome.result)
        return _login_page(request, next_path=next_path, status_code=401, error=LOGIN_ERRORS[outcome.result],
                           email=email)
    return await _logged_in(request, outcome.account_id, next_path, "password")


async def _record_failed_login(request: Request, account_id: int | None, result: str) -> None:
    account = await _accounts(request).account(account_id) if account_id is not None else None
    if account is None:
        await record_request(request, "login.failed", actor=UNKNOWN_ACTOR, details={"result": result})
    else:
        await record_request(request, "login.failed", actor=account.email, account_id=account.id,
                             roles=account.roles, details={"result": result})


async def _logged_in(request: Request, account_id: int, next_path: str, method: str) -> Response:
    """Open a fresh session (ending the one this browser may still hold) and go where the person was going."""
    previous = await session_identity(request)
    if previous is not None and previous.principal.session_id is not None:
        await _accounts(request).revoke_session(previous.principal.session_id)
    response = _redirect(next_path)
    await open_session(response, request, account_id)
    account = await _accounts(request).account(account_id)
    if account is not None:
        principal = account.principal()
        await record_access(request, principal, "login", details={"method": method})
    return response


@router.post("/logout")
async def logout(request: Request, principal: Principal = Depends(page_principal)) -> Response:
    if principal.session_id is not None:
        await _accounts(request).revoke_session(principal.session_id)
    await record_access(request, principal, "logout")
    response = _redirect(f"{BASE_PATH}/login")
    clear_session_cookie(response, request)
    return response


# --- one-time links ------------------------------------------------------------------------------------------------
def _welcome_page(request: Request, secret: str, account: Account, *, status_code: int = 200, error: str | None = None,
                  minutes: int = 0, headers: dict[str, str] | None = None) -> HTMLResponse:
    request.cookies.setdefault(LANGUAGE_COOKIE, account.language)  # the page in the language the account was given
    return _page(request, None, "account/welcome.html", status_code=status_code, secret=secret, email=account.email,
                 totp=account.totp_enabled, error=error, minutes=minutes, min_length=MIN_LENGTH,
                 max_length=MAX_LENGTH, headers={**PRIVATE, **(headers or {})})


@router.get("/welcome/{secret}", response_class=HTMLResponse)
async def welcome_form(request: Request, secret: str) -> HTMLResponse:
    account = await _accounts(request).link_account(secret)
    if account is None:
        return _page(request, None, "account/link_invalid.html", status_code=410, headers=PRIVATE)
    return _welcome_page(request, secret, account)


@router.post("/welcome/{secret}", response_class=HTMLResponse, dependencies=[Depends(same_origin)])
async def welcome(request: Request, secret: str) -> Response:
    accounts = _accounts(request)
    form = await request.form()
    password, confirmation = str(form.get("password") or ""), str(form.get("confirmation") or "")
    code = str(form.get("code") or "")[:16]
    account = await accounts.link_account(secret)
    if account is None:
        return _page(request, None, "account/link_invalid.html", status_code=410, headers=PRIVATE)
    problem = password_problem(password, account.email, confirmation)
    if problem is not None:
        return _welcome_page(request, secret, account, status_code=422, error=problem)
    outcome = await accounts.use_link_to_set_password(secret, password, code=code, ip=client_ip(request))
    if outcome is None:  # used by another request a moment ago, or expired meanwhile
        return _page(request, None, "account/link_invalid.html", status_code=410, headers=PRIVATE)
    if outcome.result == "throttled":
        return _welcome_page(request, secret, account, status_code=429, error=LOGIN_ERRORS["throttled"],
                             minutes=max(1, -(-outcome.retry_after // 60)),
                             headers={"Retry-After": str(outcome.retry_after)})
    if outcome.result != "ok" or outcome.account_id is None:
        if outcome.result == "invalid":
            await _record_failed_login(request, account.id, "link_code_invalid")
        return _welcome_page(request, secret, account, status_code=422, error=WELCOME_CODE_ERRORS[outcome.result])
    await record_access(request, account.principal(), "account.set_password", details={"via": "link"})
    return await _logged_in(request, outcome.account_id, HOME, "link")


# --- one's own account ---------------------------------------------------------------------------------------------
async def _account_page(request: Request, principal: Principal, *, status_code: int = 200, error: str | None = None,
                        section: str = "", flash: str | None = None) -> HTMLResponse:
    accounts = _accounts(request)
    account = await accounts.account(principal.account_id)
    assert account is not None  # the session was just checked against it
    pending = await accounts.pending_totp(account.id)  # a first factor, or the replacement of the one in place
    setup = None
    if pending is not None:
        uri = totp.provisioning_uri(pending, account.email)
        setup = {"uri": uri, "secret": pending, "qr": totp.qr_svg(uri)}
    return _page(request, principal, "account/account.html", status_code=status_code, account=account,
                  tokens=await accounts.api_tokens(account.id), setup=setup, error=error, section=section,
                  flash=flash, min_length=MIN_LENGTH, max_length=MAX_LENGTH, headers=PRIVATE)


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, done: str = "",
                       principal: Principal = Depends(page_principal)) -> HTMLResponse:
    flash = Translator(principal.language)(DONE[done]) if done in DONE else None
    return await _account_page(request, principal, flash=flash)


def _done(what: str) -> RedirectResponse:
    return _redirect(f"{BASE_PATH}/account?done={what}")


@router.post("/account/language")
async def change_language(request: Request, principal: Principal = Depends(page_principal)) -> Response:
    language = str((await request.form()).get("language") or "")
    if language not in LANGUAGES:
        return await _account_page(request, principal, status_code=422, error="account.language.invalid",
                                   section="language")
    await _accounts(request).set_language(principal.account_id, language)
    return _done("language")


@router.post("/account/password")
async def change_password(request: Request, principal: Principal = Depends(page_principal)) -> Response:
    accounts = _accounts(request)
    form = await request.form()
    current, new = str(form.get("current") or ""), str(form.get("password") or "")
    account = await accounts.account(principal.account_id)
    assert account is not None
    if account.has_password and not await accounts.check_password(account.id, current):
        return await _account_page(request, principal, status_code=422, error="account.password.wrong_current",
                                   section="password")
    problem = password_problem(new, account.email, str(form.get("confirmation") or ""))
    if problem is not None:
        return await _account_page(request, principal, status_code=422, error=problem, section="password")
    await accounts.set_password(account.id, new)  # ends every session, this one included ...
    await record_access(request, principal, "account.change_password")
    response = _done("password")
    await open_session(response, request, account.id)  # ... and this browser goes on in a new one
    return response


@router.post("/account/totp/start")
async def totp_start(request: Request, principal: Principal = Depends(page_principal)) -> Response:
    # Also while a factor is on: the new one replaces it only once confirmed with a code of each (`totp_confirm`).
    await _accounts(request).start_totp(principal.account_id)
    return _redirect(f"{BASE_PATH}/account#totp")


@router.post("/account/totp/confirm")
async def totp_confirm(request: Request, principal: Principal = Depends(page_principal)) -> Response:
    form = await request.form()
    code, current = str(form.get("code") or "")[:16], str(form.get("current_code") or "")[:16]
    accounts = _accounts(request)
    account = await accounts.account(principal.account_id)
    replacing = account is not None and account.totp_enabled
    if not await accounts.confirm_totp(principal.account_id, code, current, ip=client_ip(request)):
        return await _account_page(request, principal, status_code=422, error="account.totp.wrong_code",
                                   section="totp")
    await record_access(request, principal, "account.totp_replace" if replacing else "account.totp_enable")
    return _done("totp_on")


@router.post("/account/totp/disable")
async def totp_disable(request: Request, principal: Principal = Depends(page_principal)) -> Response:
    code = str((await request.form()).get("code") or "")[:16]
    if not await _accounts(request).disable_totp(principal.account_id, code, ip=client_ip(request)):
        return await _account_page(request, principal, status_code=422, error="account.totp.wrong_code",
                                   section="totp_off")
    await record_access(request, principal, "account.totp_disable")
    return _done("totp_off")


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, principal: Principal = Depends(page_principal)) -> Response:
    if not await _accounts(request).revoke_api_token(principal.account_id, token_id):
        return await _account_page(request, principal, status_code=404, error="account.tokens.unknown",
                                   section="tokens")
    await record_access(request, principal, "account.revoke_token", details={"token_id": token_id})
    return _done("token")


# --- single sign-on ------------------------------------------------------------------------------------------------
def _callback_url(request: Request) -> str:
    public = getattr(request.app.state.settings, "backoffice_public_url", "")
    return (public or f"{str(request.base_url).rstrip('/')}{BASE_PATH}/") + "oidc/callback"


def _sso_failed(request: Request, error: str, status_code: int) -> HTMLResponse:
    response = _login_page(request, next_path=HOME, status_code=status_code, error=error)
    response.delete_cookie(OIDC_COOKIE, path=f"{BASE_PATH}/oidc", secure=cookie_secure(request), httponly=True,
                           samesite="lax")
    return response


@router.get("/oidc/login")
async def oidc_login(request: Request, next: str = "") -> Response:
    oidc = _oidc(request)
    if oidc is None:
        return _login_page(request, next_path=HOME, status_code=404, error="account.sso.not_configured")
    try:
        url, flow = await oidc.begin(_callback_url(request), safe_next(next, BASE_PATH, HOME))
    except SsoError as error:
        log.warning("sso.unavailable", reason=error.reason)
        return _sso_failed(request, "account.sso.unavailable", 502)
    response = _redirect(url)
    # SameSite=Lax: the provider sends the browser back with a top-level GET, which carries it.
    response.set_cookie(OIDC_COOKIE, flow, max_age=FLOW_SECONDS, path=f"{BASE_PATH}/oidc", httponly=True,
                        samesite="lax", secure=cookie_secure(request))
    return response


@router.get("/oidc/callback")
async def oidc_callback(request: Request) -> Response:
    oidc = _oidc(request)
    if oidc is None:
        return _login_page(request, next_path=HOME, status_code=404, error="account.sso.not_configured")
    try:
        identity = await oidc.finish(_callback_url(request), dict(request.query_params),
                                     request.cookies.get(OIDC_COOKIE))
    except SsoError as error:
        log.warning("sso.refused", reason=error.reason)
        await record_request(request, "login.failed", actor="-", details={"result": "sso_refused"})
        return _sso_failed(request, "account.sso.failed", 401)
    account = await _accounts(request).account_for_sso(identity.issuer, identity.subject, identity.email,
                                                       identity.email_verified)
    if account is None:
        log.warning("sso.no_account")
        await record_request(request, "login.failed", actor=UNKNOWN_ACTOR, details={"result": "sso_no_account"})
        return _sso_failed(request, "account.sso.no_account", 403)
    response = await _logged_in(request, account.id, safe_next(identity.next_path, BASE_PATH, HOME), "sso")
    response.delete_cookie(OIDC_COOKIE, path=f"{BASE_PATH}/oidc", secure=cookie_secure(request), httponly=True,
                           samesite="lax")
    return response

