"""FastAPI dependencies shared by the JSON API and the back-office pages: who is asking, may they, is the form ours.

Contract (the pages and the API rely on these names; tests replace `api_principal` / `page_principal` through
`app.dependency_overrides`):

- `api_principal(request) -> Principal`: a session cookie or a personal API token (`Authorization: Bearer ...`);
  401 JSON otherwise;
- `page_principal(request) -> Principal`: a session cookie; a redirect (303) to the login page otherwise;
- `require(permission)` / `page_require(permission)`: the same, then 403 when the permission table refuses;
- `csrf_token(request) -> str`: the token every form and htmx request of the session sends back.

PLACEHOLDER until the identity work lands: refuses everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request

from services.registry.access.roles import Permission, Principal


async def api_principal(request: Request) -> Principal:
    raise HTTPException(status_code=401, detail="authentication required")


async def page_principal(request: Request) -> Principal:
    raise HTTPException(status_code=401, detail="authentication required")


def _requiring(base: Callable[[Request], Awaitable[Principal]],
               permission: Permission) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Principal = Depends(base)) -> Principal:
        if not principal.can(permission):
            raise HTTPException(status_code=403, detail=f"permission {permission.value} required")
        return principal
    return dependency


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    return _requiring(api_principal, permission)


def page_require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    return _requiring(page_principal, permission)


def csrf_token(request: Request) -> str:
    return getattr(request.state, "csrf_token", "")
