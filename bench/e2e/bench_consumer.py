"""What consuming an event costs before any work is done (issue 12): the services' durable subscriber (FastStream's
pull subscriber with `shared.messaging`'s settlement, batches of 32) against a bare nats-py pull loop (fetch 32,
validate each event with pydantic, acknowledge), on the same events in the same embedded NATS.

    .venv/bin/python bench/e2e/bench_consumer.py [--events 6000]

Both handlers do nothing but count: the difference is the subscriber's own CPU per event, the most a leaner consumer
could save. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig  # noqa: E402

from ombudsdesk.embedded_nats import EmbeddedNats  # noqa: E402
from shared import streams  # noqa: E402
from shared.events import NotificationSent  # noqa: E402
from shared.messaging import durable_subscriber, make_broker  # noqa: E402
from shared.settings import CommonSettings  # noqa: E402
from shared.stream_admin import ensure_streams  # noqa: E402

TIMEOUT = 300.0
BATCH = 32


def event(index: int) -> NotificationSent:
    return NotificationSent(notification_key=f"acknowledgment:{index}", complaint_number="MED-2026-00001",
                            notice_kind="acknowledgment", recipient="citizen@example.org",
                            message_id=f"<{index}@bench.example.org>", subject_line="Accusé de réception")


async def publish(url: str, count: int) -> None:
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        await ensure_streams(js)
        for start in range(0, count, 500):
            acks = [await js.publish_async(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": e.dedup_id()})
                    for e in map(event, range(start, min(start + 500, count)))]
            await asyncio.gather(*acks)
    finally:
        await connection.close()


def report(what: str, count: int, wall: float, cpu: float) -> None:
    print(f"  {what:<44} {count / wall:8.0f} events/s   CPU {1000 * cpu / count:.3f} ms/event", flush=True)


async def services_subscriber(url: str, count: int) -> None:
    settings = CommonSettings(nats_url=url)
    broker = make_broker(settings)
    done = asyncio.Event()
    seen = 0

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_NOTIFICATION_SENT, durable="bench-services",
                        batch=BATCH)
    async def handler(_event: NotificationSent) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            done.set()

    cpu, wall = time.process_time(), time.perf_counter()
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), TIMEOUT)
        report("services' subscriber (FastStream + settlement)", count, time.perf_counter() - wall,
               time.process_time() - cpu)
    finally:
        await broker.stop()


async def bare_loop(url: str, count: int) -> None:
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        subscription = await js.pull_subscribe(streams.SUBJECT_NOTIFICATION_SENT, durable="bench-bare",
                                               config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                                     max_ack_pending=1000))
        cpu, wall = time.process_time(), time.perf_counter()
        seen, deadline = 0, wall + TIMEOUT

        async def settle(message) -> None:  # type: ignore[no-untyped-def]
            NotificationSent.model_validate_json(message.data)
            await message.ack()

        while seen < count and time.perf_counter() < deadline:
            try:
                messages = await subscription.fetch(BATCH, timeout=0.05)
            except nats.errors.TimeoutError:
                continue
            await asyncio.gather(*(settle(message) for message in messages))
            seen += len(messages)
        report("bare nats-py pull loop (validate, ack)", seen, time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6000)
    args = parser.parse_args()
    from shared.logging import configure_logging

    configure_logging("WARNING", "console", service="bench")
    print(f"consuming events — {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as folder, EmbeddedNats(Path(folder) / "jetstream") as server:
        await publish(server.url, args.events)
        await services_subscriber(server.url, args.events)
        await bare_loop(server.url, args.events)


if __name__ == "__main__":
    asyncio.run(main())
