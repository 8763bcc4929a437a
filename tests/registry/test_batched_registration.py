"""Messages registered in batches (issue 12), over real NATS and a real database (SQLite and PostgreSQL).

The registry fetches `MessageReceived` in batches and commits a batch in one transaction. What must not change: one
failing message in a batch neither blocks nor loses the others (it meets its own retries and dead letter), numbers
stay gap-free, and a registry killed after a batch's commit but before its acknowledgements registers nothing twice
when the messages come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from services.registry.repository import ComplaintFilter
from services.registry.wiring import build_registry
from shared import messaging, streams
from shared.events import ComplaintRegistered, DeadLettered
from tests.registry.conftest import next_events, publish, received, registry_settings, stream_count

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def one_batch(registry) -> Iterator[list[str]]:
    """The calls gathered inside run as one batched delivery (their works share the unit of work's group commit);
    yields the SQL statements the registry's database received meanwhile."""
    from sqlalchemy import event as sql_event

    from shared.messaging import _BATCHED_DELIVERY

    statements: list[str] = []
    engine = registry.store.engine.sync_engine

    def record(_connection, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    sql_event.listen(engine, "before_cursor_execute", record)
    token = _BATCHED_DELIVERY.set(True)
    try:
        yield statements
    finally:
        _BATCHED_DELIVERY.reset(token)
        sql_event.remove(engine, "before_cursor_execute", record)


async def numbers_registered(store) -> list[int]:
    return sorted(c.sequence for c in await store.list_complaints(ComplaintFilter()))


async def test_a_poison_message_in_a_batch_is_dead_lettered_alone_and_the_others_registered(
        tmp_path, nats_server, database_url, js, monkeypatch):
    from services.registry.handlers import incoming

    original = incoming.register_complaint

    async def failing_on_poison(tx, event, *args, **kwargs):
        if event.message_key == "poison":
            # Inside the batch's transaction, after the batch-mates before it wrote their rows.
            raise RuntimeError("cannot register this one")
        return await original(tx, event, *args, **kwargs)

    monkeypatch.setattr(incoming, "register_complaint", failing_on_poison)
    keys = [f"batch-{index}" for index in range(5)] + ["poison"] + [f"batch-{index}" for index in range(5, 10)]
    for index, key in enumerate(keys):
        await publish(js, received(key=key, email=f"citizen{index}@example.org"))
    # Published before the registry starts: its first fetch takes them all, the poison in the middle.
    service = build_registry(registry_settings(tmp_path, nats_server.url, database_url, max_deliveries=2))
    await service.start()
    try:
        payloads = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 10, "t-batch-registered", timeout=30)
        [dead] = await next_events(js, f"{streams.SUBJECT_DEAD_LETTER}.>", 1, "t-batch-dead", timeout=30)
        group = service.registry.uow.group
        assert group.fallbacks >= 1  # the batch did fail, and was rolled back
        assert await numbers_registered(service.store) == list(range(1, 11))  # gap-free: the rollback took none
    finally:
        await service.stop()
    registered = sorted(ComplaintRegistered.model_validate_json(p).message_key for p in payloads)
    assert registered == sorted(k for k in keys if k != "poison")
    letter = DeadLettered.model_validate_json(dead)
    assert letter.consumer == streams.CONSUMER_REGISTRY_INTAKE and "poison" in letter.payload
    assert "cannot register this one" in letter.error
    assert await stream_count(js, streams.SUBJECT_COMPLAINT_REGISTERED) == 10


async def test_a_batch_of_waiting_messages_is_committed_together(tmp_path, nats_server, database_url, js,
                                                                monkeypatch):
    # A fetch returns what reached the client within BATCH_WAIT_SECONDS (50 ms). Once, in a full CI run on a loaded
    # machine, every fetch returned a single event and no batch formed. Batching is what this test is about; the
    # bound on a lone event's wait has its own test (test_a_lone_message_is_registered_promptly).
    monkeypatch.setattr(messaging, "BATCH_WAIT_SECONDS", 2.0)
    for index in range(24):
        await publish(js, received(key=f"together-{index}", email=f"citizen{index}@example.org"))
    service = build_registry(registry_settings(tmp_path, nats_server.url, database_url))
    await service.start()
    try:
        await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 24, "t-together", timeout=30)
        group = service.registry.uow.group
        assert group.fallbacks == 0
        assert 1 <= group.batches and group.works_together >= 12  # most of them shared a transaction
        assert await numbers_registered(service.store) == list(range(1, 25))
    finally:
        await service.stop()


