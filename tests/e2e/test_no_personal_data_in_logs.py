"""No personal data in any log line (issue 10): a complaint with a unique name, address and phrase goes through the
real stack (three service processes, JSON logs as in production, NATS, a mail catcher); then every line every
service wrote is searched for each of them. Also a refused recipient and a failed AUTH-less conversation, whose log
lines used to carry the address."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import uuid

from tests.e2e.stack import complaint_mail, logged_processes, send_mail_async


def refused_recipient(port: int, address: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example.org")
        client.mail("sender@example.org")
        code, _ = client.rcpt(address)
        return code


async def test_a_complaint_leaves_no_personal_data_in_any_log_line(nats_server, tmp_path, monkeypatch):
    unique = uuid.uuid4().hex[:10]
    name = f"Zéphyrine Quillebœuf{unique}"
    address = f"zq.{unique}@example.org"
    phrase = f"le lampadaire {unique} de la rue clignote"
    async with logged_processes(nats_server.url, tmp_path, monkeypatch) as running:
        config, catcher, services = running.config, running.catcher, running.services
        mail = complaint_mail(f"{name} <{address}>", f"Plainte : {phrase}",
                              f"Bonjour,\n{phrase} depuis trois semaines.\n{name}\n{address}",
                              message_id=f"<{uuid.uuid4().hex}@example.org>")  # not personal data
        await send_mail_async(config.smtp_port, mail)
        acknowledgment = await catcher.next_mail(timeout=30)
        refused = await asyncio.to_thread(refused_recipient, config.smtp_port, f"other.{unique}@example.org")

    assert acknowledgment["To"].addresses[0].addr_spec == address  # the complaint went all the way through
    assert refused == 550
    lines = [line for service in services.values() for line in service.log_path.read_text("utf-8").splitlines()]
    assert len(lines) > 10, lines  # the services did log
    json_lines = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry.get("event") == "smtp.recipient_refused" for entry in json_lines)
    for secret in (name, name.split()[1], address, address.split("@")[0], phrase, unique):
        hits = [line for line in lines if secret.lower() in line.lower()]
        # Escaped forms too: JSON writes "œ" as "\u0153" unless told otherwise.
        hits += [line for line in lines if json.dumps(secret)[1:-1].lower() in line.lower() and line not in hits]
        assert hits == [], f"{secret!r} in the logs:\n" + "\n".join(hits)
    assert os.path.getsize(services["intake"].log_path) > 0
