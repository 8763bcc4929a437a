"""Issue 2's crash test: the registry is killed (SIGKILL) while mails are flowing, then started again.

Every mail must be registered exactly once, numbers gap-free, and one acknowledgment go out per complaint.
The services run as real processes, exactly as `make run` starts them.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.e2e.stack import ServiceProcess, StackConfig, complaint_mail, send_mail_async, start_catcher
from ombudsdesk.embedded_nats import wait_for_port

MAILS = 40
NUMBER = re.compile(r"MED-\d{4}-(\d{5})")


@pytest.mark.slow
async def test_registry_killed_mid_flow_loses_nothing_and_duplicates_nothing(nats_server, tmp_path):
    catcher = await start_catcher(tmp_path / "outbox")
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=catcher.port)
    services = {name: ServiceProcess(name, config, tmp_path) for name in ("registry", "notifier", "intake")}
    for service in services.values():
        service.start()
    try:
        await asyncio.to_thread(wait_for_port, config.smtp_port, 60)
        for index in range(MAILS):
            mail = complaint_mail(f"Citizen {index} <citizen{index}@example.org>", f"Plainte numéro {index}",
                                  f"Bonjour, voici ma plainte {index}.", message_id=f"<crash-{index}@example.org>")
            await send_mail_async(config.smtp_port, mail)
            if index == MAILS // 3:
                services["registry"].kill()
            if index == 2 * MAILS // 3:
                services["registry"].start()
        acknowledgments = [await catcher.next_mail(timeout=60) for _ in range(MAILS)]
        with pytest.raises(asyncio.TimeoutError):
            await catcher.next_mail(timeout=3)
    finally:
        for service in services.values():
            service.terminate()
        await catcher.stop()

    numbers = sorted(int(NUMBER.search(mail["Subject"]).group(1)) for mail in acknowledgments)
    assert numbers == list(range(1, MAILS + 1))
    recipients = sorted(mail["To"].addresses[0].addr_spec for mail in acknowledgments)
    assert recipients == sorted(f"citizen{index}@example.org" for index in range(MAILS))
