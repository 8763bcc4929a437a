"""Accounts, for administrators: the list (roles, services, language, second factor, single sign-on, disabled, last
login), adding an account (it gets a one-time link to set its password, shown once), changing roles and services,
disabling and enabling, issuing a one-time link again, revoking personal API tokens. Every action is recorded in
the audit trail as "account.<action>" with the account's id (`request.app.state.accounts` is the `AccountStore`).

An administrator cannot disable their own account nor take their own administrator role away: the office would
be left without anyone to manage accounts by a slip of the mouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.mailbox import plain_mailbox
from services.registry.access.accounts import Account, AccountError, AccountStore, StaffSession
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal, Role
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.rendering import BASE_PATH, render
from services.registry.handlers import Registry
from services.registry.vocabulary import LANGUAGES

router = APIRouter()
admin_access = page_require(Permission.MANAGE_ACCOUNTS)
ROLES = tuple(role.value for role in Role)
MAX_NAME = 200
MAX_SERVICES = 50
# A one-time link must not stay in a browser's or a proxy's cache once shown.
NO_STORE = {"Cache-Control": "no-store"}


def _accounts(request: Request) -> AccountStore:
    store: AccountStore = request.app.state.accounts
    return store


def _zone(request: Request) -> ZoneInfo:
    registry: Registry = request.app.state.registry
    return registry.clock.zone


def _services(request: Request, language: str = "fr") -> list[tuple[str, str]]:
    """The services of the screening rules (id, label) when configured: accounts are limited to those."""
    registry: Registry = request.app.state.registry
    screening = registry.policy.screening
    return [(s.id, s.label(language)) for s in screening.services] if screening is not None else []


async def last_logins(store: AccountStore) -> dict[int, datetime]:
    """When each account last logged in (its newest session's start)."""
    async with AsyncSession(store.engine) as session:
        rows = await session.execute(select(StaffSession.account_id, func.max(StaffSession.created_at))
                                     .group_by(StaffSession.account_id))
        return {account_id: at for account_id, at in rows.all() if at is not None}


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("UTC"))
    return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _link(request: Request, secret: str) -> str:
    """The one-time link to hand over: on the configured public address when there is one (never built from the
    request's Host header alone), else on the address this request came to."""
    public = request.app.state.settings.backoffice_public_url
    base = public.rstrip("/") if public else f"{str(request.base_url).rstrip('/')}{BASE_PATH}"
    return f"{base}/welcome/{secret}"


def _chosen_roles(values: Iterable[Any]) -> list[str]:
    return [value for value in (str(v) for v in values) if value in ROLES]


def _chosen_services(request: Request, form: Any) -> list[str] | None:
    """The services picked (from the configured list) or typed (comma-separated when no list is configured);
    None when they cannot be (an unknown service, too many, too long)."""
    offered = {service for service, _ in _services(request)}
    if offered:
        picked = [str(v) for v in form.getlist("services")]
        if any(value not in offered for value in picked):
            return None
    else:
        picked = [part.strip() for part in str(form.get("services_text") or "").split(",")]
    picked = list(dict.fromkeys(value for value in picked if value))
    if len(picked) > MAX_SERVICES or any(len(value) > MAX_NAME for value in picked):
        return None
    return picked


async def _list_page(request: Request, principal: Principal, *, status_code: int = 200, error: str | None = None,
                     form: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                     new_link: dict[str, str] | None = None) -> HTMLResponse:
    store = _accounts(request)
    zone = _zone(request)
    logins = await last_logins(store)
    accounts = [{"account": account, "last_login": _local(logins.get(account.id), zone)}
                for account in await store.list_accounts()]
    return render(request, principal, "admin/users.html", status_code=status_code, nav="admin", accounts=accounts,
                  roles=ROLES, services=_services(request, principal.language), flash=None, error=error,
                  form=form or {}, errors=errors or {}, new_link=new_link, headers=NO_STORE if new_link else None)


@router.get("/admin/users", response_class=HTMLResponse)
async def users(request: Request, principal: Principal = Depends(admin_access)) -> HTMLResponse:
    return await _list_page(request, principal)


@router.post("/admin/users", response_class=HTMLResponse)
async def add_user(request: Request, principal: Principal = Depends(admin_access)) -> HTMLResponse:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    display_name = " ".join(str(form.get("display_name") or "").split())
    language = str(form.get("language") or "")
    roles = _chosen_roles(form.getlist("roles"))
    services = _chosen_services(request, form)
    kept = {"email": email, "display_name": display_name, "language": language, "roles": roles,
            "services": services or [], "services_text": str(form.get("services_text") or "")}
    errors: dict[str, str] = {}
    if not plain_mailbox(email):
        errors["email"] = "admin.error.email"
    if len(display_name) > MAX_NAME:
        errors["display_name"] = "admin.error.too_long"
    if not roles:
        errors["roles"] = "admin.error.roles"
    if language not in LANGUAGES:
        errors["language"] = "admin.error.language"
    if services is None:
        errors["services"] = "admin.error.services"
    if errors:
        return await _list_page(request, principal, status_code=422, error="admin.error.summary", form=kept,
                                errors=errors)
    store = _accounts(request)
    if await store.account_by_email(email) is not None:
        return await _list_page(request, principal, status_code=409, error="admin.error.exists", form=kept,
                                errors={"email": "admin.error.exists"})
    try:
        account_id = await store.create_account(email, roles=roles, display_name=display_name,
                                                services=services or (), language=language)
        secret = await store.issue_one_time_link(account_id, "welcome")
    except AccountError:
        return await _list_page(request, principal, status_code=409, error="admin.error.refused", form=kept)
    await record_access(request, principal, "account.create", details={"account_id": account_id, "roles": roles})
    return await _list_page(request, principal, new_link={"email": email.lower(), "url": _link(request, secret)})


