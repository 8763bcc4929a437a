"""The SMTP listener (aiosmtpd, inside the service's event loop): the front door for citizens' mail.

- Recipients outside the configured complaint addresses get 550 at RCPT (RFC 5321 4.2.2, 5.1.1), so a sending server
  bounces instead of us silently swallowing mail for nobody.
- The size limit is announced (RFC 1870 SIZE) and enforced while the data is received: aiosmtpd counts the bytes,
  discards the excess at once and answers 552 at the end of DATA.
- 250 only once the message is durable in JetStream, whatever its size: the raw original in the raw originals'
  bucket (stored once) and its envelope in intake's spool (`spool.py`; the spool worker takes it through
  `IntakePipeline.accept` right after). 451 on any internal failure, so the sending server keeps the message and
  retries (RFC 5321 4.5.4.1).
- The data is read into a single buffer (see `IntakeSMTP`): memory stays near the message's own size.
- Bare LF line endings inside the data are accepted (sloppy clients and scripts send them; the parser copes), but
  only <CRLF>.<CRLF> ends the data: accepting <LF>.<LF> is the "SMTP smuggling" hole (CVE-2023-51764,
  CVE-2023-51765) that lets a forged second message ride inside a legitimate one.
- Limits on command lines, connections (overall and per client), recipients, commands and session life, each
  answered with its code, enhanced status code and the limit's value (`smtp_limits.py`).
- Optional STARTTLS (RFC 3207) and AUTH PLAIN/LOGIN (RFC 4954) for a staff submission port, off by default; AUTH is
  only offered over TLS.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import time
import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, AnyStr

import structlog
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from shared import observability
from shared.events import Channel, Provenance
from shared.logging import log_digest
from services.intake.channels import aiosmtpd_internals as internals
from services.intake.channels.client_rate import ClientRate
from services.intake.arrival import Arrival
from services.intake.settings import IntakeSettings
from services.intake.channels.smtp_limits import COMMAND_READ_LIMIT, ConnectionCounter, SmtpLimits
from services.intake.channels.spool import Spool
from services.intake.channels.trace import received_header, session_provenance

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

    def __init__(
        self,
        handler: Any,
        *,
        limits: SmtpLimits | None = None,
        max_message_bytes: int | None = None,
        connections: ConnectionCounter | None = None,
        **kwargs: Any,
    ) -> None:
        if limits is None:  # the other limits at their defaults
            assert max_message_bytes is not None, "give the limits or at least max_message_bytes"
            limits = SmtpLimits(max_message_bytes=max_message_bytes)
        # Outside DATA the reader buffers at most one AUTH-sized line: a 25 MB "command" is cut off at 12 KB and
        # answered 500 5.5.2 (RFC 5321 4.5.3.1.4), instead of being held whole as it used to be.
        self.line_length_limit = COMMAND_READ_LIMIT
        self.data_line_limit = limits.max_message_bytes + 1024
        super().__init__(handler, data_size_limit=limits.max_message_bytes, **kwargs)
        self.limits = limits
        self.connections = connections or ConnectionCounter(limits)
        self._client: str | None = None
        self._refused = False
        self._commands = 0
        self._opened_at = 0.0
        internals.replace_command_methods(self, {name: self._counted(name, method)
                                                 for name, method in internals.command_methods(self).items()})

    # -- connection and session limits (smtp_limits.py) --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None and not self._refused:  # not the second call of a STARTTLS upgrade
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
            if not self.connections.admit(client):
                # Refused before the greeting (RFC 5321 3.1: a server may answer 421 instead of 220).
                self._refused = True
                observability.mail_refused("smtp", "too_many_connections")
                transport.write(f"{self.limits.too_many_connections()}\r\n".encode())  # type: ignore[attr-defined]
                transport.close()
                log.warning("smtp.connection_refused", connections=self.connections.total,
                            from_this_client=self.connections.per_client[client])
                return
            self._client = client
            self._opened_at = self.loop.time()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._client is not None:
            self.connections.release(self._client)
            self._client = None
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return False if self._refused else super().eof_received()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def _counted(self, name: str, method: Callable[[str | None], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """The command `name`, counted against the session's limits first."""

        @functools.wraps(method)
        async def counted(arg: str | None) -> None:
            self._commands += 1
            if self._commands > self.limits.max_commands:
                observability.mail_refused("smtp", "too_many_commands")
                await self._close_with(self.limits.too_many_commands())
                return
            if self.loop.time() - self._opened_at > self.limits.max_session_seconds and name != "QUIT":
                observability.mail_refused("smtp", "session_too_long")
                await self._close_with(self.limits.session_too_long())
                return
            if name == "RCPT" and self.envelope is not None and \
                    len(self.envelope.rcpt_tos) >= self.limits.max_recipients:
                # RFC 5321 4.5.3.1.10: the client sends the other recipients in another transaction.
                observability.mail_refused("smtp", "too_many_recipients")
                await self.push(self.limits.too_many_recipients())
                return
            await method(arg)

        return counted

    async def _close_with(self, status: str) -> None:
        log.info("smtp.session_closed_by_limit", status=status[:3], commands=self._commands)
        await self.push(status)
        if self.transport is not None:
            self.transport.close()

    async def push(self, status: AnyStr) -> None:
        # aiosmtpd's own texts for our limits, given their enhanced status codes and the limit's value (RFC 3463).
        if isinstance(status, str) and status in _LIMIT_ANSWERS:
            observability.mail_refused("smtp", "too_big" if status.startswith("552") else "line_too_long")
            status = _LIMIT_ANSWERS[status](self.limits)
        await super().push(status)

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
        with internals.reader_limit(self, SMALL_DATA_BYTES) as reader:
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
        # The data line limit is the whole message (see the class docstring), for DATA only.
        with internals.reader_limit(self, self.data_line_limit) as reader:
            await self._receive_data(reader)

    async def _receive_data(self, reader: asyncio.StreamReader) -> None:
        assert self.envelope is not None
        data = bytearray()
        limit = self.data_size_limit or 0
        ended = await self._read_small_data(data)
        too_much = bool(limit) and len(data) > limit
        if too_much:
            data = bytearray()
        while not ended and self.transport is not None:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                await reader.read(overrun.consumed)
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
            observability.mail_refused("smtp", "too_big")
            await self.push(self.limits.message_too_big())
            internals.reset_after_data(self)
            return
        await self.push(await internals.end_of_data(self, data))


