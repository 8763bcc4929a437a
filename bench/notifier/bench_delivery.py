"""Benchmark: notices per second through the whole notifier (JetStream event -> outbox -> SMTP relay) next to a
bare aiosmtplib send loop to the same local SMTP sink in the same run (the raw limit of the sink and client).

    .venv/bin/python -m bench.notifier.bench_delivery --notices 1000 [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date, datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from aiosmtpd.controller import Controller

from ombudsdesk.embedded_nats import EmbeddedNats, free_port
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import build_notifier
from shared.events import ComplaintRegistered, Party
from shared.logging import configure_logging
from shared.messaging import ensure_streams, make_broker, publish_event


class TimingSink:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        for line in envelope.content.split(b"\r\n", 40):
            if line.startswith(b"Subject: ["):
                self.arrivals[line[10:].split(b"]", 1)[0].decode()] = time.perf_counter()
                break
        return "250 OK"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    quantiles = statistics.quantiles(ordered, n=100)
    return f"p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms"


async def bare_loop(port: int, count: int, sink: TimingSink) -> tuple[float, list[float]]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    latencies = []
    started = time.perf_counter()
    for index in range(count):
        message = EmailMessage()
        message["From"] = "plaintes@ombudsdesk.localhost"
        message["To"] = f"citizen{index}@example.org"
        message["Subject"] = f"[BARE-{index}] Accusé de réception de votre réclamation"
        message.set_content("Madame, Monsieur,\n\nNous avons bien reçu votre réclamation.\n" * 20)
        sent_at = time.perf_counter()
        await client.send_message(message)
        latencies.append(time.perf_counter() - sent_at)
    elapsed = time.perf_counter() - started
    await client.quit()
    return count / elapsed, latencies


async def notifier_run(nats_url: str, port: int, database_url: str, count: int, sink: TimingSink, var_dir: Path):
    settings = NotifierSettings(nats_url=nats_url, relay_port=port, notifier_database_url=database_url,
                                var_dir=var_dir, log_level="WARNING")
    service = build_notifier(settings)
    await service.start()
    broker = make_broker(settings)
    published: dict[str, float] = {}
    try:
        async with broker:
            await broker.connect()
            await ensure_streams(broker.connection.jetstream())
            started = time.perf_counter()
            for index in range(count):
                number = f"MED-2026-{index + 1:05d}"
                event = ComplaintRegistered(
                    complaint_number=number, message_key=f"bench-{index}", channel="email",
                    received_at=datetime.now(timezone.utc), legal_start=date.today(),
                    complainant=Party(name=f"Citizen {index}", email=f"citizen{index}@example.org"),
                    acknowledgment_due=date.today(), answer_due=date.today(),
                )
                published[number] = time.perf_counter()
                await publish_event(broker, event)
            while len([key for key in sink.arrivals if key.startswith("MED-")]) < count:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
    finally:
        await service.stop()
    latencies = [sink.arrivals[number] - at for number, at in published.items()]
    return count / elapsed, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notices", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        sink = TimingSink()
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            with EmbeddedNats(root / "nats") as nats_server:
                bare_rate, bare_latencies = await bare_loop(port, args.notices, sink)
                database_url = args.database_url or f"sqlite+aiosqlite:///{root / 'notifier.db'}"
                rate, latencies = await notifier_run(nats_server.url, port, database_url, args.notices, sink, root)
        finally:
            controller.stop()
    backend = database_url.split(":", 1)[0]
    print(f"notices: {args.notices}, database: {backend}")
    print(f"bare aiosmtplib send loop (raw limit): {bare_rate:8.1f} mails/s   per send: {percentiles(bare_latencies)}")
    print(f"notifier end to end:                   {rate:8.1f} notices/s event -> mail: {percentiles(latencies)}")
    print(f"notifier / raw limit: {rate / bare_rate:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
