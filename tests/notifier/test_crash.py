"""Kill the notifier (a real `python -m services.notifier` process, SIGKILL) in the middle of 500 notices and
restart it: every notice is delivered; none twice, except that a notice caught between the relay's `250` and our
commit may be sent once more with the same Message-ID (at-least-once: losing a notice is worse, see outbox.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from services.notifier.outbox import Outbox
from shared.database import create_engine
from shared.events import Party
from tests.notifier.support import SmtpSink, eventually, publish, registered_event, wait_until

NOTICES = 500
ROOT = Path(__file__).resolve().parents[2]


def start_notifier_process(nats_url: str, database_url: str, sink: SmtpSink, tmp_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMBUDSDESK_NATS_URL": nats_url,
        "OMBUDSDESK_NOTIFIER_DATABASE_URL": database_url,
        "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"),
        "OMBUDSDESK_RELAY_PORT": str(sink.port),
        "OMBUDSDESK_RELAY_POLL_SECONDS": "0.2",
        "OMBUDSDESK_RELAY_LEASE_SECONDS": "2",
        "OMBUDSDESK_ACK_WAIT_SECONDS": "2",
        "OMBUDSDESK_LOG_LEVEL": "WARNING",
        "OMBUDSDESK_NOTIFIER_HEALTH_PORT": "0",  # tests run side by side: no fixed probe port
    }
    log = open(tmp_path / "notifier.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "services.notifier"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


async def interrupt_and_restart(
    nats_url: str, database_url: str, sink: SmtpSink, tmp_path: Path, notices: int, interruption: signal.Signals
) -> list[str]:
    """Publish `notices` acknowledgments, interrupt the notifier once a fifth is out, restart it, wait for all;
    returns the complaint numbers."""
    events = [registered_event(f"MED-2026-{index:05d}", complainant=Party(name=f"Citizen {index}",
                                                                          email=f"citizen{index}@example.org"))
              for index in range(1, notices + 1)]
    process = start_notifier_process(nats_url, database_url, sink, tmp_path)
    try:
        await publish(nats_url, *events)
        await wait_until(lambda: len(sink.messages) >= notices // 5, timeout=60, what="a first part sent")
        process.send_signal(interruption)
        process.wait(timeout=15)
        assert len(sink.messages) < notices, "interrupted too late to prove anything"

        process = start_notifier_process(nats_url, database_url, sink, tmp_path)
        await wait_until(
            lambda: len({mail["Message-ID"] for mail in sink.messages}) >= notices,
            timeout=120,
            what="every notice delivered after the restart",
        )
        engine = create_engine(database_url)
        outbox = Outbox(engine)

        async def all_sent_and_reported() -> bool:
            recorded = await outbox.notices()
            return len(recorded) == notices and all(n.status == "sent" and n.outcome_published for n in recorded)

        try:
            await eventually(all_sent_and_reported, timeout=30, what="the outbox settled")
        finally:
            await engine.dispose()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, (tmp_path / "notifier.log").read_text()[-3000:]
    return [event.complaint_number for event in events]


@pytest.mark.slow
async def test_killed_in_the_middle_of_500_notices_every_notice_arrives(
    nats_server, database_url, smtp_sink: SmtpSink, tmp_path: Path
):
    numbers = await interrupt_and_restart(nats_server.url, database_url, smtp_sink, tmp_path, NOTICES, signal.SIGKILL)
    per_message_id = Counter(mail["Message-ID"] for mail in smtp_sink.messages)
    per_case = Counter(mail["Subject"].split("]")[0].lstrip("[") for mail in smtp_sink.messages)
    assert set(per_case) == set(numbers)
    repeated = {message_id: count for message_id, count in per_message_id.items() if count > 1}
    # One kill leaves at most one notice in doubt (the relay sends one notice at a time).
    assert len(repeated) <= 1 and all(count == 2 for count in repeated.values()), repeated
    assert len(smtp_sink.messages) <= NOTICES + 1


@pytest.mark.slow
async def test_stopped_in_the_middle_of_a_batch_sends_nothing_twice(
    nats_server, database_url, smtp_sink: SmtpSink, tmp_path: Path
):
    numbers = await interrupt_and_restart(nats_server.url, database_url, smtp_sink, tmp_path, 200, signal.SIGTERM)
    subjects = [mail["Subject"].split("]")[0].lstrip("[") for mail in smtp_sink.messages]
    assert sorted(subjects) == sorted(numbers)  # SIGTERM lets the notice in flight finish: exactly once
