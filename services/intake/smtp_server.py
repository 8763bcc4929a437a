"""The SMTP listener (aiosmtpd, inside the service's event loop): the front door for citizens' mail.

- Recipients outside the configured complaint addresses get 550 at RCPT (RFC 5321 4.2.2, 5.1.1), so a sending server
  bounces instead of us silently swallowing mail for nobody.
- The size limit is announced (RFC 1870 SIZE) and enforced while the data is received: aiosmtpd counts the bytes,
  discards the excess at once and answers 552 at the end of DATA.
- 250 only once the message is durable in JetStream: the raw original with its envelope in intake's spool
  (`spool.py`; the spool worker publishes its event right after), or, for a message too big for one JetStream
  message, the raw original and its event themselves (`IntakePipeline.accept`). 451 on any internal failure, so the
  sending server keeps the message and retries (RFC 5321 4.5.4.1).
- The data is read into a single buffer (see `IntakeSMTP`): memory stays near the message's own size.
- Bare LF line endings inside the data are accepted (sloppy clients and scripts send them; the parser copes), but
  only <CRLF>.<CRLF> ends the data: accepting <LF>.<LF> is the "SMTP smuggling" hole (CVE-2023-51764,
  CVE-2023-51765) that lets a forged second message ride inside a legitimate one.
- Optional STARTTLS (RFC 3207) and AUTH PLAIN/LOGIN (RFC 4954) for a staff submission port, off by default; AUTH is
  only offered over TLS.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import ssl
from collections.abc import Callable
from datetime import datetime, timezone
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

import structlog
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from shared.events import Channel
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.settings import IntakeSettings
from services.intake.spool import Spool

log = structlog.get_logger(__name__)

# A path in angle brackets with a dot-atom local part and a plain domain (RFC 5321 4.1.2), then the parameters
# (no comment: the RFC 5322 parser would take one as white space).
_SIMPLE_PATH = re.compile(r"<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
                          r"@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>[ \t]*+(?!\()([^\r\n]*)")
# Mails up to this size are read in a few large pieces (`IntakeSMTP._read_small_data`), larger ones line by line.
SMALL_DATA_BYTES = 64 * 1024


class IntakeSMTP(SMTP):
    """aiosmtpd's server, with the DATA phase read into one buffer.

    aiosmtpd keeps every line of the data as its own object and joins them at the end: for a 34 MB message (a 25 MB
    attachment in base64) that is ~100 MB at the peak. Here the lines go straight into one bytearray, so a message
    costs about its own size while it is received; the bytes beyond `data_size_limit` are read and discarded at
    once, and 552 is answered at the end of DATA (RFC 5321 4.5.3.1.7). The data line limit is a whole message, so
    bare-LF bodies (one long "line" to a CRLF reader, RFC 5321 4.5.3.1.6 says 1000 octets) are not refused.
    """

    def __init__(self, handler: Any, *, max_message_bytes: int, **kwargs: Any) -> None:
        self.line_length_limit = max_message_bytes + 1024
        super().__init__(handler, data_size_limit=max_message_bytes, **kwargs)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parsing (same rules: RFC 5321 path, local-part limit), without the typing.Protocol
        class it defines afresh on every call: that class creation cost about a twentieth of a small message's CPU
        time in the profile (docs/benchmarks-intake.md)."""
        if not arg:
            return "", ""
        simple = _SIMPLE_PATH.fullmatch(arg)
        if simple is not None:
            # The everyday "<local@domain> PARAMS" form: the full RFC 5322 parser would return the same, slowly.
            addr, rest = simple.group(1), simple.group(2)
            if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
                return None, None
            return addr, rest
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None, None
        addr = address.addr_spec
        localpart = addr.rpartition("@")[0]
        if self.local_part_limit and len(localpart) > self.local_part_limit:
            return None, None
        return addr, rest

    async def _read_small_data(self, data: bytearray) -> bool:
        """Read the data in pieces that end with ".<CRLF>" rather than line by line; True once the end was read.

        Most lines do not end with a dot, so a small mail takes a few reads instead of one per line (a tenth of
        its CPU time, docs/benchmarks-intake.md). Every piece ends at a line end, so the next one starts a line:
        the end of data is a piece that is ".<CRLF>" or ends with "<CRLF>.<CRLF>" (never "<LF>.<LF>"), and a dot
        at a line start is unstuffed exactly as line by line. The reader's limit is lowered to `SMALL_DATA_BYTES`
        meanwhile: a piece longer than that (a large attachment) stops this at a line start without consuming
        anything, and the caller goes on line by line with the memory-bounded loop.
        """
        reader = self._reader
        line_limit = reader._limit  # noqa: SLF001 - StreamReader has no public setter for its limit
        reader._limit = SMALL_DATA_BYTES  # noqa: SLF001
        try:
            while len(data) <= SMALL_DATA_BYTES:
                try:
                    piece = await reader.readuntil(b".\r\n")
                except asyncio.LimitOverrunError:
                    return False
                ended = piece == b".\r\n" or piece.endswith(b"\r\n.\r\n")
                body = piece[:-3] if ended else piece
                if body.startswith(b"."):  # RFC 5321 4.5.2: a dot at a line start was doubled by the client
                    body = body[1:]
                data += body.replace(b"\r\n.", b"\r\n")
                if ended:
                    return True
            return False
        finally:
            reader._limit = line_limit  # noqa: SLF001

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd command method
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = bytearray()
        limit = self.data_size_limit or 0
        ended = await self._read_small_data(data)
        too_much = bool(limit) and len(data) > limit
        if too_much:
            data = bytearray()
        while not ended and self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                await self._reader.read(overrun.consumed)
                too_much = True
                data = bytearray()
                continue
            if line == b".\r\n":
                break
            if too_much:
                continue
            # RFC 5321 4.5.2: a leading dot was doubled by the client ("dot-stuffing").
            start = 1 if line.startswith(b".") else 0
            if limit and len(data) + len(line) - start > limit:
                too_much = True
                data = bytearray()
                continue
            data += memoryview(line)[start:]
        if too_much:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = data  # type: ignore[assignment] - bytes-like
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class IntakeHandler:
    def __init__(
        self,
        pipeline: IntakePipeline,
        spool: Spool,
        settings: IntakeSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.pipeline = pipeline
        self.spool = spool
        # The copiers' scan-to-email addresses too (docs/intake-letters.md); the pipeline's front routes those.
        self.allowed = {address.lower() for address in [*settings.complaint_addresses, *settings.letters_scan_addresses]}
        self.clock = clock

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self.allowed:
            log.info("smtp.recipient_refused", recipient=address)
            return "550 5.1.1 Recipient address rejected: not a complaint address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        details: dict[str, Any] = {"channel": Channel.EMAIL, "received_at": self.clock(),
                                   "envelope_sender": envelope.mail_from,
                                   "envelope_recipients": tuple(envelope.rcpt_tos), "source": "smtp"}
        try:
            if self.spool.fits(raw):
                spooled = await self.spool.put(raw, **details)
                key, duplicate = spooled.spool_id, not spooled.fresh
                log.info("smtp.spooled", spool_id=key[:16], size=len(raw), duplicate=duplicate)
            else:
                outcome = await self.pipeline.accept(raw, **details)
                key, duplicate = outcome.message_key, outcome.status is AcceptStatus.DUPLICATE
        except Exception as error:  # noqa: BLE001 - whatever failed, the sender must keep the mail and retry
            log.error("smtp.temporary_failure", error=repr(error), peer=str(session.peer))
            return "451 4.3.0 Temporary failure, please try again later"
        if duplicate:
            return f"250 2.0.0 OK, already received ({key[:16]})"
        return f"250 2.0.0 OK, queued as {key[:16]}"