async def test_a_lone_message_is_registered_promptly(tmp_path, nats_server, database_url, js):
    service = build_registry(registry_settings(tmp_path, nats_server.url, database_url))
    await service.start()
    try:
        await asyncio.sleep(0.5)  # idle: the consumer waits in a fetch
        sent = time.monotonic()
        await publish(js, received(key="lone"))
        await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-lone", timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        await service.stop()
    # Registration of one message takes tens of milliseconds; a consumer waiting to fill its batch would add up to
    # its fetch's whole wait (1 s before issue 12).
    assert elapsed < 0.6, elapsed


CRASHING_REGISTRY = textwrap.dedent('''
    """A registry that dies (os._exit: no cleanup, no acknowledgement sent) at the first acknowledgement of a
    delivery, that is after its batch's transaction committed."""
    import asyncio, os, sys
    from faststream.nats.message import NatsMessage
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import build_registry

    async def die(self, *args, **kwargs):
        os._exit(17)

    NatsMessage.ack = die

    async def main():
        settings = RegistrySettings(nats_url=sys.argv[1], registry_database_url=sys.argv[2], var_dir=sys.argv[3],
                                    registry_api_port=0, ack_wait_seconds=2)
        service = build_registry(settings)
        await service.start()
        await asyncio.sleep(60)

    asyncio.run(main())
''')


async def test_a_registry_killed_between_commit_and_ack_registers_nothing_twice(
        tmp_path, nats_server, database_url, js):
    count = 12
    for index in range(count):
        await publish(js, received(key=f"crash-{index}", email=f"citizen{index}@example.org"))
    script = tmp_path / "crashing_registry.py"
    script.write_text(CRASHING_REGISTRY)
    process = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(script), nats_server.url, database_url, str(tmp_path / "var")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMBUDSDESK_LOG_LEVEL": "WARNING"},
        capture_output=True, timeout=90)
    assert process.returncode == 17, process.stderr.decode()[-2000:]

    settings = registry_settings(tmp_path, nats_server.url, database_url, ack_wait_seconds=2)
    service = build_registry(settings)
    before = await numbers_registered(service.store)
    # The killed process committed before it tried to acknowledge: a whole batch, not one message.
    assert len(before) > 1 and before == list(range(1, len(before) + 1))
    await service.start()
    try:
        # Every message comes back (unacknowledged) and is either found (a replay) or registered now.
        for _ in range(200):
            if len(await numbers_registered(service.store)) == count:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # past the ack wait: anything still redelivered would show now
        after = await numbers_registered(service.store)
    finally:
        await service.stop()
    assert after == list(range(1, count + 1))
    complaints = await service.store.list_complaints(ComplaintFilter())
    assert sorted(c.message_key for c in complaints) == sorted(f"crash-{index}" for index in range(count))
    # The replays re-published the very same events: JetStream dropped the copies.
    assert await stream_count(js, streams.SUBJECT_COMPLAINT_REGISTERED) == count


async def test_a_batch_inserts_its_registrations_together_and_keeps_numbers_and_duplicates(registry_on_db):
    """A batch's registrations are staged and inserted at its commit (issue 12): the numbers of the year are taken
    in memory after the batch's first and written once, still gap-free and in order; a citizen who wrote twice within
    the batch has the second file flagged as a possible duplicate of the first (not inserted yet when it was
    screened); the next registration after the batch continues the count."""
    from shared.messaging import _BATCHED_DELIVERY

    registry, published, clock = registry_on_db
    before = await registry.on_message_received(received(key="before", email="someone@example.org", name="Paul"))
    token = _BATCHED_DELIVERY.set(True)
    try:
        outcomes = await asyncio.gather(
            registry.on_message_received(received(key="b-1", at=clock.now)),
            registry.on_message_received(received(key="b-2", email="other@example.org", name="Ann Other")),
            registry.on_message_received(received(key="b-3", at=clock.now)),  # Jeanne again
        )
    finally:
        _BATCHED_DELIVERY.reset(token)
    group = registry.uow.group
    assert (group.batches, group.works_together, group.fallbacks) == (1, 3, 0)
    after = await registry.on_message_received(received(key="after", email="third@example.org", name="Zoé"))

    sequences = [(await registry.store.complaint(o.number)).sequence for o in (before, *outcomes, after)]
    assert sequences == [1, 2, 3, 4, 5]
    first, _other, second = [await registry.store.complaint(o.number) for o in outcomes]
    assert second.possible_duplicates == [first.number]
    assert first.possible_duplicates is None
    _complaint, thread, changes, parties = await registry.store.complaint_file(second.number)
    assert [m.message_key for m in thread] == ["b-3"]
    assert [c.change for c in changes] == ["registered"]
    assert parties == ["jeanne.dupont@example.org"]
    registered = published.of(ComplaintRegistered)
    assert [e.complaint_number for e in registered] == [o.number for o in (before, *outcomes, after)]


