"""Who may read a file, and why (pure but for the key kept on the application).

- `may_see`: the file is within the person's visibility (`Principal.may_see`: data-protection files for a DPO only,
  ordinary ones within their services);
- `is_handler`: whether the person is the file's handler (stored as the account's email); `access.audit.reason_required`
  decides when a reason is asked (everyone but the handler);
- the reason marker: anyone else states a reason before reading (issue 13: "for a read by someone who is not the
  handler, a reason is asked"). It is asked once per file and session, not at every click: the reason is kept in a
  cookie scoped to the file's own path (`/backoffice/files/<number>`, so no other page receives it), signed with a
  key of the running process (HMAC-SHA256), bound to the account and its session (useless after logout or to
  anyone else), and valid for `READ_MARKER_HOURS` at most. Every later read of that file within it is audited with
  the same reason; a restart of the registry (new key) asks again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from fastapi import Request, Response

from services.registry.access.roles import Principal
from services.registry.backoffice.rendering import BASE_PATH

READ_COOKIE = "ombudsdesk_read"
READ_MARKER_HOURS = 8  # a working day
REASON_MAX_CHARS = 500


def _now() -> float:
    return time.time()


def may_see(principal: Principal, complaint: Any) -> bool:
    return principal.may_see(data_protection=bool(getattr(complaint, "data_protection", False)),
                             service=complaint.service_concerned)


def is_handler(principal: Principal, complaint: Any) -> bool:
    handler = (complaint.handler or "").strip().lower()
    return bool(handler) and handler == principal.email.strip().lower()


def file_path(number: str) -> str:
    return f"{BASE_PATH}/files/{number}"


def _key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "file_read_key", None)
    if key is None:
        key = secrets.token_bytes(32)
        state.file_read_key = key
    return key


def _mac(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()


def _binding(principal: Principal, number: str) -> list[Any]:
    return [principal.account_id, principal.session_id, number]


def clean_reason(value: str | None) -> str:
    """One line, at most `REASON_MAX_CHARS` characters; "" when blank."""
    return " ".join((value or "").split())[:REASON_MAX_CHARS]


def remember_reason(request: Request, response: Response, principal: Principal, number: str, reason: str) -> None:
    expires = int(_now()) + READ_MARKER_HOURS * 3600
    # Unpadded base64url and hex: characters a cookie carries unquoted.
    payload = base64.urlsafe_b64encode(
        json.dumps([*_binding(principal, number), reason, expires]).encode("utf-8")).decode("ascii").rstrip("=")
    response.set_cookie(READ_COOKIE, f"{payload}.{_mac(_key(request), payload)}", max_age=READ_MARKER_HOURS * 3600,
                        path=file_path(number), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def remembered_reason(request: Request, principal: Principal, number: str) -> str | None:
    """The reason this person gave for this file in this session, while the marker is valid; None otherwise."""
    value = request.cookies.get(READ_COOKIE, "")
    payload, _, mac = value.partition(".")
    if not payload or not hmac.compare_digest(mac, _mac(_key(request), payload)):
        return None
    try:
        *binding, reason, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    if binding != _binding(principal, number) or not isinstance(expires, int) or expires < _now():
        return None
    return reason if isinstance(reason, str) and reason else None
