"""An ASGI application served by uvicorn inside a service's own event loop (the registry's staff API and back office,
intake's public pages): the service's runtime owns SIGINT/SIGTERM, uvicorn only serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's loop: SIGINT/SIGTERM belong to `shared.runtime`, not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def start_server(app: Any, host: str, port: int, *, name: str,
                       trust_local_proxy: bool = False) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Serve `app` on host:port; returns once it listens (raises the start-up error, e.g. a port taken).
    Stop it with `server.should_exit = True` and await the task.

    `trust_local_proxy` False (the public pages): the client is the TCP peer, whatever `X-Forwarded-For` says — a
    header anyone can write would otherwise choose the address the per-client limits count and the audit records.
    True (the staff back office): uvicorn's default, the header believed from loopback only."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            proxy_headers=trust_local_proxy)
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(), name=name)
    while not server.started:
        if task.done():
            await task  # raises the start-up error (port taken...)
            raise RuntimeError(f"{name} did not start on {host}:{port}")
        await asyncio.sleep(0.02)
    return server, task


def bound_port(server: uvicorn.Server) -> int | None:
    """The port the server listens on (useful with port 0 in tests)."""
    for listener in getattr(server, "servers", []) or []:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return None