async def test_a_batch_inserts_each_table_s_rows_in_one_statement_and_each_row_keeps_its_file(registry_on_db):
    """A batch's new rows go to each table in one multi-row INSERT (issue 12): on SQLite, SQLAlchemy does that only
    when a column tells the returned rows apart (an "insert sentinel": the number, the message key, the change id,
    the dedup id; case parties have a column of their own, migration 0020), else it sends one INSERT per row. Each
    row must still land in its own file, also for a citizen who is a party of two files of the batch."""
    registry, published, clock = registry_on_db
    senders = [("jeanne.dupont@example.org", "Jeanne Dupont"), ("ann@example.org", "Ann Other"),
               ("jeanne.dupont@example.org", "Jeanne Dupont"), ("zoe@example.org", "Zoé"),
               ("karl@example.org", "Karl")]
    with one_batch(registry) as statements:
        outcomes = await asyncio.gather(*(
            registry.on_message_received(received(key=f"s-{index}", email=email, name=name, at=clock.now))
            for index, (email, name) in enumerate(senders)))
    assert (registry.uow.group.batches, registry.uow.group.works_together) == (1, len(senders))
    inserts: dict[str, int] = {}
    for statement in statements:
        words = statement.split()
        if words[:2] == ["INSERT", "INTO"]:
            inserts[words[2]] = inserts.get(words[2], 0) + 1
    assert {"complaints", "thread_messages", "case_parties", "change_log", "outbox"} <= set(inserts), inserts
    assert all(count == 1 for count in inserts.values()), inserts
    for index, ((email, _name), outcome) in enumerate(zip(senders, outcomes, strict=True)):
        complaint, thread, changes, parties = await registry.store.complaint_file(outcome.number)
        assert complaint.message_key == f"s-{index}"
        assert [m.message_key for m in thread] == [f"s-{index}"]
        assert [c.change for c in changes] == ["registered"]
        assert parties == [email]
    registered = {e.message_key: e.complaint_number for e in published.of(ComplaintRegistered)}
    assert registered == {f"s-{index}": o.number for index, o in enumerate(outcomes)}


async def test_a_citizen_writing_twice_in_a_batch_is_flagged_even_when_a_flush_came_between(registry_on_db):
    """Between a citizen's two complaints of one batch, another message's routing query flushes the batch's first
    complaint to the database (autoflush): the look-ahead, read before, does not know it, and the session no longer
    holds it as new; the second complaint is still flagged as its possible duplicate (found in review)."""
    from shared.messaging import _BATCHED_DELIVERY

    registry, _published, clock = registry_on_db
    token = _BATCHED_DELIVERY.set(True)
    try:
        first, reply, second = await asyncio.gather(
            registry.on_message_received(received(key="w1", at=clock.now)),
            # In-Reply-To a message the register does not know: its routing looks it up, which flushes first.
            registry.on_message_received(received(key="w2", email="other@example.org", name="Ann Other",
                                                  in_reply_to="<unknown@mail.example.org>")),
            registry.on_message_received(received(key="w3", at=clock.now)))
    finally:
        _BATCHED_DELIVERY.reset(token)
    assert (registry.uow.group.batches, registry.uow.group.fallbacks) == (1, 0)
    assert first.action == second.action == "registered" and reply.action in {"registered", "held"}
    assert (await registry.store.complaint(second.number)).possible_duplicates == [first.number]


