"""Dead letters can be listed and replayed against a real NATS: a replay reaches the consumer exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import nats
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsMessage, PullSub

from shared import streams
from shared.deadletters import list_dead_letters, replay_dead_letter
from shared.messaging import DeliveryPolicy, make_broker, publish_event, settle_delivery
from shared.stream_admin import ensure_streams
from shared.settings import CommonSettings
from tests.shared.test_messaging import sample_registered


async def test_a_dead_letter_is_replayed_once_after_the_fault_is_fixed(nats_server):
    broker = make_broker(CommonSettings(nats_url=nats_server.url))
    policy = DeliveryPolicy(durable="replay-consumer", max_deliveries=2, first_retry_seconds=0.05)
    fault_fixed = False
    processed: list[str] = []
    gave_up = asyncio.Event()
    handled = asyncio.Event()

    @broker.subscriber(
        streams.SUBJECT_COMPLAINT_REGISTERED,
        stream=JStream(streams.STREAM_REGISTRY, declare=False),
        durable=policy.durable,
        config=policy.consumer_config(),
        pull_sub=PullSub(batch_size=1, timeout=0.5),
        ack_policy=AckPolicy.MANUAL,
    )
    async def flaky(msg: NatsMessage) -> None:
        async def process() -> None:
            if not fault_fixed:
                if msg.raw_message.metadata.num_delivered >= policy.max_deliveries:
                    gave_up.set()
                raise RuntimeError("template missing")
            processed.append(msg.raw_message.data.decode())
            handled.set()

        await settle_delivery(broker, msg, policy, process)

    connection = await nats.connect(nats_server.url)
    js = connection.jetstream()
    await ensure_streams(js)
    async with broker:
        await broker.start()
        await publish_event(broker, sample_registered())
        await asyncio.wait_for(gave_up.wait(), 10)
        for _ in range(100):
            letters = await list_dead_letters(js)
            if letters:
                break
            await asyncio.sleep(0.05)
        [letter] = letters
        assert letter.record.consumer == policy.durable
        assert "template missing" in letter.record.error

        listing = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "ombudsdesk", "deadletter", "list"],
            env={**os.environ, "OMBUDSDESK_NATS_URL": nats_server.url}, capture_output=True, text=True, timeout=60)
        assert "template missing" in listing.stdout, listing.stderr

        fault_fixed = True
        await replay_dead_letter(js, letter.sequence)
        await asyncio.wait_for(handled.wait(), 10)
        assert await list_dead_letters(js) == []
    await connection.close()
    assert len(processed) == 1
    assert "MED-2026-00001" in processed[0]
