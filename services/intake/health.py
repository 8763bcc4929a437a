"""A tiny HTTP health endpoint (`GET /health`, JSON) for monitoring: NATS connection, accepted/duplicate/quarantined
counters since start, and the number of messages currently held in the quarantine (read from JetStream).

Plain asyncio streams rather than a web framework: one read-only route, no dependency, nothing to configure. The
status is 503 when NATS is unreachable, so a load balancer or probe sees that intake cannot take mail in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


class HealthServer:
    def __init__(self, host: str, port: int, report: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]) -> None:
        self.host = host
        self.port = port
        self.report = report
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("health.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.split("?")[0] not in ("/health", "/"):
                status, body = 404, {"error": "not found"}
            else:
                healthy, body = await asyncio.wait_for(self.report(), 5)
                status = 200 if healthy else 503
        except Exception as error:  # noqa: BLE001 - a probe must always get an answer
            status, body = 503, {"status": "error", "error": type(error).__name__}
        payload = json.dumps(body, default=str).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            writer.write(head + payload)
            await writer.drain()
        finally:
            writer.close()