async def test_a_batch_reads_its_lookups_at_once_and_each_message_gets_its_own_answer(registry_on_db):
    """The look-ahead of a batch (issue 12) reads where each message key is, which senders are an administration's,
    and the citizens' earlier files in three queries for the whole batch: a message seen before is replayed (not
    registered twice), the administration's unreferenced mail is held with its file suggested, and a citizen's
    earlier stored file is flagged — the same answers as one message at a time."""
    from services.registry.commands import RequestPosition, SaveAdministration

    registry, _published, clock = registry_on_db
    earlier = await registry.on_message_received(received(key="earlier", at=clock.now))
    administration = await registry.handle(SaveAdministration(
        "fps-finance", "SPF Finances", "agent@med.be", emails=("plaintes@finances.example.be",), answer_days=30))
    await registry.handle(RequestPosition(earlier.number, administration, "Votre position ?", "agent@med.be"))

    with one_batch(registry) as statements:
        replayed, held, again, *others = await asyncio.gather(
            registry.on_message_received(received(key="earlier", at=clock.now)),  # redelivered
            registry.on_message_received(received(key="from-finance", email="plaintes@finances.example.be",
                                                  subject="Nouveau dossier")),
            registry.on_message_received(received(key="jeanne-again", at=clock.now)),
            *(registry.on_message_received(received(key=f"other-{n}", email=f"c{n}@example.org", name=f"C {n}"))
              for n in range(5)))

    assert (registry.uow.group.batches, registry.uow.group.fallbacks) == (1, 0)
    assert (replayed.action, replayed.number, replayed.replay) == ("registered", earlier.number, True)
    assert (held.action, held.reason) == ("held", "administration_unreferenced")
    assert (again.action, (await registry.store.complaint(again.number)).possible_duplicates) == \
        ("registered", [earlier.number])
    assert [o.action for o in others] == ["registered"] * 5
    # The lookups of all eight messages: three queries (keys, administrations, emails; no postal address, so no
    # citizen key), plus the replay's two reads of the event it re-publishes. One at a time it was 3 per message.
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in selects if "message_key IN" in s.replace("\n", " ")]) == 1
    assert len(selects) == 5, selects


async def test_a_batch_of_sent_notices_reads_its_files_at_once_and_files_each_notice_once(registry_on_db):
    """Notices reported sent in one batch (issue 12): their complaints and thread entries read in two queries for
    the batch; each acknowledgment acknowledges its file; the same notice reported twice in the batch is filed
    once (the second finds the first's entry, staged in the same transaction)."""
    from shared.events import NotificationSent

    registry, _published, clock = registry_on_db
    numbers = [(await registry.on_message_received(received(key=f"n-{n}", email=f"c{n}@example.org",
                                                            name=f"C {n}", at=clock.now))).number for n in range(3)]

    def sent(number: str, kind: str = "acknowledgment") -> NotificationSent:
        return NotificationSent(notification_key=f"{kind}:{number}", complaint_number=number, notice_kind=kind,
                                recipient="c@example.org", message_id=f"<{kind}.{number}@med.example>",
                                subject_line="Accusé de réception")

    with one_batch(registry) as statements:
        filed = await asyncio.gather(registry.on_notification_sent(sent(numbers[0])),
                                     registry.on_notification_sent(sent(numbers[1])),
                                     registry.on_notification_sent(sent(numbers[0])),  # reported twice
                                     registry.on_notification_sent(sent(numbers[2], "follow_up_received")))

    assert filed == [True, True, False, True]
    group = registry.uow.group
    assert (group.batches, group.fallbacks) == (1, 0)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
    for number, status in zip(numbers, ["acknowledged", "acknowledged", "received"]):
        complaint, thread, _changes, _parties = await registry.store.complaint_file(number)
        assert complaint.status == status
        assert len([m for m in thread if m.direction == "out"]) == 1


async def test_a_row_locked_in_a_batch_is_read_afresh_after_a_look_ahead_loaded_it(registry_on_postgres):
    """A look-ahead may load a file at the start of a batch; another process then commits a change to it; a work of
    the batch that locks the file (`FOR UPDATE`) must decide on the committed row, not on the copy the session
    held (found in review). PostgreSQL only: on SQLite the batch's write lock keeps the other writer out."""
    from sqlalchemy import text

    from shared.messaging import _BATCHED_DELIVERY

    registry, _published, clock = registry_on_postgres
    number = (await registry.on_message_received(received(key="locked", at=clock.now))).number
    other_process = create_async_engine(registry.store.engine.url)

    async def look_ahead(tx, _needs) -> None:
        # Loaded, unlocked, and held (as a look-ahead holds what it read) in the batch's session.
        tx.read_ahead["test"] = {number: await tx.complaint_by_number(number)}
        async with other_process.begin() as connection:
            await connection.execute(text("UPDATE complaints SET subject_line = 'changed elsewhere' "
                                          "WHERE number = :number"), {"number": number})

    async def locked_subject(tx) -> str:
        return (await tx.complaint_by_number(number, for_update=True)).subject_line

    token = _BATCHED_DELIVERY.set(True)
    try:
        seen = await asyncio.gather(*(registry.uow.run("locking", locked_subject, ahead=(look_ahead, None))
                                      for _ in range(2)))
    finally:
        _BATCHED_DELIVERY.reset(token)
        await other_process.dispose()
    assert registry.uow.group.batches == 1
    assert seen == ["changed elsewhere", "changed elsewhere"]
