"""The raw original and the event are published together (one round trip, docs/benchmarks-intake.md): the answer
still waits for both, a failure of either makes the sender retry, and the retry repairs what was missing."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from nats.js.errors import ObjectNotFoundError

from shared import streams
from shared.events import MessageReceived
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake.message.message_key import message_key
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.stores import ObjectStorage, ensure_intake_buckets
from tests.intake.support import citizen_mail, intake_settings, read_object, stream_events


class RawStoreDown(Exception):
    """Stands in for JetStream refusing the raw original (stream full, leader lost...)."""


async def accept(pipeline: IntakePipeline, raw: bytes):  # noqa: ANN201
    return await pipeline.accept(raw, received_at=datetime.now(timezone.utc), envelope_sender=None,
                                 envelope_recipients=(), source="smtp")


async def test_a_failed_raw_write_fails_the_message_and_the_retry_repairs_it(nats_server, tmp_path, monkeypatch):
    settings = intake_settings(nats_server.url, tmp_path)
    broker = make_broker(settings)
    raw = citizen_mail(message_id="<raw-lost.1@example.org>").as_bytes()
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        pipeline = IntakePipeline(broker, settings)
        real_start_put = ObjectStorage.start_put

        async def refused_raw(self, bucket, name, data):  # noqa: ANN001, ANN202
            acks = await real_start_put(self, bucket, name + ".lost", data)  # really published, elsewhere
            failing = acks[-1].get_loop().create_future()
            failing.set_exception(RawStoreDown("raw original not acknowledged"))
            return [*acks, failing]

        monkeypatch.setattr(ObjectStorage, "start_put", refused_raw)
        with pytest.raises(RawStoreDown):  # SMTP answers 451, IMAP leaves the message unflagged
            await accept(pipeline, raw)
        await pipeline.drain()
        monkeypatch.setattr(ObjectStorage, "start_put", real_start_put)
        assert not await pipeline.seen.contains(message_key(raw))  # only written once everything is durable

        retried = await accept(pipeline, raw)
        await pipeline.drain()
        assert await pipeline.seen.contains(message_key(raw))
        pipeline.close()
    # Whether the event went out with the first attempt or not, there is exactly one, and the raw is stored.
    assert retried.status in {AcceptStatus.PROCESSED, AcceptStatus.DUPLICATE} and retried.event is not None
    [event] = [MessageReceived.model_validate_json(data)
               for data in await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)]
    assert await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, event.raw_object) == raw


async def test_the_raw_original_is_stored_before_the_answer(nats_server, tmp_path):
    settings = intake_settings(nats_server.url, tmp_path)
    broker = make_broker(settings)
    raws = [citizen_mail(message_id=f"<together.{index}@example.org>").as_bytes() for index in range(3)]
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        pipeline = IntakePipeline(broker, settings)
        outcomes = [await accept(pipeline, raw) for raw in raws]
        # Read back at once, on another connection: acknowledged means stored.
        stored = [await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, outcome.event.raw_object)
                  for outcome in outcomes]
        await pipeline.drain()
        pipeline.close()
    assert [outcome.status for outcome in outcomes] == [AcceptStatus.PROCESSED] * 3
    assert stored == raws
    with pytest.raises(ObjectNotFoundError):
        await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, "mid-never-received.eml")

