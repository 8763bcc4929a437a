"""One complaint's path through the three services' logs (issue 14): the real stack (three service processes, JSON
logs as in production, NATS, a mail catcher) takes one mail in; the message key, read from the event intake
published (not from the logs), is then found in a log line of each service, and it leads from intake's SMTP session
(its spool id) to the registry's complaint number and from that number to the notice the notifier sent."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import nats
import pytest

from shared import streams
from shared.events import MessageReceived
from tests.e2e.stack import complaint_mail, logged_processes, send_mail_async


def json_lines(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by the process's end
    return entries


async def published_message_key(nats_url: str) -> str:
    """The key of the one MessageReceived intake published, read from the stream itself."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info(streams.STREAM_INTAKE)
        keys = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(streams.STREAM_INTAKE, sequence)
            if message.subject == streams.SUBJECT_MESSAGE_RECEIVED:
                keys.append(MessageReceived.model_validate_json(message.data).message_key)
        [key] = keys
        return key
    finally:
        await connection.close()


@pytest.mark.slow
async def test_one_message_key_follows_a_complaint_through_the_three_services(nats_server, tmp_path, monkeypatch):
    async with logged_processes(nats_server.url, tmp_path, monkeypatch) as running:
        config, catcher, services = running.config, running.catcher, running.services
        mail = complaint_mail("Paul Martin <paul.martin@example.org>", "Plainte : le bus ne passe plus",
                              "Bonjour,\nle bus 12 ne passe plus depuis lundi.\n",
                              message_id=f"<{uuid.uuid4().hex}@example.org>")
        await send_mail_async(config.smtp_port, mail)
        acknowledgment = await catcher.next_mail(timeout=30)
        key = await published_message_key(nats_server.url)
        await asyncio.sleep(1.0)  # the notifier's "sent" line follows the relay's 250 by moments

    logs = {name: json_lines(service.log_path) for name, service in services.items()}
    carrying = {name: [entry for entry in entries if entry.get("message_key") == key] for name, entries in logs.items()}
    for name, entries in carrying.items():
        assert entries, f"no log line of {name} carries the message key {key}"
        assert all(entry.get("service") == name for entry in entries)

    # Intake: the SMTP session's spool id is on the line that names the key.
    spool_ids = {entry["spool_id"] for entry in carrying["intake"] if "spool_id" in entry}
    assert spool_ids and any(entry.get("event") == "smtp.spooled" and entry.get("spool_id") in spool_ids
                             for entry in logs["intake"])
    # Registry: the line with the key names the complaint number given.
    numbers = {entry["complaint_number"] for entry in carrying["registry"] if entry.get("complaint_number")}
    assert len(numbers) == 1, carrying["registry"]
    [number] = numbers
    assert number in acknowledgment["Subject"]
    # Notifier: the acknowledgment recorded under the key, then sent under the number.
    assert any(entry.get("complaint_number") == number for entry in carrying["notifier"])
    assert any(entry.get("event") == "notice.sent" and entry.get("complaint_number") == number
               for entry in logs["notifier"])