class UserPasswordAuthenticator:
    """Checks AUTH credentials against `smtp_auth_users` in constant time; never logs a password."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = auth_data.login.decode("utf-8", "replace")
        expected = self.users.get(username)
        given = auth_data.password.decode("utf-8", "replace")
        success = expected is not None and hmac.compare_digest(expected.encode(), given.encode())
        log.info("smtp.auth", user=username, success=success)
        return AuthResult(success=success, handled=False, auth_data=username if success else None)


class TlsConfigurationError(RuntimeError):
    """The configured certificate or key cannot be used: the service does not start."""


def tls_context(settings: IntakeSettings) -> ssl.SSLContext | None:
    if not settings.smtp_tls_cert_file:
        return None
    cert = settings.smtp_tls_cert_file
    key = settings.smtp_tls_key_file or cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as error:
        raise TlsConfigurationError(
            f"cannot use the SMTP TLS certificate {cert} with the key {key} (OMBUDSDESK_SMTP_TLS_CERT_FILE, "
            f"OMBUDSDESK_SMTP_TLS_KEY_FILE): {error}"
        ) from None
    return context


class SmtpListener:
    """Owns the listening socket; `start` binds (raises at once when the port is taken), `stop` closes it."""

    def __init__(self, pipeline: IntakePipeline, spool: Spool, settings: IntakeSettings) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.handler = IntakeHandler(pipeline, spool, settings)
        self.server: asyncio.base_events.Server | None = None
        self._tls_context: ssl.SSLContext | None = None

    def _protocol(self) -> SMTP:
        settings = self.settings
        context = self._tls_context
        users = {name: secret.get_secret_value() for name, secret in settings.smtp_auth_users.items()}
        return IntakeSMTP(
            self.handler,
            max_message_bytes=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.smtp_hostname,
            ident="ombudsdesk intake",
            tls_context=context,
            require_starttls=settings.smtp_require_starttls and context is not None,
            auth_required=settings.smtp_auth_required,
            auth_require_tls=True,
            authenticator=UserPasswordAuthenticator(users) if users else None,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        # Built once, here: reading the certificate and key for every connection cost CPU per session and let a
        # bad certificate surface only as failed STARTTLS handshakes instead of a clear start-up error.
        self._tls_context = tls_context(self.settings)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, self.settings.smtp_host, self.settings.smtp_port)
        log.info("smtp.listening", host=self.settings.smtp_host, port=self.port)

    @property
    def port(self) -> int:
        if self.server and self.server.sockets:
            return self.server.sockets[0].getsockname()[1]
        return self.settings.smtp_port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
