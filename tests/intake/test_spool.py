"""Intake's spool over a real NATS server: 250 once the raw message is durable, the event right after, nothing lost
when the parser is away or killed, a message that keeps failing quarantined instead of retried for ever."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ombudsdesk.embedded_nats import free_port
from shared import streams
from shared.events import Channel, MessageReceived
from shared.messaging import DeliveryPolicy
from services.intake.channels.spool import (
    ENVELOPE_HEADER,
    SpoolEntryInvalid,
    SpoolEnvelope,
    ensure_spool,
    envelope_headers,
    read_envelope,
)
from services.intake.channels.spool_worker import SpoolWorker
from tests.intake.support import COMPLAINTS, asend, citizen_mail, running_intake, settled, stream_events

ROOT = Path(__file__).resolve().parents[2]


async def received(nats_url: str) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(data) for data in
            await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]


def test_the_envelope_travels_in_a_header_and_comes_back_whole():
    envelope = SpoolEnvelope(spool_id="abc", channel=Channel.EMAIL,
                             received_at=datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc),
                             envelope_sender="jeanne@example.org", envelope_recipients=(COMPLAINTS,), source="smtp")
    headers = envelope_headers(envelope)
    assert headers["Nats-Msg-Id"] == "spool:abc"
    assert read_envelope(headers) == envelope


@pytest.mark.parametrize("headers", [None, {}, {ENVELOPE_HEADER: "{not json"}, {ENVELOPE_HEADER: '{"schema_version": 9}'}])
def test_an_entry_without_a_readable_envelope_is_named_as_such(headers):
    with pytest.raises(SpoolEntryInvalid):
        read_envelope(headers)


async def test_250_means_spooled_and_a_parser_elsewhere_publishes_the_event(nats_server, tmp_path):
    """A front alone answers 250 and keeps the mail in the spool; a parser started later publishes its event."""
    async with running_intake(nats_server.url, tmp_path / "front", intake_role="front") as front:
        assert front.spool_worker is None
        assert await asend(front.smtp_port, citizen_mail()) == {}
        assert await front.spool_backlog() == 1
        assert await received(nats_server.url) == []
        async with running_intake(nats_server.url, tmp_path / "parser", intake_role="parser") as parser:
            assert parser.smtp is None and parser.channels == []
            await settled(parser)
        health = (await front.health_report())[1]
    [event] = await received(nats_server.url)
    assert event.subject_line == "Réclamation: facture d'eau" and event.source == "smtp"
    assert event.recipients == (COMPLAINTS,)
    assert health["spool_backlog"] == 0 and health["spooled_since_start"] == {"spooled": 1, "duplicate": 0}


def parser_process(nats_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "OMBUDSDESK_NATS_URL": nats_url,
        "OMBUDSDESK_VAR_DIR": str(tmp_path / "parser"),
        "OMBUDSDESK_INTAKE_ROLE": "parser",
        "OMBUDSDESK_INTAKE_HEALTH_PORT": "0",
        "OMBUDSDESK_LOG_LEVEL": "WARNING",
        # Same as the front below: the spool consumer's ack wait (redelivery after a kill) follows from them.
        "OMBUDSDESK_ACK_WAIT_SECONDS": "2",
        "OMBUDSDESK_PARSE_TIMEOUT_SECONDS": "0.5",
    }
    return subprocess.Popen([sys.executable, "-m", "services.intake"], cwd=ROOT, env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def published_count(intake) -> int:  # noqa: ANN001
    """Messages in the intake event stream (here all MessageReceived): one cheap request, unlike reading them."""
    return (await intake.pipeline.js.stream_info(streams.STREAM_INTAKE)).state.messages


async def test_a_parser_killed_mid_spool_loses_and_repeats_nothing(nats_server, tmp_path):
    total = 600
    mails = [citizen_mail(subject=f"Réclamation {number}", message_id=f"<spool.{number}@example.org>")
             for number in range(total)]
    async with running_intake(nats_server.url, tmp_path / "front", intake_role="front", ack_wait_seconds=2,
                              parse_timeout_seconds=0.5) as front:
        for mail in mails:
            assert await asend(front.smtp_port, mail) == {}
        assert await front.spool_backlog() == total
        parser = parser_process(nats_server.url, tmp_path)
        try:
            for _ in range(3000):
                if await published_count(front) >= 20:
                    break
                await asyncio.sleep(0.01)
            parser.send_signal(signal.SIGKILL)
            parser.wait(10)
            done = await published_count(front)
            assert 20 <= done < total, "the kill must land in the middle of the spool"
            # Whatever has no event yet is still in the spool (with those whose ack the kill cut off).
            assert await front.spool_backlog() >= total - done
            parser = parser_process(nats_server.url, tmp_path)
            await settled(front, timeout=120)
        finally:
            parser.terminate()
            parser.wait(30)
    events = await received(nats_server.url)
    assert Counter(event.subject_line for event in events) == Counter(f"Réclamation {n}" for n in range(total))


class FailingFront:
    """Stands in for the pipeline: raises `error` for the first `failures` calls, then succeeds."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    async def accept(self, raw: bytes, **details: object) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


