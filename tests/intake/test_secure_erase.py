"""What intake removes from JetStream is gone from the bytes of the NATS data folder (issue 16), against a real
server: chunks no name points to (`ObjectStorage.discard_chunks`: a duplicate's, an old copy's), earlier revisions
of a quarantine entry and an entry leaving the quarantine are deleted by sequence with the server's secure erase,
not purged. The quarantine's stream is nats-py's key-value stream but for `deny_delete` (and its history), and a
quarantine made by nats-py before (with `deny_delete`) is migrated once — its entries still readable, erasable for
good afterwards, the migration safe to run again and finished by the next run when interrupted."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.js.api import KeyValueConfig, StorageType
from typer.testing import CliRunner

from shared import streams
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake import jetstream_internals as layout
from services.intake.cli import app
from services.intake.stores import (
    QUARANTINE_DESCRIPTION,
    QUARANTINE_HISTORY,
    QUARANTINE_MIGRATION_BUCKET,
    ObjectStorage,
    Quarantine,
    ensure_intake_buckets,
    migrate_quarantine_stream,
    settle,
)
from tests.intake.support import intake_settings
from tests.intake.test_privacy import files_containing, quarantine_record

QUARANTINE_STREAM = f"KV_{streams.BUCKET_INTAKE_QUARANTINE}"
MIGRATION_STREAM = f"KV_{QUARANTINE_MIGRATION_BUCKET}"


def token(who: str) -> str:
    """A unique marker written into a citizen's data, to look for on disk."""
    return f"{who}{uuid.uuid4().hex[:12]}"


def record(key: str, sender: str, attempts: int = 1) -> QuarantineRecord:
    return quarantine_record(key, f"{key}.eml", sender, attempts)


async def old_quarantine(js, senders: dict[str, str]) -> Quarantine:  # noqa: ANN001
    """The quarantine as intake made it before (through nats-py, which sets `deny_delete`), one entry per key
    (message key: envelope sender)."""
    await js.create_key_value(KeyValueConfig(bucket=streams.BUCKET_INTAKE_QUARANTINE, description=QUARANTINE_DESCRIPTION,
                                             history=1, storage=StorageType.FILE))
    quarantine = Quarantine(js)
    for key, sender in senders.items():
        await quarantine.put(record(key, sender))
    return quarantine


async def test_the_quarantine_stream_is_nats_py_s_key_value_stream_but_erasable(nats_server, tmp_path):
    """Compared with what nats-py itself makes for the same bucket settings (another bucket name): a nats-py upgrade
    that changes its key-value streams shows up here."""
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        await ensure_intake_buckets(js)
        ours = (await js.stream_info(QUARANTINE_STREAM)).config
        await js.create_key_value(KeyValueConfig(bucket="reference", description=QUARANTINE_DESCRIPTION, history=1,
                                                 storage=StorageType.FILE))
        reference = (await js.stream_info("KV_reference")).config
        kv = await js.key_value(streams.BUCKET_INTAKE_QUARANTINE)  # any client still sees a key-value bucket
        await kv.put("mid-x", b"{}")
        assert (await kv.get("mid-x")).value == b"{}"

    assert reference.deny_delete is True and ours.deny_delete is False
    assert ours.subjects == [f"$KV.{streams.BUCKET_INTAKE_QUARANTINE}.>"]
    assert ours.max_msgs_per_subject == QUARANTINE_HISTORY and reference.max_msgs_per_subject == 1
    differing = {name for name, value in vars(ours).items()
                 if name not in ("name", "subjects", "metadata") and vars(reference)[name] != value}
    assert differing == {"deny_delete", "max_msgs_per_subject"}


