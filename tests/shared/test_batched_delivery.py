"""Batched durable subscribers and the group commit (issue 12), against a real NATS server.

A batched subscriber (`durable_subscriber(..., batch=N)`) fetches several events, runs their handlers concurrently,
and a `CommitGroup` runs their writes together: each event must still be acknowledged only after the commit of its
batch, a failing batch must fall back to one work at a time, and a lone event must not wait for companions longer
than `BATCH_WAIT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import time

import nats
from faststream.nats.message import NatsMessage

from shared import streams
from shared.events import ComplaintRegistered
from shared.messaging import (
    BATCH_WAIT_SECONDS,
    CommitGroup,
    durable_subscriber,
    in_batched_delivery,
    make_broker,
)
from shared.stream_admin import ensure_streams
from shared.settings import CommonSettings
from tests.shared.test_messaging import sample_registered


async def publish_all(nats_url: str, events: list[ComplaintRegistered]) -> list[float]:
    """Publish each event and wait for JetStream's acknowledgement; the monotonic time of each acknowledgement."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        await ensure_streams(js)
        published = []
        for event in events:
            await js.publish(event.subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.dedup_id()})
            published.append(time.monotonic())
        return published
    finally:
        await connection.close()


def numbered(count: int, prefix: str = "MED-2026") -> list[ComplaintRegistered]:
    return [sample_registered().model_copy(update={"complaint_number": f"{prefix}-{index:05d}"})
            for index in range(1, count + 1)]


async def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_fetched_batch_commits_once_and_every_ack_follows_that_commit(nats_server, monkeypatch):
    settings = CommonSettings(nats_url=nats_server.url)
    timeline: list[tuple[str, object]] = []
    original_ack = NatsMessage.ack

    async def recording_ack(self, *args, **kwargs):
        timeline.append(("ack", json.loads(self.raw_message.data)["complaint_number"]))
        return await original_ack(self, *args, **kwargs)

    monkeypatch.setattr(NatsMessage, "ack", recording_ack)

    async def together(works):
        await asyncio.sleep(0.05)  # a commit takes time: nothing may be acknowledged meanwhile
        timeline.append(("commit", tuple(works)))
        return [f"done {work}" for work in works]

    async def alone(work):
        timeline.append(("commit", (work,)))
        return f"done {work}"

    group = CommitGroup("test", together, alone)
    seen: list[tuple[str, bool]] = []
    await publish_all(nats_server.url, numbered(20))  # all waiting before the consumer starts: one fetch
    broker = make_broker(settings)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_COMPLAINT_REGISTERED, durable="batched", batch=32)
    async def registered(event: ComplaintRegistered) -> None:
        seen.append((await group.submit(event.complaint_number), in_batched_delivery()))

    await broker.start()
    try:
        await wait_for(lambda: sum(1 for kind, _ in timeline if kind == "ack") == 20)
    finally:
        await broker.stop()

    assert sorted(seen) == sorted((f"done MED-2026-{index:05d}", True) for index in range(1, 21))
    committed_at: dict[str, int] = {}
    for index, (kind, what) in enumerate(timeline):
        if kind == "commit":
            committed_at.update(dict.fromkeys(what, index))
    assert set(committed_at) == {f"MED-2026-{index:05d}" for index in range(1, 21)}
    acked_at = {what: index for index, (kind, what) in enumerate(timeline) if kind == "ack"}
    assert set(acked_at) == set(committed_at)
    assert all(committed_at[number] < acked_at[number] for number in acked_at)
    # Far fewer transactions than events.
    assert group.batches >= 1 and sum(1 for kind, _ in timeline if kind == "commit") <= 5


async def test_a_failing_batch_falls_back_to_one_work_at_a_time_and_only_the_poison_fails():
    calls: list[str] = []

    async def together(works):
        calls.append(f"together {len(works)}")
        if "poison" in works:
            raise RuntimeError("constraint violated")  # the database rolled the whole batch back
        return list(works)

    async def alone(work):
        calls.append(f"alone {work}")
        if work == "poison":
            raise RuntimeError("constraint violated")
        return work

    group = CommitGroup("test", together, alone)
    results = await asyncio.gather(*(group.submit(work) for work in ("a", "b", "poison", "c")),
                                   return_exceptions=True)
    assert results[:2] == ["a", "b"] and results[3] == "c"
    assert isinstance(results[2], RuntimeError)
    assert calls == ["together 4", "alone a", "alone b", "alone poison", "alone c"]
    assert (group.batches, group.fallbacks) == (0, 1)


async def test_a_lone_work_runs_alone_and_a_queue_is_served_in_bounded_transactions():
    sizes: list[int] = []

    async def together(works):
        sizes.append(len(works))
        return list(works)

    async def alone(work):
        sizes.append(1)
        return work

    group = CommitGroup("test", together, alone, limit=8)
    assert await group.submit("lone") == "lone"
    assert sizes == [1]
    assert await asyncio.gather(*(group.submit(index) for index in range(20))) == list(range(20))
    assert sizes[1:] == [8, 8, 4]


async def test_a_lone_event_is_handled_without_waiting_for_a_batch_to_fill(nats_server):
    """Each event published alone on an idle consumer reaches its handler within the batch wait (plus the time to
    deliver it), not after the fetch's wait for a full batch."""
    settings = CommonSettings(nats_url=nats_server.url)
    arrived: list[float] = []
    broker = make_broker(settings)

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_COMPLAINT_REGISTERED, durable="lone", batch=32)
    async def registered(event: ComplaintRegistered) -> None:
        arrived.append(time.monotonic())

    await publish_all(nats_server.url, [])  # the streams
    await broker.start()
    try:
        await asyncio.sleep(0.5)  # idle: the subscriber is waiting in a fetch
        published = []
        for index, event in enumerate(numbered(6, prefix="MED-2027")):
            published += await publish_all(nats_server.url, [event])
            await wait_for(lambda: len(arrived) == index + 1, timeout=10)
            await asyncio.sleep(0.3)  # idle again before the next one
    finally:
        await broker.stop()
    delays = [handled - sent for sent, handled in zip(published, arrived, strict=True)]
    # A fetch that waited for a full batch would hold each lone event up to its whole timeout (1 s before issue
    # 12's batches); the bound is the batch wait plus delivery on a busy 2-core machine.
    assert max(delays) < BATCH_WAIT_SECONDS + 0.15, delays
