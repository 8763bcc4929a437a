"""The audit trail: who read, downloaded, exported or changed what, when, from where and why.

PLACEHOLDER until the audit work lands: `record_access` records nothing yet. Contract: see the module that replaces it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.registry.access.roles import Principal


async def record_access(request: Request, principal: Principal, action: str, *, number: str | None = None,
                        reason: str | None = None, details: dict[str, Any] | None = None) -> None:
    return None
