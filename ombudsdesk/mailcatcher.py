"""A local mail catcher: an SMTP server that accepts every mail and writes it to a folder as `.eml`.

It stands in for the organisation's mail relay under `make run` (every mail the system sends lands in
`var/outbox/`) and is the real SMTP sink of the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import os
from datetime import datetime, timezone
from pathlib import Path

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

log = structlog.get_logger(__name__)


class CatchingHandler:
    """aiosmtpd handler writing each accepted message atomically (temp file + rename) into `outbox`; with
    `queue_caught`, also queueing each file's path for `MailCatcher.next_mail` (tests read them in order)."""

    def __init__(self, outbox: Path, queue_caught: bool = True) -> None:
        self.outbox = outbox
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)
        self.received = asyncio.Queue[Path]()
        self.queue_caught = queue_caught

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        path = self.outbox / f"{stamp}-{os.getpid()}-{next(self._counter):05d}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(content)
        temporary.replace(path)
        # Only the file and its size: recipients and subjects are personal data (names, case topics), and parsing
        # headers for a log line cost more than writing the mail.
        log.info("mailcatcher.caught", file=path.name, size=len(content))
        if self.queue_caught:
            self.received.put_nowait(path)
        return "250 OK caught"


class MailCatcher:
    """The catcher's server. The launchers pass `queue_caught=False`: nobody reads their queue, which would otherwise
    keep one path per mail for as long as `make run` runs."""

    def __init__(self, outbox: Path, host: str = "127.0.0.1", port: int = 1025, queue_caught: bool = True) -> None:
        self.handler = CatchingHandler(outbox, queue_caught)
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname="mailcatcher.localhost", enable_SMTPUTF8=True),
            host=self.host,
            port=self.port,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def next_mail(self, timeout: float = 10.0) -> email.message.EmailMessage:
        if not self.handler.queue_caught:
            raise RuntimeError("this catcher queues nothing (queue_caught=False): read its folder instead")
        path = await asyncio.wait_for(self.handler.received.get(), timeout)
        return email.parser.BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
