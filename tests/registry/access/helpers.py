"""Signed-in clients for the tests of the API and the back office (used by every helper's tests).

- `signed_in_client(app, store, roles=...)`: an httpx client on the ASGI app with a real session cookie and its CSRF
  token in `X-CSRF-Token` (as the back office's htmx requests send it); `client.csrf_token` for form fields;
- `token_headers(store, roles=...)`: `Authorization: Bearer` headers of a real personal API token;
- `api_client(registry, roles=...)`: the registry's API (`create_api`) with a token client, for tests of the JSON API;
- `token_headers_for_database(database_url, ...)`: a token straight in a registry database (for running services).

Accounts are created in the real account tables (SQLite or PostgreSQL, whichever the test runs on); a second call
with the same email reuses the account (its roles replaced).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from services.registry.access.accounts import AccountStore
from services.registry.access.dependencies import SESSION_COOKIE

BASE_URL = "http://localhost"


async def _account(store: AccountStore, email: str, roles: Iterable[str], services: Iterable[str],
                   language: str) -> int:
    existing = await store.account_by_email(email)
    if existing is not None:
        await store.set_roles(existing.id, list(roles))
        await store.set_services(existing.id, list(services))
        return existing.id
    return await store.create_account(email, roles=list(roles), services=list(services), language=language,
                                      display_name=email.split("@")[0])


async def signed_in_client(app: Any, store: AccountStore, *, roles: Iterable[str], services: Iterable[str] = (),
                           email: str = "agent@med.be", language: str = "fr",
                           base_url: str = BASE_URL) -> httpx.AsyncClient:
    account_id = await _account(store, email, roles, services, language)
    secret = await store.issue_session(account_id, ip="127.0.0.1", user_agent="tests")
    identity = await store.session_identity(secret)
    assert identity is not None
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url,
                               headers={"X-CSRF-Token": identity.csrf_token})
    client.cookies.set(SESSION_COOKIE, secret)
    client.csrf_token = identity.csrf_token  # type: ignore[attr-defined]
    client.account_id = account_id  # type: ignore[attr-defined]
    client.session_secret = secret  # type: ignore[attr-defined]
    return client


async def token_headers(store: AccountStore, *, roles: Iterable[str], services: Iterable[str] = (),
                        email: str = "script@med.be", language: str = "fr") -> dict[str, str]:
    account_id = await _account(store, email, roles, services, language)
    return {"Authorization": f"Bearer {await store.issue_api_token(account_id, 'tests')}"}


async def api_client(registry: Any, *, roles: Iterable[str] = ("supervisor",), services: Iterable[str] = (),
                     email: str = "agent@med.be") -> httpx.AsyncClient:
    """The registry's JSON API on its own database, with a personal token of an account of these roles."""
    from services.registry.api import create_api

    app = create_api(registry)
    headers = await token_headers(app.state.accounts, roles=roles, services=services, email=email)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers)


async def token_headers_for_database(database_url: str, *, roles: Iterable[str] = ("supervisor",),
                                     email: str = "agent@med.be") -> dict[str, str]:
    """A token of a new (or reused) account straight in a registry database that is migrated already."""
    from shared.database import create_engine

    engine = create_engine(database_url)
    try:
        return await token_headers(AccountStore(engine), roles=roles, email=email)
    finally:
        await engine.dispose()