async def test_discarded_chunks_and_replaced_copies_are_gone_from_the_disk(nats_server, tmp_path):
    discarded, replaced, kept = token("Discardedmail"), token("Replacedmail"), token("Keptmail")
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        storage = ObjectStorage(js)
        # A duplicate's bytes, written by the SMTP front and never named (three chunks: more than one to erase).
        written, acks = await storage.write_chunks(streams.BUCKET_RAW_MESSAGES,
                                                   (discarded + " ").encode() * 30_000)
        await settle(acks)
        assert written.chunks > 2
        # An object whose content is replaced under the same name: the old chunks go.
        await storage.put(streams.BUCKET_RAW_MESSAGES, "mid-replaced.eml", f"old copy of {replaced}".encode())
        await storage.put(streams.BUCKET_RAW_MESSAGES, "mid-replaced.eml", b"new copy")
        await storage.put(streams.BUCKET_RAW_MESSAGES, "mid-kept.eml", f"mail of {kept}".encode())
        assert files_containing(nats_server.store_dir, discarded.encode())
        await storage.discard_chunks(streams.BUCKET_RAW_MESSAGES, written.nuid)
        await storage.discard_chunks(streams.BUCKET_RAW_MESSAGES, written.nuid)  # twice: nothing left to find
        assert await storage.get_raw("mid-replaced.eml") == b"new copy"
        assert kept.encode() in await storage.get_raw("mid-kept.eml")
        raw_stream = layout.object_stream(streams.BUCKET_RAW_MESSAGES)
        messages = (await js.stream_info(raw_stream)).state.messages
    assert messages == 4  # the replaced object's chunk and metadata, the kept one's: nothing of the other two
    assert files_containing(nats_server.store_dir, discarded.encode()) == []
    assert files_containing(nats_server.store_dir, replaced.encode()) == []
    assert files_containing(nats_server.store_dir, kept.encode()) != []


async def test_quarantine_revisions_and_a_removed_entry_are_gone_from_the_disk(nats_server, tmp_path):
    first, second, other = token("Firstrevision"), token("Secondrevision"), token("Othercitizen")
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        quarantine = Quarantine(js)
        await quarantine.put(record("mid-a", f"{first}@example.org"))
        await quarantine.put(record("mid-b", f"{other}@example.org"))
        assert files_containing(nats_server.store_dir, first.encode())
        await quarantine.put(record("mid-a", f"{second}@example.org", attempts=2))  # quarantined again
        assert (await quarantine.get("mid-a")).attempts == 2
        assert files_containing(nats_server.store_dir, first.encode()) == []  # the earlier revision: erased
        await quarantine.remove("mid-a")  # a replay that passed
        assert await quarantine.get("mid-a") is None
        assert await quarantine.keys() == ["mid-b"]
        assert await quarantine.erase("mid-a") is None  # nothing left to erase
    assert files_containing(nats_server.store_dir, second.encode()) == []
    assert files_containing(nats_server.store_dir, other.encode()) != []


@pytest.mark.slow
async def test_an_old_quarantine_is_migrated_once_its_entries_readable_then_erasable(nats_server, tmp_path):
    waiting, purged_before = token("Waitingcitizen"), token("Purgedbefore")
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        old = await old_quarantine(js, {"mid-waiting": f"{waiting}@example.org",
                                        "mid-purged": f"{purged_before}@example.org"})
        assert old.erasable is False
        assert await old.erase("mid-purged") is not None  # the old way: only a purge marker
        assert files_containing(nats_server.store_dir, purged_before.encode())  # still on disk
        assert await old.keys() == ["mid-waiting"]  # the purge marker's key is not listed
        assert [record.message_key for record in await old.records()] == ["mid-waiting"]

        done = await migrate_quarantine_stream(js)
        assert (done.outcome, done.entries) == ("migrated", 1)
        config = (await js.stream_info(QUARANTINE_STREAM)).config
        assert config.deny_delete is False and config.max_msgs_per_subject == QUARANTINE_HISTORY
        assert config.description == QUARANTINE_DESCRIPTION
        # Readable as before, through intake's store and as a plain key-value bucket.
        fresh = Quarantine(js)
        assert (await fresh.get("mid-waiting")).envelope_sender == f"{waiting}@example.org"
        assert await fresh.keys() == ["mid-waiting"]
        kv = await js.key_value(streams.BUCKET_INTAKE_QUARANTINE)
        assert waiting.encode() in (await kv.get("mid-waiting")).value
        # The old block files went with the old stream: the entry purged before is gone too; the copy is gone.
        assert files_containing(nats_server.store_dir, purged_before.encode()) == []
        assert [path for path in files_containing(nats_server.store_dir, waiting.encode())
                if QUARANTINE_MIGRATION_BUCKET in path] == []
        assert MIGRATION_STREAM not in [info.config.name for info in await js.streams_info()]

        assert (await migrate_quarantine_stream(js)).outcome == "unchanged"
        # A process that saw the old stream erases for good now that it is migrated.
        assert await old.erase("mid-waiting") is not None
        assert old.erasable is True
        assert await fresh.get("mid-waiting") is None
    assert files_containing(nats_server.store_dir, waiting.encode()) == []