async def spool_and_work(nats_server, tmp_path, front, *, headers_of=None):  # noqa: ANN001, ANN201
    """One mail into the spool over SMTP (front only), then a worker with `front` in place of the pipeline."""
    async with running_intake(nats_server.url, tmp_path, intake_role="front") as intake:
        assert await asend(intake.smtp_port, citizen_mail()) == {}
        policy = DeliveryPolicy(durable=streams.CONSUMER_INTAKE_SPOOL, max_deliveries=3, first_retry_seconds=0.05)
        worker = SpoolWorker(lambda: intake.pipeline.js, front, intake.pipeline.quarantine_unprocessable, policy)
        await worker.start()
        try:
            await settled(intake, timeout=30)
        finally:
            await worker.stop()
        return worker, await intake.pipeline.quarantine.records()


async def test_a_message_that_keeps_failing_is_quarantined_and_replays_once(nats_server, tmp_path):
    front = FailingFront(RuntimeError("a bug in this version"), failures=100)
    worker, [record] = await spool_and_work(nats_server, tmp_path, front)
    assert front.calls == 3 and worker.counters["given_up"] == 1
    assert "failed 3 times: RuntimeError: a bug in this version" in record.reason
    assert record.source == "smtp" and record.envelope_recipients == (COMPLAINTS,)
    # After the fix, `ombudsdesk intake quarantine replay` gives the normal event, once.
    async with running_intake(nats_server.url, tmp_path / "fixed", intake_role="front") as fixed:
        outcome = await fixed.pipeline.replay(record.message_key)
        again = await fixed.pipeline.replay(record.message_key) if await fixed.pipeline.quarantine.count() else None
    assert outcome.status.value == "processed" and again is None
    [event] = await received(nats_server.url)
    assert event.message_key == record.message_key


async def test_nats_trouble_is_retried_for_as_long_as_it_lasts_never_quarantined(nats_server, tmp_path):
    front = FailingFront(TimeoutError("JetStream did not answer"), failures=5)  # more than max_deliveries
    worker, records = await spool_and_work(nats_server, tmp_path, front)
    assert records == []
    assert front.calls == 6 and worker.counters == {"done": 1, "retried": 5, "given_up": 0}


async def test_a_spool_entry_without_its_envelope_is_quarantined_not_lost(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path, intake_role="all") as intake:
        js = intake.pipeline.js
        await js.publish(streams.SUBJECT_INTAKE_SPOOL, citizen_mail().as_bytes(), stream=streams.STREAM_INTAKE_SPOOL)
        await settled(intake)
        [record] = await intake.pipeline.quarantine.records()
    assert ENVELOPE_HEADER in record.reason and record.source == "spool"
    assert await received(nats_server.url) == []


async def test_health_reports_the_role_and_a_port_free_parser_needs_no_smtp(nats_server, tmp_path):
    port = free_port()
    async with running_intake(nats_server.url, tmp_path, intake_role="parser", smtp_port=port) as parser:
        report = (await parser.health_report())[1]
    assert report["role"] == "parser" and report["smtp_port"] is None and report["spool_backlog"] == 0
    assert report["spool_worker"] == {"done": 0, "retried": 0, "given_up": 0, "in_flight": 0}


