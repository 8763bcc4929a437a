"""What the registry's HTTP server refuses before anyone's identity is looked at (thin ASGI adapters, plus the pure
checks they and `dependencies` use):

- a Host header that is not one of the allowed names → 400 (DNS rebinding: a hostile page whose name resolves to
  127.0.0.1 would otherwise talk to the API as same-origin); `/health`, `/ready`, `/metrics` stay open for probes;
- a state-changing request to the JSON API whose body is not `application/json` → 415 (a cross-site "simple" POST
  — form or text/plain, which a browser sends without asking — never reaches a handler);
- `cross_site_reason`: a state-changing browser request coming from another site (Sec-Fetch-Site, Origin, Referer);
- `SecurityHeaders`: every answer says what a browser may do with it — only this server's scripts, styles, images
  and forms (Content-Security-Policy: an injected script or style does not run), never inside a frame
  (clickjacking), no content-type guessing, no full URL in the Referer to other sites.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
DEFAULT_PORTS = {"http": 80, "https": 443}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def host_name(host_header: str) -> str | None:
    """The name part of a Host header, lower-case (`[::1]` keeps its brackets), or None when it is not a host."""
    value = host_header.strip().lower()
    if not value or any(c in value for c in "/\\@ ?#\t") or not value.isascii():
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1:] and not value[end + 1:].startswith(":")):
            return None
        name, port = value[:end + 1], value[end + 2:]
    else:
        name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.rstrip("."), port or DEFAULT_PORTS[parts.scheme]


def own_origins(host_header: str, scheme: str, public_urls: Iterable[str] = ()) -> set[tuple[str, str, int]]:
    """The origins a request to this server may legitimately come from: its own Host, and the public URL(s)."""
    origins: set[tuple[str, str, int]] = set()
    own = _origin(f"{scheme}://{host_header}")
    if own is not None:
        origins.add(own)
    for url in public_urls:
        public = _origin(url)
        if public is not None:
            origins.add(public)
    return origins


def cross_site_reason(headers: Mapping[str, str], host_header: str, scheme: str,
                      public_urls: Iterable[str] = ()) -> str | None:
    """Why a state-changing request looks cross-site, or None. Headers a browser always sets are decisive when
    present; a client that sends none of them (a script) is judged by its credentials alone."""
    fetch_site = headers.get("sec-fetch-site", "").lower()
    if fetch_site == "cross-site":
        return "sec-fetch-site: cross-site"
    allowed = own_origins(host_header, scheme, public_urls)
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null" or _origin(origin.strip()) not in allowed:
            return "origin"
        return None
    referer = headers.get("referer")
    if referer and _origin(referer.strip()) not in allowed:
        return "referer"
    return None


async def _json_error(send: Send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


class HostGuard:
    """400 for a Host header outside `allowed` (but on the open paths)."""

    def __init__(self, app: App, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(name.lower() for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") not in OPEN_PATHS:
            if host_name(_header(scope, b"host")) not in self.allowed:
                await _json_error(send, 400, "invalid_host", "this server does not answer to that host name")
                return
        await self.app(scope, receive, send)


class JsonBodyGuard:
    """415 for a state-changing request of the JSON API (every path outside `page_prefix`) that is not JSON."""

    def __init__(self, app: App, page_prefix: str) -> None:
        self.app = app
        self.page_prefix = page_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("method", "GET") not in SAFE_METHODS
                and not str(scope.get("path", "")).startswith(self.page_prefix + "/")):
            media_type = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
            if media_type != "application/json":
                await _json_error(send, 415, "unsupported_media_type", "send the request body as application/json")
                return
        await self.app(scope, receive, send)


CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every HTTP answer; a header the answer sets itself is kept (a page holding a
    secret in its URL sends `Referrer-Policy: no-referrer`, stricter than the default)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _value in headers}
                headers.extend((name, value) for name, value in SECURITY_HEADERS if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def safe_next(value: str | None, prefix: str, default: str) -> str:
    """Where to go after a login: a path of this server under `prefix`, else `default` (never another site:
    `//evil.example`, `/\\evil.example`, `https://...` and control characters are all refused)."""
    if not value or not value.startswith(prefix) or any(c in value for c in "\\\r\n\t") or not value.isprintable():
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix):
        return default
    return value
