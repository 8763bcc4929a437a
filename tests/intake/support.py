"""Helpers of the intake tests: run the real intake service on free ports, read what it put into JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import nats
from nats.js.errors import NotFoundError

from ombudsdesk.embedded_nats import free_port
from shared import streams
from services.intake.settings import IntakeSettings
from services.intake.wiring import IntakeService, build_intake

COMPLAINTS = "plaintes@ombudsdesk.localhost"


def intake_settings(nats_url: str, tmp_path: Path, **overrides: Any) -> IntakeSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "var_dir": tmp_path / "var",
        "smtp_port": free_port(),
        "intake_health_port": 0,
        "complaint_addresses": [COMPLAINTS],
    }
    values.update(overrides)
    return IntakeSettings(**values)


@contextlib.asynccontextmanager
async def running_intake(nats_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[IntakeService]:
    service = build_intake(intake_settings(nats_url, tmp_path, **overrides))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def settled(intake: IntakeService, timeout: float = 60.0) -> None:
    """Wait until intake has worked through its spool: every message SMTP answered 250 for has its event published
    (or is quarantined), and the seen-set writes that follow are done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await intake.spool_backlog() > 0:
        if loop.time() > deadline:
            raise AssertionError(f"intake's spool still holds {await intake.spool_backlog()} message(s)")
        await asyncio.sleep(0.05)
    await intake.pipeline.drain()


async def stream_events(nats_url: str, subject: str, stream: str = streams.STREAM_INTAKE) -> list[bytes]:
    """Every payload published on `subject`, read straight from the stream by sequence."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        payloads: list[bytes] = []
        if info.state.messages == 0:
            return payloads
        for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                message = await js.get_msg(stream, sequence)
            except NotFoundError:
                continue
            if message.subject == subject:
                payloads.append(message.data)
        return payloads
    finally:
        await connection.close()


async def read_object(nats_url: str, bucket: str, name: str) -> bytes:
    connection = await nats.connect(nats_url)
    try:
        store = await connection.jetstream().object_store(bucket)
        return bytes((await store.get(name)).data)
    finally:
        await connection.close()


def citizen_mail(
    subject: str = "Réclamation: facture d'eau",
    body: str = "Bonjour,\n\nJe conteste la facture reçue le 3 novembre. Je vous remercie de votre réponse.\n",
    sender: str = "Jeanne Dupont <jeanne.dupont@example.org>",
    message_id: str | None = "<20261124.0001@example.org>",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = COMPLAINTS
    message["Subject"] = subject
    message["Date"] = "Tue, 24 Nov 2026 09:15:00 +0100"
    if message_id:
        message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def send(port: int, message: EmailMessage | bytes, recipients: list[str] | None = None,
         sender: str = "jeanne.dupont@example.org") -> dict[str, Any]:
    """One real SMTP conversation with smtplib (blocking: call it through asyncio.to_thread)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        if isinstance(message, EmailMessage):
            return client.send_message(message, from_addr=sender, to_addrs=recipients or [COMPLAINTS])
        return client.sendmail(sender, recipients or [COMPLAINTS], message)


async def asend(port: int, message: EmailMessage | bytes, **kwargs: Any) -> dict[str, Any]:
    return await asyncio.to_thread(send, port, message, **kwargs)
