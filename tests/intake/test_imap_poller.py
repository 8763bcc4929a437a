"""The IMAP poller against a real Dovecot and a real NATS: batches, kills mid-batch, failures, UIDVALIDITY, IDLE."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog.testing
from nats.js import JetStreamContext
from pydantic import SecretStr

from ombudsdesk.embedded_nats import free_port
from services.intake.channels.imap_poller import (
    ImapIntake,
    ImapMailbox,
    MailboxPoller,
    PollerTiming,
    STUCK_AFTER_ATTEMPTS,
    PositionStore,
)
from services.intake.message.message_key import message_key
from services.intake.pipeline import AcceptOutcome, IntakePipeline
from services.intake.settings import IntakeSettings
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from shared.settings import CommonSettings
from tests.intake.imap_support import (
    append_mails,
    imap_client,
    imported_message_ids,
    mailbox_for,
    received_events,
    sample_mail,
    wait_for_events,
    wait_for_marks,
)

FAST = PollerTiming(poll_seconds=0.2, idle_seconds=30, first_retry_seconds=0.05, longest_retry_seconds=0.2,
                    timeout_seconds=10)


class CountingPipeline(IntakePipeline):
    """The real pipeline, counting the messages handed to it (subclasses inject failures and kills)."""

    def __init__(self, broker: Any) -> None:
        super().__init__(broker, IntakeSettings(nats_url="nats://unused"))
        self.calls: list[str] = []

    async def accept(self, raw: bytes, **kwargs: Any) -> AcceptOutcome:
        self.calls.append(message_key(raw))
        return await super().accept(raw, **kwargs)


@pytest.fixture
async def jetstream(nats_server) -> AsyncIterator[tuple[Any, JetStreamContext]]:
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    await broker.connect()
    js = broker.connection.jetstream()
    await ensure_streams(js)
    yield broker, js
    await broker.stop()


def expected_ids(numbers: range) -> set[str]:
    return {f"<complaint-{number}@citizen.example.org>" for number in numbers}


async def test_batch_is_imported_once_marked_after_and_restart_reads_nothing_again(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(12)])
    acceptor = CountingPipeline(broker)
    positions = PositionStore(lambda: js)
    poller = MailboxPoller(mailbox_for(dovecot), acceptor, positions, timing=FAST)
    assert await poller.sync_once() == 12
    events = await received_events(js)
    assert len(events) == 12 and len({event.message_key for event in events}) == 12
    assert all(event.recipients == ("plaintes@ombudsdesk.localhost",) for event in events)
    # INTERNALDATE, the time the mailbox received the mail, not the time we polled.
    assert {event.received_at.date().isoformat() for event in events} == {"2026-11-24"}
    assert imported_message_ids(dovecot) == expected_ids(range(12))

    restarted = MailboxPoller(mailbox_for(dovecot), CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    assert await restarted.sync_once() == 0
    await restarted.stop()
    await poller.stop()
    assert len(await received_events(js)) == 12


async def test_nothing_is_marked_while_the_pipeline_fails_then_everything_goes_in(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(3)])

    class BrokenPipeline(CountingPipeline):
        async def accept(self, raw: bytes, **kwargs: Any) -> AcceptOutcome:
            raise ConnectionError("JetStream unavailable")

    poller = MailboxPoller(mailbox_for(dovecot), BrokenPipeline(broker), PositionStore(lambda: js), timing=FAST)
    with pytest.raises(ConnectionError):
        await poller.sync_once()
    await poller.stop()
    assert imported_message_ids(dovecot) == set()
    assert await received_events(js) == []

    poller = MailboxPoller(mailbox_for(dovecot), CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    assert await poller.sync_once() == 3
    await poller.stop()
    assert imported_message_ids(dovecot) == expected_ids(range(3))


async def test_a_message_that_keeps_failing_does_not_hold_up_the_others_and_is_never_skipped(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(5)])
    poisoned = message_key(sample_mail(1))

    class OneBadMessage(CountingPipeline):
        broken = True

        async def accept(self, raw: bytes, **kwargs: Any) -> AcceptOutcome:
            if self.broken and message_key(raw) == poisoned:
                raise TimeoutError("object store timed out on this message")
            return await super().accept(raw, **kwargs)

    pipeline = OneBadMessage(broker)
    mailbox = mailbox_for(dovecot)
    positions = PositionStore(lambda: js)
    poller = MailboxPoller(mailbox, pipeline, positions, timing=FAST)
    for _ in range(STUCK_AFTER_ATTEMPTS):  # held up while it has not failed often enough to be set aside
        with pytest.raises(TimeoutError):
            await poller.sync_once()
    assert len(await received_events(js)) == 1
    with pytest.raises(TimeoutError):
        await poller.sync_once()  # now the others go first
    assert imported_message_ids(dovecot) == expected_ids(range(5)) - expected_ids(range(1, 2))
    assert len(await received_events(js)) == 4
    assert (await positions.load(mailbox.state_key())).last_uid == 1  # never past the failing message
    assert poller.status()["stuck_uids"] == [2]

    pipeline.broken = False
    assert await poller.sync_once() == 1
    await poller.stop()
    assert imported_message_ids(dovecot) == expected_ids(range(5))
    # Past it now; the later ones, already marked, are skipped by the search whatever the position says.
    assert (await positions.load(mailbox.state_key())).last_uid >= 2
    assert poller.status()["stuck_uids"] == []
    assert len(await received_events(js)) == 5


class KillableAcceptor(CountingPipeline):
    """Publishes, then hangs at the chosen call (before or after the event is durable) so the test can kill there."""

    def __init__(self, broker: Any, hang_at_call: int, after_publish: bool) -> None:
        super().__init__(broker)
        self.hang_at_call = hang_at_call
        self.after_publish = after_publish
        self.hanging = asyncio.Event()

    async def accept(self, raw: bytes, **kwargs: Any) -> AcceptOutcome:
        if len(self.calls) + 1 == self.hang_at_call and not self.after_publish:
            self.calls.append(message_key(raw))
            self.hanging.set()
            await asyncio.Event().wait()
        outcome = await super().accept(raw, **kwargs)
        if len(self.calls) == self.hang_at_call and self.after_publish:
            self.hanging.set()
            await asyncio.Event().wait()
        return outcome


async def kill_poller_at(dovecot, broker: Any, js: JetStreamContext, call: int, after_publish: bool) -> None:
    acceptor = KillableAcceptor(broker, call, after_publish)
    intake = ImapIntake([mailbox_for(dovecot)], acceptor, PositionStore(lambda: js), timing=FAST)
    await intake.start()
    await asyncio.wait_for(acceptor.hanging.wait(), 15)
    [task] = intake._tasks
    task.cancel()  # the kill: the coroutine dies where it stands, its IMAP connection is cut
    await asyncio.gather(task, return_exceptions=True)
    await intake.pollers[0].stop()
    # At the kill: every marked message has its event in JetStream.
    published = {event.message_key for event in await received_events(js)}
    key_of = {f"<complaint-{number}@citizen.example.org>": message_key(sample_mail(number)) for number in range(30)}
    assert {key_of[message_id] for message_id in imported_message_ids(dovecot)} <= published


async def test_kill_in_the_middle_of_a_batch_and_restart_gives_each_message_exactly_one_event(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(30)])
    # Killed after message 10's event is durable but before it is marked: the worst moment.
    await kill_poller_at(dovecot, broker, js, call=10, after_publish=True)
    assert len(imported_message_ids(dovecot)) == 9
    # Restarted, killed again while message 20 is being accepted (its event not yet published).
    await kill_poller_at(dovecot, broker, js, call=11, after_publish=False)

    final = CountingPipeline(broker)
    intake = ImapIntake([mailbox_for(dovecot)], final, PositionStore(lambda: js), timing=FAST)
    await intake.start()
    events = await wait_for_events(js, 30)
    marked = await wait_for_marks(dovecot, 30)
    await intake.stop()
    counts = Counter(event.message_key for event in events)
    assert len(events) == 30 and set(counts.values()) == {1}
    assert counts.keys() == {message_key(sample_mail(number)) for number in range(30)}
    assert marked == expected_ids(range(30))


async def test_network_cut_mid_batch_reconnects_and_loses_nothing(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(20)])
    holder: dict[str, MailboxPoller] = {}

    class CuttingAcceptor(CountingPipeline):
        async def accept(self, raw: bytes, **kwargs: Any) -> AcceptOutcome:
            outcome = await super().accept(raw, **kwargs)
            if len(self.calls) in (5, 13):
                holder["poller"]._drop()  # the connection dies under the poller, between event and mark
            return outcome

    acceptor = CuttingAcceptor(broker)
    intake = ImapIntake([mailbox_for(dovecot)], acceptor, PositionStore(lambda: js), timing=FAST)
    holder["poller"] = intake.pollers[0]
    await intake.start()
    events = await wait_for_events(js, 20)
    marked = await wait_for_marks(dovecot, 20)
    await intake.stop()
    assert len(events) == 20 and len({event.message_key for event in events}) == 20
    assert marked == expected_ids(range(20))
    # The messages whose mark was lost with the connection were handed over again and recognised as duplicates.
    assert len(acceptor.calls) == 22


async def test_uidvalidity_change_rereads_the_mailbox_without_duplicates(dovecot, jetstream):
    broker, js = jetstream
    folder = "Plaintes"
    append_mails(dovecot, [sample_mail(number) for number in range(3)], folder)
    mailbox = mailbox_for(dovecot, folder)
    positions = PositionStore(lambda: js)
    poller = MailboxPoller(mailbox, CountingPipeline(broker), positions, timing=FAST)
    assert await poller.sync_once() == 3
    await poller.stop()
    before = await positions.load(mailbox.state_key())
    assert before is not None and before.last_uid == 3

    with imap_client(dovecot) as client:  # the mailbox is restored from a backup: new UIDVALIDITY, UIDs from 1
        client.delete_folder(folder)
    append_mails(dovecot, [sample_mail(100), sample_mail(101), sample_mail(0)], folder)

    poller = MailboxPoller(mailbox, CountingPipeline(broker), positions, timing=FAST)
    assert await poller.sync_once() == 3
    await poller.stop()
    after = await positions.load(mailbox.state_key())
    assert after is not None and after.uidvalidity != before.uidvalidity and after.last_uid == 3
    events = await received_events(js)
    assert len(events) == 5
    assert {event.message_key for event in events} == {message_key(sample_mail(n)) for n in (0, 1, 2, 100, 101)}


async def test_idle_takes_in_a_new_mail_without_waiting_for_a_poll(dovecot, jetstream):
    broker, js = jetstream
    intake = ImapIntake([mailbox_for(dovecot)], CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    await intake.start()
    try:
        append_mails(dovecot, [sample_mail(1)])
        assert len(await wait_for_events(js, 1, timeout=10)) == 1
        append_mails(dovecot, [sample_mail(2)])
        # idle_seconds is 30: arriving within 10 s proves the server's IDLE notification woke the poller.
        assert len(await wait_for_events(js, 2, timeout=10)) == 2
    finally:
        await intake.stop()


async def test_without_idle_the_mailbox_is_searched_periodically(dovecot, jetstream):
    broker, js = jetstream
    intake = ImapIntake([mailbox_for(dovecot, idle=False)], CountingPipeline(broker), PositionStore(lambda: js),
                        timing=FAST)
    await intake.start()
    try:
        append_mails(dovecot, [sample_mail(1)])
        assert len(await wait_for_events(js, 1, timeout=10)) == 1
        append_mails(dovecot, [sample_mail(2), sample_mail(3)])
        assert len(await wait_for_events(js, 3, timeout=10)) == 3
    finally:
        await intake.stop()


async def test_processed_messages_are_moved_when_configured(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(4)])
    mailbox = mailbox_for(dovecot, processed_folder="Traitées")
    poller = MailboxPoller(mailbox, CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    assert await poller.sync_once() == 4
    assert await poller.sync_once() == 0
    await poller.stop()
    with imap_client(dovecot) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
        assert client.select_folder("Traitées")[b"EXISTS"] == 4
    assert len(await received_events(js)) == 4


def test_password_never_appears_in_the_settings_repr():
    mailbox = ImapMailbox(name="m", host="imap.example.org", username="u", password="hunter2")
    assert "hunter2" not in repr(mailbox) and "hunter2" not in str(mailbox.model_dump())
    assert mailbox.secret() == "hunter2"


def intake_process(nats_url: str, dovecot, tmp_path) -> subprocess.Popen[bytes]:
    """The real intake service as its own process (`python -m services.intake`), polling the Dovecot mailbox."""
    mailbox = {"name": "plaintes", "host": dovecot.host, "port": dovecot.port, "ssl": False,
               "username": dovecot.user, "password": dovecot.password}
    environment = {
        **os.environ,
        "OMBUDSDESK_NATS_URL": nats_url,
        "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"),
        "OMBUDSDESK_SMTP_PORT": str(free_port()),
        "OMBUDSDESK_INTAKE_HEALTH_PORT": "0",
        "OMBUDSDESK_LETTERS_ENABLED": "false",
        "OMBUDSDESK_IMAP_MAILBOXES": json.dumps([mailbox]),
        "OMBUDSDESK_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "services.intake"], env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_sigkill_of_the_intake_process_mid_batch_loses_and_repeats_nothing(dovecot, jetstream, tmp_path,
                                                                                 nats_server):
    _broker, js = jetstream
    total = 150
    append_mails(dovecot, [sample_mail(number) for number in range(total)])
    process = intake_process(nats_server.url, dovecot, tmp_path)
    try:
        events = await wait_for_events(js, 15, timeout=30)
        assert 15 <= len(events) < total, "the kill must land in the middle of the batch"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        published = {event.message_key for event in await received_events(js)}
        key_of = {f"<complaint-{number}@citizen.example.org>": message_key(sample_mail(number))
                  for number in range(total)}
        assert {key_of[message_id] for message_id in imported_message_ids(dovecot)} <= published

        process = intake_process(nats_server.url, dovecot, tmp_path)
        events = await wait_for_events(js, total, timeout=60)
        marked = await wait_for_marks(dovecot, total, timeout=30)
    finally:
        process.terminate()
        process.wait(10)
    assert Counter(event.message_key for event in events) == Counter(key_of.values())
    assert marked == set(key_of)


async def test_imaps_with_implicit_tls(dovecot_tls, jetstream):
    broker, js = jetstream
    append_mails(dovecot_tls, [sample_mail(number) for number in range(2)])
    # The test certificate is self-signed: verification off for this one server, as an operator would for a private CA.
    mailbox = mailbox_for(dovecot_tls, port=dovecot_tls.tls_port, ssl=True, verify_tls=False)
    poller = MailboxPoller(mailbox, CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    assert await poller.sync_once() == 2
    await poller.stop()
    intake = ImapIntake([mailbox], CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    await intake.start()
    try:  # IDLE over TLS: the notification is read through the TLS layer's buffer as well
        append_mails(dovecot_tls, [sample_mail(2)])
        assert len(await wait_for_events(js, 3, timeout=10)) == 3
    finally:
        await intake.stop()
    strict = MailboxPoller(mailbox.model_copy(update={"verify_tls": True}), CountingPipeline(broker),
                           PositionStore(lambda: js), timing=FAST)
    with pytest.raises(ssl.SSLCertVerificationError):
        await strict.sync_once()
    await strict.stop()


async def test_the_password_never_reaches_a_log_line(dovecot, jetstream):
    broker, js = jetstream
    mailbox = mailbox_for(dovecot).model_copy(update={"password": SecretStr("wrong horse battery staple")})
    poller = MailboxPoller(mailbox, CountingPipeline(broker), PositionStore(lambda: js), timing=FAST)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(poller.run())
        for _ in range(200):
            if any(entry["event"] == "imap.failure" for entry in logs):
                break
            await asyncio.sleep(0.02)
        await poller.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    failures = [entry for entry in logs if entry["event"] == "imap.failure"]
    assert failures and "AUTHENTICATIONFAILED" in failures[0]["error"].upper().replace(" ", "")
    assert "wrong horse" not in repr(logs)


async def test_several_mailboxes_are_polled_each_with_its_own_position(dovecot, jetstream):
    broker, js = jetstream
    append_mails(dovecot, [sample_mail(number) for number in range(3)])
    append_mails(dovecot, [sample_mail(number) for number in range(10, 12)], "Klachten")
    mailboxes = [mailbox_for(dovecot), mailbox_for(dovecot, "Klachten", name="klachten")]
    positions = PositionStore(lambda: js)
    intake = ImapIntake(mailboxes, CountingPipeline(broker), positions, timing=FAST)
    await intake.start()
    try:
        events = await wait_for_events(js, 5)
        assert await wait_for_marks(dovecot, 2, "Klachten") == expected_ids(range(10, 12))
    finally:
        await intake.stop()
    assert sorted(event.source for event in events) == ["imap:klachten"] * 2 + ["imap:test"] * 3
    inbox, klachten = [await positions.load(mailbox.state_key()) for mailbox in mailboxes]
    assert mailboxes[0].state_key() != mailboxes[1].state_key()
    assert (inbox.last_uid, klachten.last_uid) == (3, 2)
