"""The SMTP client that hands notices to the relay (adapter, aiosmtplib), with SMTP replies sorted into
transient (4xx, connection trouble: try again later) and permanent (5xx: give up) failures (RFC 5321 4.2.1).

Only a 5xx answer to RCPT TO speaks about the citizen's address (and not even there a 530 or a 5.7.x "relaying
denied"). A 5xx to AUTH (530, 535), to MAIL FROM (550, 554) or to DATA is the relay refusing *us* (bad credentials, sender not allowed, content policy): a `RelayFault`, retried
like a 4xx until the notice's deadline and reported to staff, never a reason to flag the citizen's address (issue 5).
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
import structlog

log = structlog.get_logger(__name__)


class DeliveryError(Exception):
    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientDeliveryError(DeliveryError):
    """4xx or no answer: the same mail may succeed later."""


class RelayFault(TransientDeliveryError):
    """5xx to anything but RCPT TO: our relay set-up is wrong (credentials, sender, policy); staff must act."""


class PermanentDeliveryError(DeliveryError):
    """5xx at RCPT TO: the relay will never take this mail for this recipient."""


def _reason(code: int | None, message: str) -> str:
    return f"{code} {message}".strip() if code else message


def _classify_recipient(code: int | None, message: str) -> DeliveryError:
    # At RCPT TO too, 530 (authentication required, RFC 4954 6) and the 5.7.x security/policy codes (RFC 3463 3.8:
    # "relaying denied", "authentication required") refuse the sender, not the recipient's mailbox.
    if code == 530 or message.lstrip().startswith("5.7."):
        return _classify_relay(code, message)
    if code is not None and 500 <= code < 600:
        return PermanentDeliveryError(_reason(code, message), code)
    return TransientDeliveryError(_reason(code, message), code)


def _classify_relay(code: int | None, message: str) -> DeliveryError:
    if code is not None and 500 <= code < 600:
        return RelayFault(_reason(code, message), code)
    return TransientDeliveryError(_reason(code, message), code)


class SmtpRelay:
    """One connection to the relay, reused across notices and reopened after any error."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        starttls: bool = False,
        implicit_tls: bool = False,
        ca_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.ca_file = ca_file
        self.username = username
        self.password = password
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> tuple[aiosmtplib.SMTP, bool]:
        if self._client is not None and self._client.is_connected:
            return self._client, True
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout,
                                 start_tls=self.starttls and not self.implicit_tls, use_tls=self.implicit_tls,
                                 cert_bundle=self.ca_file)
        await client.connect()
        if self.username and self.password:
            try:
                await client.login(self.username, self.password)
            except BaseException:
                client.close()  # a refused login must not leave the fresh connection open
                raise
        self._client = client
        return client, False

    async def send(self, message: bytes | EmailMessage, sender: str, recipient: str) -> str:
        """Hand one mail over (in wire form, or an `EmailMessage`); returns the relay's answer, raises a
        DeliveryError subclass."""
        try:
            try:
                client, reused = await self._connected()
                return await self._send_once(client, message, sender, recipient)
            except aiosmtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # A relay closes idle connections (RFC 5321 4.5.3.2.7): one fresh attempt, not a retry later.
                await self.close()
                client, _ = await self._connected()
                return await self._send_once(client, message, sender, recipient)
        except aiosmtplib.SMTPRecipientsRefused as error:
            await self.close()
            refused = error.recipients[0] if error.recipients else None
            raise _classify_recipient(refused.code if refused else None,
                                      refused.message if refused else str(error)) from error
        except aiosmtplib.SMTPRecipientRefused as error:
            await self.close()
            raise _classify_recipient(error.code, error.message) from error
        except aiosmtplib.SMTPResponseException as error:
            # AUTH, MAIL FROM, DATA, or a greeting/HELO refusal: about the relay and us, not the recipient.
            await self.close()
            raise _classify_relay(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            await self.close()
            raise TransientDeliveryError(f"{type(error).__name__}: {error}") from error

    async def _send_once(self, client: aiosmtplib.SMTP, message: bytes | EmailMessage, sender: str,
                         recipient: str) -> str:
        if isinstance(message, bytes):
            # Already in wire form (`mail.build_email`: 7-bit, so no BODY=8BITMIME or SMTPUTF8 to ask for).
            errors, response = await client.sendmail(sender, [recipient], message)
        else:
            errors, response = await client.send_message(message, sender=sender, recipients=[recipient])
        if errors:
            code, text = next(iter(errors.values()))
            raise _classify_recipient(code, text)
        return response

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            client.close()
