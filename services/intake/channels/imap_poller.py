"""IMAP intake: poll configured mailboxes (IDLE where the server offers it) and hand each message to the pipeline.

Safety rules (issue 3):
- a message is marked (`\\Seen` plus our keyword) or moved only AFTER `pipeline.accept` returned, i.e. once its raw
  original and its event are durable in JetStream; nothing is ever deleted or expunged;
- the position in each mailbox (UIDVALIDITY and the last UID handed over, RFC 3501 2.3.1.1) is kept in a JetStream
  key-value bucket, since intake has no database; it is written after the message is marked, so a crash between the
  two re-reads at most one message, which the pipeline recognises by its message key (no second event, no second
  acknowledgment);
- when the server's UIDVALIDITY changes (mailbox recreated or restored), every UID we knew is void: the mailbox is read
  again from the start, unmarked messages only, and the pipeline's dedupe drops those already taken in;
- messages are fetched with `BODY.PEEK[]`, which unlike `RFC822` does not set `\\Seen` (RFC 3501 6.4.5);
- any network or server failure drops the connection and retries with a growing delay; nothing is marked then;
- a message on which the pipeline keeps failing is tried after the others, so it holds up nobody, and the position
  never moves past it, so it is never skipped (listed as `stuck_uids` by the health endpoint).

imapclient is synchronous: each mailbox gets one worker thread, so the commands of a connection never interleave.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog
from imapclient import IMAPClient
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from pydantic import BaseModel, ConfigDict, SecretStr

from shared import streams
from shared.events import Channel, Provenance
from services.intake.channels.acceptor import MessageAcceptor
from services.intake.arrival import Arrival
from services.intake.stores import key_value_bucket

log = structlog.get_logger(__name__)

DEFAULT_PROCESSED_KEYWORD = "$Ombudsdesk-Imported"
SEEN = b"\\Seen"
# After this many failed attempts in a row a message is handled after the others (see `sync_once`).
STUCK_AFTER_ATTEMPTS = 3


class ImapMailbox(BaseModel):
    """One mailbox to take complaints from (an element of `OMBUDSDESK_IMAP_MAILBOXES`, a JSON list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    host: str
    port: int = 993
    ssl: bool = True
    # Only for a test server or a private CA; never turn it off against a real provider.
    verify_tls: bool = True
    username: str
    password: SecretStr = SecretStr("")
    # A file holding the password (container secrets); read at connection time, it wins over `password`.
    password_file: Path | None = None
    folder: str = "INBOX"
    # When set, a message is moved there once taken in (RFC 6851 MOVE); otherwise it is marked in place.
    processed_folder: str | None = None
    # The complaint address this mailbox receives for: recorded as the envelope recipient of its messages.
    recipient: str | None = None
    # False: search every `imap_poll_seconds` even where IDLE is offered (a proxy that cuts idle connections).
    idle: bool = True
    # A staff mailbox: its forwards are trusted as staff's, like the authenticated submission port
    # (docs/security.md). Only for a folder outsiders cannot write into (one staff file mails into by hand, or an
    # address the organisation's MX accepts from authenticated staff only) — never a public address.
    staff: bool = False

    def secret(self) -> str:
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.password.get_secret_value()

    def state_key(self) -> str:
        """KV key of this mailbox's position: stable for a server, account and folder, and free of KV's forbidden
        characters (an account name may hold `@` and a folder anything)."""
        identity = f"{self.host.lower()}:{self.port}:{self.username}:{self.folder}"
        return "mailbox." + hashlib.sha256(identity.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class MailboxPosition:
    uidvalidity: int
    last_uid: int


class PositionStore:
    """Each mailbox's position in a JetStream key-value bucket (file storage: it survives a NATS restart)."""

    def __init__(self, jetstream: Callable[[], JetStreamContext], bucket: str = streams.BUCKET_INTAKE_IMAP,
                 replicas: int = 1) -> None:
        # A provider rather than a context: the service builds this before it connects to NATS.
        self.jetstream = jetstream
        self.bucket = bucket
        self.replicas = replicas
        self._kv: Any = None

    async def _store(self) -> Any:
        if self._kv is None:
            self._kv = await key_value_bucket(self.jetstream(), self.bucket, "Position of intake in each IMAP mailbox",
                                              self.replicas, history=5)
        return self._kv

    async def load(self, key: str) -> MailboxPosition | None:
        kv = await self._store()
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        if entry is None or not entry.value:
            return None
        data = json.loads(entry.value)
        return MailboxPosition(uidvalidity=int(data["uidvalidity"]), last_uid=int(data["last_uid"]))

    async def save(self, key: str, position: MailboxPosition) -> None:
        kv = await self._store()
        await kv.put(key, json.dumps({"uidvalidity": position.uidvalidity, "last_uid": position.last_uid}).encode())


@dataclass(frozen=True)
class PollerTiming:
    poll_seconds: float = 60.0
    # RFC 2177: re-issue IDLE well before 29 minutes; a shorter cycle also bounds any missed notification.
    idle_seconds: float = 300.0
    first_retry_seconds: float = 1.0
    longest_retry_seconds: float = 60.0
    timeout_seconds: float = 60.0


class MailboxPoller:
    """Takes in every message of one mailbox, once, through the pipeline."""

    def __init__(
        self,
        mailbox: ImapMailbox,
        pipeline: MessageAcceptor,
        positions: PositionStore,
        *,
        keyword: str = DEFAULT_PROCESSED_KEYWORD,
        timing: PollerTiming = PollerTiming(),
    ) -> None:
        self.mailbox = mailbox
        self.pipeline = pipeline
        self.positions = positions
        self.keyword = keyword.encode()
        self.timing = timing
        self.log = log.bind(mailbox=mailbox.name)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{mailbox.name}")
        self._client: IMAPClient | None = None
        self._stopping = False
        self.imported = 0
        self.failures = 0  # consecutive
        self.last_error: str | None = None
        self.last_sync_at: datetime | None = None
        self._attempts: dict[int, int] = {}  # failed attempts per UID, for messages that keep failing

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- connection (runs in the worker thread) -------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        context = None
        if self.mailbox.ssl:
            context = ssl.create_default_context()
            if not self.mailbox.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        client = IMAPClient(self.mailbox.host, port=self.mailbox.port, ssl=self.mailbox.ssl, ssl_context=context,
                            timeout=self.timing.timeout_seconds)
        # Keep INTERNALDATE timezone-aware: it is the legal receipt time of the message.
        client.normalise_times = False
        try:
            client.login(self.mailbox.username, self.mailbox.secret())
        except BaseException:
            client.shutdown()  # a refused login must not leak one socket per retry
            raise
        return client

    def _drop(self) -> None:
        """Abort the connection at once (from any thread): wakes a blocked IDLE, like a crash or a network cut."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.socket().shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            client.socket().close()
        except OSError:
            pass

    # -- one pass over the mailbox --------------------------------------------------------------------------------

    async def sync_once(self) -> int:
        """Take in every new message; returns how many were handed to the pipeline. Raises on any failure."""
        if self._client is None:
            self._client = await self._call(self._connect)
            self.log.info("imap.connected", host=self.mailbox.host, folder=self.mailbox.folder)
        client = self._client
        status = await self._call(client.select_folder, self.mailbox.folder)
        await self._call(self._news_since_last_look, client)
        uidvalidity = int(status[b"UIDVALIDITY"])
        key = self.mailbox.state_key()
        position = await self.positions.load(key)
        if position is None or position.uidvalidity != uidvalidity:
            if position is not None:
                self.log.warning("imap.uidvalidity_changed", previous=position.uidvalidity, current=uidvalidity)
            position = MailboxPosition(uidvalidity=uidvalidity, last_uid=0)
            await self.positions.save(key, position)
            self._attempts.clear()
        # Marked messages are skipped in both modes: without MOVE a processed message is copied and marked in place.
        criteria: list[Any] = ["UID", f"{position.last_uid + 1}:*", "NOT", "KEYWORD", self.keyword.decode()]
        # `n:*` always matches the highest UID even when it is below n (RFC 3501 6.4.8): filter again.
        uids = sorted(uid for uid in await self._call(client.search, criteria) if uid > position.last_uid)
        # A message that keeps failing goes last, so that it cannot hold up the ones behind it ("one bad message never
        # blocks the others"); the position never moves past it, so it is retried at every pass and never lost.
        stuck = [uid for uid in uids if self._attempts.get(uid, 0) >= STUCK_AFTER_ATTEMPTS]
        pending = set(uids)
        handed = 0
        for uid in [uid for uid in uids if uid not in stuck] + stuck:
            if self._stopping:
                break
            try:
                await self._take_in(client, uid)
            except Exception:
                self._attempts[uid] = self._attempts.get(uid, 0) + 1
                if self._attempts[uid] == STUCK_AFTER_ATTEMPTS:
                    self.log.error("imap.message_stuck", uid=uid, attempts=STUCK_AFTER_ATTEMPTS)
                raise
            self._attempts.pop(uid, None)
            pending.discard(uid)
            handed += 1
            last_uid = min(pending) - 1 if pending else uids[-1]
            if last_uid > position.last_uid:
                position = MailboxPosition(uidvalidity=uidvalidity, last_uid=last_uid)
                await self.positions.save(key, position)
        return handed

    async def _take_in(self, client: IMAPClient, uid: int) -> None:
        fetched = await self._call(client.fetch, [uid], ["BODY.PEEK[]", "INTERNALDATE"])
        data = fetched.get(uid)
        if data is None or b"BODY[]" not in data:
            self.log.warning("imap.message_vanished", uid=uid)  # expunged by someone else meanwhile
            return
        raw: bytes = data[b"BODY[]"]
        received_at = data.get(b"INTERNALDATE") or datetime.now(timezone.utc)
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=timezone.utc)
        with structlog.contextvars.bound_contextvars(imap_uid=uid, mailbox=self.mailbox.name):
            outcome = await self.pipeline.accept(raw, arrival=Arrival.of(
                channel=Channel.EMAIL,
                received_at=received_at,
                envelope_sender=None,
                envelope_recipients=(self.mailbox.recipient,) if self.mailbox.recipient else (),
                source=f"imap:{self.mailbox.name}",
                provenance=Provenance(staff_mailbox=self.mailbox.staff),
            ))
            # Only now is the message durable in JetStream: mark or move it.
            if self.mailbox.processed_folder is None:
                await self._call(client.add_flags, [uid], [SEEN, self.keyword])
            else:
                await self._call(self._move, client, uid)
            self.imported += 1
            self.log.info("imap.message_taken_in", outcome=str(getattr(outcome, "status", outcome)))

    def _move(self, client: IMAPClient, uid: int) -> None:
        target = self.mailbox.processed_folder
        assert target is not None
        if not client.folder_exists(target):
            client.create_folder(target)
        if client.has_capability("MOVE"):
            client.move([uid], target)
        else:
            # Without MOVE: copy, then only mark the original (never expunge: deletion stays a human decision).
            client.copy([uid], target)
            client.add_flags([uid], [SEEN, self.keyword])

    # -- waiting for new mail --------------------------------------------------------------------------------------

    @staticmethod
    def _news_since_last_look(client: IMAPClient) -> bool:
        """Whether the server announced new mail (EXISTS/RECENT) in a response since the last look.

        Dovecot updates a session's view at the end of a command, so a SEARCH may report `* n EXISTS` for a message
        that its own result does not contain yet; IDLE will not announce that message again. imaplib keeps such
        untagged responses in `untagged_responses` (imapclient does not expose them), hence the private access.
        """
        responses = client._imap.untagged_responses  # noqa: SLF001 - see the docstring
        announced = [responses.pop(kind, None) for kind in ("EXISTS", "RECENT")]
        return any(item is not None for item in announced)

    def _response_already_buffered(self, client: IMAPClient) -> bool:
        """Whether a server response already sits in imaplib's read buffer.

        `idle_check` waits for the socket to become readable, but a notification that arrived in the same packet as
        the IDLE continuation (`+ idling`) was already read into imaplib's buffered file: the socket stays silent and
        the notification would wait for the end of the IDLE period. `peek` looks at the buffer (or, when it is empty,
        makes one non-blocking read).
        """
        sock = client.socket()
        sock.setblocking(False)
        try:
            return bool(client._imap.file.peek(1))  # noqa: SLF001 - imapclient does not expose the buffer
        except OSError:  # nothing to read yet (EAGAIN, SSLWantReadError)
            return False
        finally:
            sock.settimeout(self.timing.timeout_seconds)

    def _idle(self, seconds: float) -> None:
        client = self._client
        assert client is not None
        client.idle()
        try:
            if not self._response_already_buffered(client):
                client.idle_check(timeout=seconds)
        finally:
            client.idle_done()

    async def _wait_for_mail(self) -> None:
        client = self._client
        if client is not None and await self._call(self._news_since_last_look, client):
            return  # announced during the last pass but not in its search: look again at once
        if client is not None and self.mailbox.idle and await self._call(client.has_capability, "IDLE"):
            await self._call(self._idle, self.timing.idle_seconds)
        else:
            await asyncio.sleep(self.timing.poll_seconds)

    # -- the loop ---------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until stopped or cancelled; a failure is logged and retried, never fatal."""
        try:
            while not self._stopping:
                try:
                    # Loop until a pass finds nothing new; `_wait_for_mail` then looks again at once if the server
                    # announced a message during that pass, otherwise the next announcement comes during IDLE.
                    while await self.sync_once():
                        pass
                    self.failures, self.last_error = 0, None
                    self.last_sync_at = datetime.now(timezone.utc)
                    await self._wait_for_mail()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - a network cut or a NATS outage must never stop polling
                    if self._stopping:
                        break
                    self.failures += 1
                    self.last_error = f"{type(error).__name__}: {error}"
                    delay = min(self.timing.first_retry_seconds * 2 ** (self.failures - 1),
                                self.timing.longest_retry_seconds)
                    self.log.warning("imap.failure", error=self.last_error, retry_in_seconds=delay)
                    self._drop()
                    await asyncio.sleep(delay)
        finally:
            self._drop()

    async def stop(self) -> None:
        self._stopping = True
        self._drop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def status(self) -> dict[str, Any]:
        """For the health endpoint: never the password, nor the account name."""
        return {
            "mailbox": self.mailbox.name,
            "connected": self._client is not None,
            "taken_in_since_start": self.imported,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "stuck_uids": sorted(uid for uid, count in self._attempts.items() if count >= STUCK_AFTER_ATTEMPTS),
        }


class ImapIntake:
    """Every configured mailbox, each polled by its own task; `start()` and `stop()` for the intake service."""

    def __init__(
        self,
        mailboxes: Sequence[ImapMailbox],
        pipeline: MessageAcceptor,
        positions: PositionStore,
        *,
        keyword: str = DEFAULT_PROCESSED_KEYWORD,
        timing: PollerTiming = PollerTiming(),
    ) -> None:
        self.pollers = [MailboxPoller(mailbox, pipeline, positions, keyword=keyword, timing=timing)
                        for mailbox in mailboxes]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(poller.run(), name=f"imap-{poller.mailbox.name}") for poller in self.pollers]

    def status(self) -> dict[str, Any]:
        return {"imap": [poller.status() for poller in self.pollers]}

    async def stop(self) -> None:
        for poller in self.pollers:
            await poller.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
