"""Mounts the back office on the registry's FastAPI application: the static files (htmx, the stylesheet, the
shortcuts) and the routers of `pages/`, under `/backoffice`.

Pages reach the register through `request.app.state.registry` (set by `services.registry.api.create_api`).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from services.registry.backoffice import pages
from services.registry.backoffice.rendering import BASE_PATH

STATIC_DIR = Path(__file__).parent / "static"


def page_routers() -> list[object]:
    """Every `pages/*.py` module's `router`, in name order (a page family is added by adding its module)."""
    routers = []
    for module_info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{pages.__name__}.{module_info.name}")
        router = getattr(module, "router", None)
        if router is not None:
            routers.append(router)
    return routers


def mount_backoffice(api: FastAPI) -> None:
    api.mount(f"{BASE_PATH}/static", StaticFiles(directory=STATIC_DIR), name="backoffice-static")
    for router in page_routers():
        api.include_router(router, prefix=BASE_PATH)  # type: ignore[arg-type]

    @api.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{BASE_PATH}/", status_code=303)
