"""A repeated put (SMTP retry, IMAP copy, quarantine replay) leaves one copy of the bytes in the bucket's stream;
replacing an object's content purges the old chunks (review of issue 3: every re-put leaked a full copy)."""

from __future__ import annotations

from nats.js.object_store import OBJ_STREAM_TEMPLATE

from shared import streams
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake.stores import ObjectStorage
from tests.intake.support import asend, citizen_mail, intake_settings, read_object, running_intake, settled

RAW_STREAM = OBJ_STREAM_TEMPLATE.format(bucket=streams.BUCKET_RAW_MESSAGES)


async def stream_state(js):  # noqa: ANN001, ANN201
    state = (await js.stream_info(RAW_STREAM)).state
    return state.messages, state.bytes


def same_copy(before, after) -> bool:  # noqa: ANN001
    """The same number of messages and the same bytes, give or take the metadata's time stamp."""
    return before[0] == after[0] and abs(before[1] - after[1]) < 100


async def test_putting_the_same_raw_twice_keeps_one_copy_and_new_content_replaces_the_old(nats_server, tmp_path):
    big = bytes(range(256)) * 2_000  # 512 KB: several chunks
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        storage = ObjectStorage(js)
        await storage.put(streams.BUCKET_RAW_MESSAGES, "mid-a.eml", big)
        once = await stream_state(js)
        await storage.put(streams.BUCKET_RAW_MESSAGES, "mid-a.eml", big)
        assert same_copy(once, await stream_state(js))
        # Other content under the same name (a copy with other trace headers): the old chunks go.
        await storage.put(streams.BUCKET_RAW_MESSAGES, "mid-a.eml", big[::-1])
        assert same_copy(once, await stream_state(js))
    assert await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, "mid-a.eml") == big[::-1]


async def test_an_smtp_retry_stores_the_raw_once(nats_server, tmp_path):
    # Bigger than one JetStream message (over ~0.9 MB): spooled like any other mail, its raw written once by the
    # SMTP front; the retry (same bytes) is recognised by the spool and its fresh chunks are discarded.
    message = citizen_mail(body="Bonjour,\n" + "Ma réclamation détaillée.\n" * 50_000)
    async with running_intake(nats_server.url, tmp_path) as intake:
        assert len(message.as_bytes()) > intake.pipeline.max_payload()
        await asend(intake.smtp_port, message)
        await settled(intake)
        js = intake.pipeline.js
        once = await stream_state(js)
        await asend(intake.smtp_port, message)  # the 250 was lost: the sending server tries again
        await settled(intake)
        assert same_copy(once, await stream_state(js))
        assert intake.spool.counters == {"spooled": 1, "duplicate": 1}
        assert intake.pipeline.counters == {"processed": 1, "duplicate": 0, "quarantined": 0}


async def test_an_smtp_retry_of_a_spooled_mail_is_stored_once(nats_server, tmp_path):
    """A retry of different bytes (another relay's trace header) passes the spool and reaches the pipeline."""
    message = citizen_mail(body="Bonjour,\n" + "Ma réclamation détaillée.\n" * 2_000)
    async with running_intake(nats_server.url, tmp_path) as intake:
        await asend(intake.smtp_port, message)
        await settled(intake)
        js = intake.pipeline.js
        once = await stream_state(js)
        relayed = b"Received: from mx2.example.org by mx.example.org; Tue, 24 Nov 2026 09:20:00 +0100\r\n"
        await asend(intake.smtp_port, relayed + message.as_bytes())
        await settled(intake)
        assert same_copy(once, await stream_state(js))
        assert intake.spool.counters == {"spooled": 2, "duplicate": 0}
        assert intake.pipeline.counters == {"processed": 1, "duplicate": 1, "quarantined": 0}


async def test_intake_buckets_are_named_in_shared_streams(nats_server, tmp_path):
    from services.intake.channels.imap_poller import PositionStore
    from services.intake.stores import ensure_intake_buckets

    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        await ensure_intake_buckets(js)
        await PositionStore(lambda: js)._store()
        for bucket in (streams.BUCKET_INTAKE_SEEN, streams.BUCKET_INTAKE_QUARANTINE, streams.BUCKET_INTAKE_IMAP):
            assert (await js.stream_info(f"KV_{bucket}")).config.name == f"KV_{bucket}"
        assert (await js.stream_info(f"KV_{streams.BUCKET_INTAKE_IMAP}")).config.max_msgs_per_subject == 5
