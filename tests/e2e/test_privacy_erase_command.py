"""`ombudsdesk privacy erase EMAIL --yes`, as an operator runs it (the real `ombudsdesk` command in a process of its
own, against a running system): one command does the register's part and then the streams' part — afterwards no
event in any stream carries the citizen's address, while another citizen's events are still there."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import nats
import pytest

from shared import streams
from tests.e2e.stack import complaint_mail, running_stack, send_mail_async

pytestmark = pytest.mark.slow

ERASED = "erase.me.7f3a@example.org"
KEPT = "keep.me.91c2@example.org"
EVENT_STREAMS = (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER)


async def stream_payloads(nats_url: str) -> list[bytes]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        payloads = []
        for stream in EVENT_STREAMS:
            info = await js.stream_info(stream)
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    payloads.append((await js.get_msg(stream, sequence)).data or b"")
                except nats.js.errors.NotFoundError:
                    continue  # deleted
        return payloads
    finally:
        await connection.close()


async def test_one_command_erases_the_register_part_and_the_streams(nats_server, tmp_path):
    async with running_stack(nats_server.url, tmp_path) as running:
        config, catcher = running.config, running.catcher
        for sender in (ERASED, KEPT):
            await send_mail_async(config.smtp_port, complaint_mail(f"Citoyen <{sender}>", "Plainte", "Bonjour."))
            await catcher.next_mail(timeout=20)
        before = await stream_payloads(config.nats_url)
        assert any(ERASED.encode() in payload for payload in before)
        environment = {**os.environ, **config.environment()}
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "ombudsdesk", "privacy", "erase", ERASED, "--yes", "--lang", "en"],
            env=environment, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr + result.stdout
        assert "erased" in result.stdout  # the streams' part reported what it erased
        after = await stream_payloads(config.nats_url)
    assert not [payload for payload in after if ERASED.encode() in payload]
    assert any(KEPT.encode() in payload for payload in after)
