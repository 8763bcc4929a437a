"""Helpers of the IMAP tests: test mails, a Dovecot client, reading back what reached JetStream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

from imapclient import IMAPClient
from nats.js import JetStreamContext

from services.intake.channels.imap_poller import DEFAULT_PROCESSED_KEYWORD, ImapMailbox
from shared import streams
from shared.events import MessageReceived
from tests.intake.dovecot import Dovecot


def sample_mail(number: int, message_id: str | None = None) -> bytes:
    message_id = message_id or f"<complaint-{number}@citizen.example.org>"
    return (
        f"From: Citoyen {number} <citoyen{number}@example.org>\r\n"
        f"To: plaintes@ombudsdesk.localhost\r\n"
        f"Subject: Plainte numero {number}\r\n"
        f"Message-ID: {message_id}\r\n"
        f"Date: Tue, 24 Nov 2026 09:{number % 60:02d}:00 +0100\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"Madame, Monsieur, je me plains de la facture {number}.\r\n"
    ).encode()


def mailbox_for(server: Dovecot, folder: str = "INBOX", **changes: object) -> ImapMailbox:
    values: dict[str, object] = {"name": "test", "host": server.host, "port": server.port, "ssl": False,
                                 "username": server.user, "password": server.password, "folder": folder,
                                 "recipient": "plaintes@ombudsdesk.localhost"}
    return ImapMailbox.model_validate({**values, **changes})


def imap_client(server: Dovecot) -> IMAPClient:
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.login(server.user, server.password)
    return client


def append_mails(server: Dovecot, mails: Sequence[bytes], folder: str = "INBOX") -> None:
    with imap_client(server) as client:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for mail in mails:
            client.append(folder, mail, msg_time=datetime(2026, 11, 24, 8, 30).astimezone())


def imported_message_ids(server: Dovecot, folder: str = "INBOX") -> set[str]:
    """Message-IDs of the messages our poller marked as taken in."""
    with imap_client(server) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search(["KEYWORD", DEFAULT_PROCESSED_KEYWORD])
        if not uids:
            return set()
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "FLAGS"])
        found = set()
        for data in fetched.values():
            assert b"\\Seen" in data[b"FLAGS"]
            header = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode()
            found.add(header.split(":", 1)[1].strip())
        return found


async def received_events(js: JetStreamContext) -> list[MessageReceived]:
    """Every MessageReceived in the intake stream, in order."""
    info = await js.stream_info(streams.STREAM_INTAKE)
    events: list[MessageReceived] = []
    if info.state.messages == 0:
        return events
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(streams.STREAM_INTAKE, sequence)
        if message.subject == streams.SUBJECT_MESSAGE_RECEIVED:
            events.append(MessageReceived.model_validate_json(message.data))
    return events


async def wait_for_events(js: JetStreamContext, count: int, timeout: float = 15.0) -> list[MessageReceived]:
    deadline = time.monotonic() + timeout
    while True:
        events = await received_events(js)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.05)


async def wait_for_marks(server: Dovecot, count: int, folder: str = "INBOX", timeout: float = 15.0) -> set[str]:
    """The Message-IDs marked as taken in, once there are `count` of them (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        marked = await asyncio.to_thread(imported_message_ids, server, folder)
        if len(marked) >= count or time.monotonic() > deadline:
            return marked
        await asyncio.sleep(0.05)