async def _target(request: Request, account_id: int) -> Account | None:
    return await _accounts(request).account(account_id)


async def _detail_page(request: Request, principal: Principal, account: Account, *, status_code: int = 200,
                       flash: str | None = None, error: str | None = None, new_link: str | None = None
                       ) -> HTMLResponse:
    store = _accounts(request)
    zone = _zone(request)
    tokens = [{"token": token, "created": _local(token.created_at, zone), "last_used": _local(token.last_used_at, zone),
               "revoked": _local(token.revoked_at, zone)} for token in await store.api_tokens(account.id)]
    logins = await last_logins(store)
    return render(request, principal, "admin/user.html", status_code=status_code, nav="admin", account=account,
                  tokens=tokens, last_login=_local(logins.get(account.id), zone), roles=ROLES,
                  services=_services(request, principal.language),
                  flash=Translator(principal.language)(flash) if flash else None, error=error, new_link=new_link,
                  is_self=account.id == principal.account_id, headers=NO_STORE if new_link else None)


def _gone(request: Request, principal: Principal) -> HTMLResponse:
    return render(request, principal, "admin/gone.html", flash=None, status_code=404, nav="admin")


@router.get("/admin/users/{account_id}", response_class=HTMLResponse)
async def user(request: Request, account_id: int, principal: Principal = Depends(admin_access)) -> HTMLResponse:
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    return await _detail_page(request, principal, account)


async def _after(request: Request, principal: Principal, account_id: int, flash: str) -> HTMLResponse:
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    return await _detail_page(request, principal, account, flash=flash)


@router.post("/admin/users/{account_id}/roles", response_class=HTMLResponse)
async def change_roles(request: Request, account_id: int, principal: Principal = Depends(admin_access)
                       ) -> HTMLResponse:
    form = await request.form()
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    roles = _chosen_roles(form.getlist("roles"))
    services = _chosen_services(request, form)
    if not roles:
        return await _detail_page(request, principal, account, status_code=422, error="admin.error.roles")
    if services is None:
        return await _detail_page(request, principal, account, status_code=422, error="admin.error.services")
    if account.id == principal.account_id and Role.ADMIN.value not in roles:
        return await _detail_page(request, principal, account, status_code=409, error="admin.error.own_admin")
    store = _accounts(request)
    await store.set_roles(account.id, roles)
    await store.set_services(account.id, services)
    await record_access(request, principal, "account.set_roles",
                        details={"account_id": account.id, "roles": roles, "services": services})
    return await _after(request, principal, account.id, "admin.done.roles")


@router.post("/admin/users/{account_id}/disable", response_class=HTMLResponse)
async def disable(request: Request, account_id: int, principal: Principal = Depends(admin_access)) -> HTMLResponse:
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    if account.id == principal.account_id:
        return await _detail_page(request, principal, account, status_code=409, error="admin.error.own_account")
    if await _accounts(request).disable(account.id):
        await record_access(request, principal, "account.disable", details={"account_id": account.id})
    return await _after(request, principal, account.id, "admin.done.disabled")


@router.post("/admin/users/{account_id}/enable", response_class=HTMLResponse)
async def enable(request: Request, account_id: int, principal: Principal = Depends(admin_access)) -> HTMLResponse:
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    await _accounts(request).enable(account.id)
    await record_access(request, principal, "account.enable", details={"account_id": account.id})
    return await _after(request, principal, account.id, "admin.done.enabled")


@router.post("/admin/users/{account_id}/link", response_class=HTMLResponse)
async def issue_link(request: Request, account_id: int, principal: Principal = Depends(admin_access)
                     ) -> HTMLResponse:
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    if not account.active:
        return await _detail_page(request, principal, account, status_code=409, error="admin.error.disabled")
    secret = await _accounts(request).issue_one_time_link(account.id, "welcome")
    await record_access(request, principal, "account.issue_link", details={"account_id": account.id})
    return await _detail_page(request, principal, account, flash="admin.done.link", new_link=_link(request, secret))


@router.post("/admin/users/{account_id}/tokens/{token_id}/revoke", response_model=None)
async def revoke_token(request: Request, account_id: int, token_id: int,
                       principal: Principal = Depends(admin_access)) -> Response:
    account = await _target(request, account_id)
    if account is None:
        return _gone(request, principal)
    if not await _accounts(request).revoke_api_token(account.id, token_id):
        return await _detail_page(request, principal, account, status_code=409, error="admin.error.token")
    await record_access(request, principal, "account.revoke_token",
                        details={"account_id": account.id, "token_id": token_id})
    return await _after(request, principal, account.id, "admin.done.token_revoked")


@router.get("/admin", include_in_schema=False)
async def admin_home(principal: Principal = Depends(admin_access)) -> RedirectResponse:
    return RedirectResponse(f"{BASE_PATH}/admin/users", status_code=303)