async def test_an_interrupted_migration_is_finished_by_the_next_run(nats_server, tmp_path):
    """Interrupted after the old stream was deleted (the copy holds the entries, no quarantine stream): the next run
    makes the stream and copies them back; interrupted while copying (the old stream and a copy holding an entry
    replayed since): the replayed entry does not come back."""
    waiting = token("Waitingcitizen")
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        await old_quarantine(js, {"mid-waiting": f"{waiting}@example.org"})
        entry = await js.get_last_msg(QUARANTINE_STREAM, f"$KV.{streams.BUCKET_INTAKE_QUARANTINE}.mid-waiting")
        # The copy as the first run left it, with an entry the quarantine no longer has.
        copy_config = (await js.stream_info(QUARANTINE_STREAM)).config.evolve(
            name=MIGRATION_STREAM, subjects=[f"$KV.{QUARANTINE_MIGRATION_BUCKET}.>"], deny_delete=False, metadata=None)
        await js.add_stream(copy_config)
        await js.publish(f"$KV.{QUARANTINE_MIGRATION_BUCKET}.mid-replayed", b'{"replayed": true}',
                         stream=MIGRATION_STREAM)
        done = await migrate_quarantine_stream(js)
        assert (done.outcome, done.entries) == ("migrated", 1)
        assert await Quarantine(js).keys() == ["mid-waiting"]

        # Now interrupted later: no quarantine stream, the copy holds the entry.
        await js.delete_stream(QUARANTINE_STREAM)
        await js.add_stream(copy_config)
        await js.publish(f"$KV.{QUARANTINE_MIGRATION_BUCKET}.mid-waiting", entry.data, stream=MIGRATION_STREAM)
        done = await migrate_quarantine_stream(js)
        assert (done.outcome, done.entries) == ("resumed", 1)
        resumed = Quarantine(js)
        assert (await resumed.get("mid-waiting")).envelope_sender == f"{waiting}@example.org"
        assert resumed.erasable is True
        assert MIGRATION_STREAM not in [info.config.name for info in await js.streams_info()]


def test_the_migration_command_says_what_it_did_and_can_be_run_again(nats_server, tmp_path, monkeypatch):
    async def old_deployment() -> None:
        broker = make_broker(intake_settings(nats_server.url, tmp_path))
        async with broker:
            js = broker.connection.jetstream()
            await old_quarantine(js, {"mid-waiting": "someone@example.org"})

    asyncio.run(old_deployment())
    monkeypatch.setenv("OMBUDSDESK_NATS_URL", nats_server.url)
    runner = CliRunner()
    first = runner.invoke(app, ["quarantine", "migrate-stream"])
    assert first.exit_code == 0, first.output
    assert "1 entry(ies) copied" in first.output
    again = runner.invoke(app, ["quarantine", "migrate-stream"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    listing = runner.invoke(app, ["quarantine", "list"])
    assert "1 message(s) in quarantine" in listing.output