class CrashingFront:
    """Takes mails in, except the one with "poison" in it: starting that one "kills the process" (`crashed` is set
    and the call never returns, as the test then drops the worker without a word to JetStream)."""

    def __init__(self) -> None:
        self.taken_in: list[bytes] = []
        self.running = 0
        self.running_at_crash: int | None = None
        self.crashed = asyncio.Event()

    async def accept(self, raw: bytes, **details: object) -> None:
        self.running += 1
        try:
            if b"poison" in raw:
                self.running_at_crash = self.running
                self.crashed.set()
                await asyncio.Event().wait()
            await asyncio.sleep(0.01)
            self.taken_in.append(raw)
        finally:
            self.running -= 1


async def die(worker: SpoolWorker) -> None:
    """What a SIGKILL leaves: no ack, no nak, no more `in_progress`; JetStream redelivers after the ack wait."""
    tasks = [worker._task, *worker._in_flight]  # noqa: SLF001
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await worker._subscription.unsubscribe()  # noqa: SLF001


async def test_only_the_message_that_kills_the_process_is_quarantined(nats_server, tmp_path):
    """A mail that crashes intake each time it is started goes to the quarantine; the mails that were in hand with
    it when it crashed (their JetStream delivery count raised each time) are taken in, once each."""
    async with running_intake(nats_server.url, tmp_path, intake_role="front") as intake:
        js = intake.pipeline.js
        await ensure_spool(js, 1, ack_wait_seconds=1)  # redeliveries within the test's time
        policy = DeliveryPolicy(durable=streams.CONSUMER_INTAKE_SPOOL, max_deliveries=2, ack_wait_seconds=1)
        mails = [citizen_mail(subject="poison", message_id="<poison@example.org>")]
        mails += [citizen_mail(subject=f"plainte {n}", message_id=f"<innocent.{n}@example.org>") for n in range(6)]
        for mail in mails[:4]:
            assert await asend(intake.smtp_port, mail) == {}
        fronts: list[CrashingFront] = []
        for life in range(8):
            front = CrashingFront()
            fronts.append(front)
            worker = SpoolWorker(lambda: js, front, intake.pipeline.quarantine_unprocessable, policy)
            await worker.start()
            if life == 1:  # fresh mails arrive while the poison waits for its turn alone: they wait too
                for mail in mails[4:]:
                    assert await asend(intake.smtp_port, mail) == {}
            done = asyncio.ensure_future(settled(intake, timeout=30))
            crash = asyncio.ensure_future(front.crashed.wait())
            await asyncio.wait({done, crash}, return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                crash.cancel()
                await worker.stop()
                break
            done.cancel()
            await die(worker)
        [record] = await intake.pipeline.quarantine.records()
        backlog = await intake.spool_backlog()
    taken_in = [raw for front in fronts for raw in front.taken_in]
    assert b"poison" not in b"".join(taken_in) and backlog == 0
    assert sorted(raw.count(b"innocent") for raw in taken_in) == [1] * 6  # each innocent mail once
    assert "2 earlier attempts never finished" in record.reason
    # Once redelivered, the poison was started alone each time (the first time it was a fresh mail among others).
    assert [front.running_at_crash for front in fronts[1:] if front.crashed.is_set()] == [1, 1]


async def test_health_says_so_when_parse_threads_are_stuck_at_the_cap(nats_server, tmp_path):
    from services.intake.pipeline import MAX_STUCK_PARSES

    async with running_intake(nats_server.url, tmp_path) as intake:
        assert (await intake.health_report())[0] is True
        intake.pipeline.stuck_parses = MAX_STUCK_PARSES  # as if that many hostile mails hung their parse threads
        healthy, report = await intake.health_report()
        intake.pipeline.stuck_parses = 0
    assert healthy is False and report["status"].startswith("parsers stuck")
    assert report["stuck_parses"] == MAX_STUCK_PARSES