# aiosmtpd's texts for the limits it checks itself, and ours in their place.
_LIMIT_ANSWERS: dict[str, Callable[[SmtpLimits], str]] = {
    "500 Command line too long": lambda limits: limits.line_too_long(),
    "552 Error: message size exceeds fixed maximum message size": lambda limits: limits.message_too_big(),
    "552 Error: Too much mail data": lambda limits: limits.message_too_big(),
}


def smtp_limits(settings: IntakeSettings) -> SmtpLimits:
    return SmtpLimits(
        max_message_bytes=settings.max_message_bytes,
        max_connections=settings.smtp_max_connections,
        max_connections_per_client=settings.smtp_max_connections_per_client,
        max_recipients=settings.smtp_max_recipients,
        max_commands=settings.smtp_max_commands,
        max_session_seconds=settings.smtp_max_session_seconds,
    )


def client_address(peer_ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address; an IPv4 client seen through a dual-stack socket (::ffff:a.b.c.d) as IPv4."""
    try:
        address = ipaddress.ip_address(peer_ip or "")
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


class IntakeHandler:
    def __init__(
        self,
        spool: Spool,
        settings: IntakeSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.spool = spool
        # The copiers' scan-to-email addresses too (docs/intake-letters.md); the pipeline's front routes those.
        self.allowed = {address.lower() for address in [*settings.complaint_addresses, *settings.letters_scan_addresses]}
        self.hostname = settings.smtp_hostname
        # Per sending client IP, messages beyond the hourly limit are registered without an automatic acknowledgment
        # (client_rate.py), so that nobody uses intake to mail-bomb an address they write in From. Relays (the MX)
        # and authenticated staff sessions are not counted: the notifier's per-recipient limit covers them.
        self.client_rate = ClientRate(settings.ack_rate_per_client_per_hour)
        self.relay_networks = settings.relay_networks()
        self.clock = clock

    def _over_client_rate(self, provenance: Provenance, client: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
                          ) -> bool:
        if provenance.authenticated_as or client is None:
            return False
        # One IPv6 client holds a whole /64 (RFC 6177): counted as one, or it would rotate addresses at will.
        key = str(ipaddress.ip_network(f"{client}/64", strict=False)) if client.version == 6 else str(client)
        return self.client_rate.record(key, time.monotonic()) is not None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self.allowed:
            # Not the address itself (personal data): a short digest, enough to tell repeats apart in the logs.
            log.info("smtp.recipient_refused", recipient_digest=log_digest(address))
            observability.mail_refused("smtp", "recipient_not_ours")
            return "550 5.1.1 Recipient address rejected: not a complaint address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        sent = envelope.original_content or b""  # the one buffer the data was read into: not copied
        received_at = self.clock()
        login = session.auth_data if session.authenticated and isinstance(session.auth_data, str) else None
        provenance = session_provenance(session.peer, session.host_name, login)
        client = client_address(provenance.peer_ip)
        relay = client is not None and any(client in network for network in self.relay_networks)
        provenance = provenance.model_copy(update={
            "delivered_by_relay": relay,
            "client_over_rate_limit": not relay and self._over_client_rate(provenance, client)})
        # The spool id is the digest of the bytes as the client sent them: an SMTP retry is recognised although our
        # Received line (with its time) differs.
        spool_id = hashlib.sha256(sent).hexdigest()
        trace = received_header(provenance, our_host=self.hostname, tls=session.ssl is not None,
                                queue_id=spool_id[:16], when=received_at)
        arrival = Arrival.of(channel=Channel.EMAIL, received_at=received_at, envelope_sender=envelope.mail_from,
                             envelope_recipients=envelope.rcpt_tos, source="smtp", provenance=provenance)
        try:
            spooled = await self.spool.put(trace, sent, arrival=arrival, spool_id=spool_id)
        except Exception as error:  # noqa: BLE001 - whatever failed, the sender must keep the mail and retry
            # The error's type only: its text may quote the message; the client as a digest (an IP is personal data).
            log.error("smtp.temporary_failure", error=type(error).__name__, client=log_digest(provenance.peer_ip))
            observability.mail_refused("smtp", "temporary_failure")
            return "451 4.3.0 Temporary failure, please try again later"
        key = spooled.spool_id
        log.info("smtp.spooled", spool_id=key[:16], size=len(trace) + len(sent), duplicate=not spooled.fresh)
        if not spooled.fresh:
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
        log.info("smtp.auth", user_digest=log_digest(username), success=success)
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

    def __init__(self, spool: Spool, settings: IntakeSettings) -> None:
        self.settings = settings
        self.handler = IntakeHandler(spool, settings)
        self.limits = smtp_limits(settings)
        # One count for the whole listener: the cap is on connections open at once, across all sessions.
        self.connections = ConnectionCounter(self.limits)
        self.server: asyncio.base_events.Server | None = None
        self._tls_context: ssl.SSLContext | None = None

    def _protocol(self) -> SMTP:
        settings = self.settings
        context = self._tls_context
        users = {name: secret.get_secret_value() for name, secret in settings.smtp_auth_users.items()}
        return IntakeSMTP(
            self.handler,
            limits=self.limits,
            connections=self.connections,
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
