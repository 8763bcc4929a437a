"""Benchmark: notices per second through the whole notifier (JetStream event -> outbox -> SMTP relay) next to a
bare aiosmtplib send loop to the same local SMTP sink in the same run (the raw limit of the sink and client).
The sink runs in its own process; times are wall-clock (`time.time`) on the same machine.

    .venv/bin/python -m bench.notifier.bench_delivery --notices 1000 [--paced 100]
        [--database-url postgresql+asyncpg://...]

The burst's event -> mail latency is mostly queueing behind the burst; the paced figures are what a citizen sees.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from ombudsdesk.embedded_nats import EmbeddedNats, free_port
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import build_notifier
from shared.events import ComplaintRegistered, Party
from shared.logging import configure_logging
from shared.messaging import make_broker, publish_event
from shared.stream_admin import ensure_streams


class TimingSink:
    """The SMTP sink process (bench/notifier/sink.py) and the arrival time of each mail, by case number."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: dict[str, float] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.notifier.sink", str(self.port), stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout
        assert (await self.process.stdout.readline()).strip() == b"ready"
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process and self.process.stdout
        async for line in self.process.stdout:
            number, arrived = line.decode().split()
            self.arrivals[number] = float(arrived)

    async def stop(self) -> None:
        if self.process:
            self.process.terminate()
            await self.process.wait()
        if self._reader:
            await self._reader


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    quantiles = statistics.quantiles(ordered, n=100)
    return f"p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms"


async def bare_loop(port: int, count: int) -> tuple[float, list[float]]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    latencies = []
    started = time.time()
    for index in range(count):
        message = EmailMessage()
        message["From"] = "plaintes@ombudsdesk.localhost"
        message["To"] = f"citizen{index}@example.org"
        message["Subject"] = f"[BARE-{index}] Accusé de réception de votre réclamation"
        message.set_content("Madame, Monsieur,\n\nNous avons bien reçu votre réclamation.\n" * 20)
        sent_at = time.time()
        await client.send_message(message)
        latencies.append(time.time() - sent_at)
    elapsed = time.time() - started
    await client.quit()
    return count / elapsed, latencies


async def notifier_run(
    nats_url: str, port: int, database_url: str, count: int, sink: TimingSink, var_dir: Path, paced: int
) -> tuple[float, list[float], list[float]]:
    """A burst of `count` events as fast as JetStream takes them, then `paced` events 0.1 s apart (the latency a
    citizen sees on an ordinary day)."""
    settings = NotifierSettings(nats_url=nats_url, relay_port=port, notifier_database_url=database_url,
                                var_dir=var_dir, log_level="WARNING")
    service = build_notifier(settings)
    await service.start()
    broker = make_broker(settings)
    published: dict[str, float] = {}
    paced_latencies: list[float] = []
    try:
        async with broker:
            await broker.connect()
            await ensure_streams(broker.connection.jetstream())
            started = time.time()
            for index in range(count):
                number = f"MED-2026-{index + 1:05d}"
                published[number] = time.time()
                await publish_event(broker, sample_event(number, index))
            while len([key for key in sink.arrivals if key.startswith("MED-")]) < count:
                await asyncio.sleep(0.01)
            elapsed = time.time() - started
            for index in range(paced):
                number = f"MED-2027-{index + 1:05d}"
                sent_at = time.time()
                await publish_event(broker, sample_event(number, index))
                while number not in sink.arrivals:
                    await asyncio.sleep(0.001)
                paced_latencies.append(sink.arrivals[number] - sent_at)
                await asyncio.sleep(0.1)
    finally:
        await service.stop()
    latencies = [sink.arrivals[number] - at for number, at in published.items()]
    return count / elapsed, latencies, paced_latencies


def sample_event(number: str, index: int) -> ComplaintRegistered:
    return ComplaintRegistered(
        complaint_number=number, message_key=f"bench-{number}", channel="email",
        received_at=datetime.now(timezone.utc), legal_start=date.today(),
        complainant=Party(name=f"Citizen {index}", email=f"citizen{index}@example.org"),
        acknowledgment_due=date.today(), answer_due=date.today(),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notices", type=int, default=1000)
    parser.add_argument("--paced", type=int, default=100, help="notices sent one by one afterwards, for latency")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        port = free_port()
        sink = TimingSink(port)
        await sink.start()
        try:
            with EmbeddedNats(root / "nats") as nats_server:
                bare_rate, bare_latencies = await bare_loop(port, args.notices)
                database_url = args.database_url or f"sqlite+aiosqlite:///{root / 'notifier.db'}"
                rate, latencies, paced = await notifier_run(nats_server.url, port, database_url, args.notices, sink,
                                                            root, args.paced)
        finally:
            await sink.stop()
    backend = database_url.split(":", 1)[0]
    print(f"notices: {args.notices}, database: {backend}")
    print(f"bare aiosmtplib send loop (raw limit): {bare_rate:8.1f} mails/s   per send: {percentiles(bare_latencies)}")
    print(f"notifier end to end:                   {rate:8.1f} notices/s event -> mail: {percentiles(latencies)}")
    print(f"notifier / raw limit: {rate / bare_rate:.0%}")
    if len(paced) >= 2:
        print(f"notifier, one notice at a time ({args.paced}, 0.1 s apart): event -> mail: {percentiles(paced)}")


if __name__ == "__main__":
    asyncio.run(main())
