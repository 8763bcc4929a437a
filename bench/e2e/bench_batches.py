"""Events committed in batches, measured per service (issue 12): the registry registering `MessageReceived` and the
notifier recording `ComplaintRegistered`, each with its batched subscriber and with the one-event-per-transaction
path of before, on the same machine in the same run.

    .venv/bin/python bench/e2e/bench_batches.py [--backend sqlite] [--backend postgres] [--events 2000]
        [--service registry] [--service notifier] [--mode one] [--mode batches]

For each service and mode: N events published to a real (embedded) NATS before the service starts, then the time
until the last one is committed, the CPU the process used meanwhile (all its threads), and the group commit's
transactions ("4 workers, one tx each" is the registry's subscriber of before: `batch=1` with its 4 workers). The
notifier sends to a bare aiosmtpd sink in another process while it records (its dispatcher, unchanged, works as in
production); the time is until the last notice is recorded and sent (so that both modes did the same work). Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

from ombudsdesk.embedded_nats import EmbeddedNats, free_port, wait_for_port  # noqa: E402
from shared.events import ComplaintRegistered, MessageReceived, Party  # noqa: E402
from shared.runtime import freeze_startup_heap  # noqa: E402
from shared.stream_admin import ensure_streams  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get("OMBUDSDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TIMEOUT = 600.0


def message(run: str, index: int) -> MessageReceived:
    return MessageReceived(
        message_key=f"{run}-{index}", received_at=datetime.now(timezone.utc),
        sender=Party(name=f"Citoyen {index}", email=f"citoyen.{run}.{index}@example.org"),
        recipients=("plaintes@ombudsdesk.localhost",), subject_line=f"Plainte : facture contestée ({index})",
        text="Madame, Monsieur, je conteste la facture d'eau reçue le 3 novembre. " * 10,
        message_id=f"<{run}.{index}@bench.example.org>")


def registered(run: str, index: int) -> ComplaintRegistered:
    return ComplaintRegistered(
        complaint_number=f"MED-2026-{index:05d}", message_key=f"{run}-{index}", channel="email",
        received_at=datetime.now(timezone.utc), legal_start=date.today(),
        complainant=Party(name=f"Citoyen {index}", email=f"citoyen.{run}.{index}@example.org"),
        subject_line=f"Plainte : facture contestée ({index})", acknowledgment_due=date.today(),
        answer_due=date.today(), reply_to_message_id=f"<{run}.{index}@bench.example.org>")


async def publish_all(url: str, events: list) -> None:
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        await ensure_streams(js)
        for start in range(0, len(events), 200):
            acks = [await js.publish_async(e.subject, e.model_dump_json().encode(),
                                           headers={"Nats-Msg-Id": e.dedup_id()}) for e in events[start:start + 200]]
            await asyncio.gather(*acks)
    finally:
        await connection.close()


async def database(backend: str, folder: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{folder / name}.db"
    import asyncpg

    database_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{database_name}"')
    finally:
        await connection.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database_name}"


@contextlib.contextmanager
def unbatched(consumer_module, really: bool):
    """The subscribers as before issue 12's batches (`batch=1`: one event per transaction), while `really`."""
    if not really:
        yield
        return
    original = consumer_module.durable_subscriber

    def one_at_a_time(*args, **kwargs):
        kwargs["batch"] = 1
        return original(*args, **kwargs)

    consumer_module.durable_subscriber = one_at_a_time
    try:
        yield
    finally:
        consumer_module.durable_subscriber = original


class StatementCounter:
    """SQL statements the service's engine sent (executemany counts once: one round trip)."""

    def __init__(self) -> None:
        self.count = 0
        self.engine = None

    def watch(self, engine) -> None:
        from sqlalchemy import event

        self.engine = engine.sync_engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


async def measure(what: str, start, count_done, group, events: int) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    service = await start()
    statements = StatementCounter()
    statements.watch(service.engine)
    try:
        freeze_startup_heap()  # as `shared.runtime` does once a service has started; undone below, for the next one
        deadline = wall + TIMEOUT
        while (done := await count_done(service)) < events:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{what}: {done} of {events} after {TIMEOUT:.0f} s")
            await asyncio.sleep(0.05)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stats = group(service)
        sent = statements.count
    finally:
        try:
            await service.stop()
        finally:
            gc.unfreeze()
    together = f"{stats.works_together} events in {stats.batches} shared transactions" if stats.batches else \
        "one transaction per event"
    # The progress polls (`count_done`, 20 a second) are among the statements counted: a few per second.
    print(f"  {what:<34} {events / wall:7.0f} events/s   CPU {1000 * cpu / events:5.2f} ms/event   "
          f"{sent / events:5.1f} SQL statements/event   ({together})", flush=True)


async def registry_run(backend: str, url: str, folder: Path, events: int, batched: bool) -> None:
    from services.registry import consumer
    from services.registry.repository import ComplaintFilter
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import build_registry

    run = uuid.uuid4().hex[:8]
    await publish_all(url, [message(run, index) for index in range(events)])
    settings = RegistrySettings(nats_url=url, registry_database_url=await database(backend, folder, f"r{run}"),
                                var_dir=folder / f"var-{run}", registry_api_port=0, log_level="WARNING")

    async def start():
        with unbatched(consumer, not batched):
            service = build_registry(settings)
        await service.start()
        return service

    async def done(service) -> int:
        return await service.store.count_complaints(ComplaintFilter())

    label = "batches of 32" if batched else "4 workers, one tx each"
    await measure(f"registry, {label}", start, done, lambda s: s.registry.uow.group, events)


async def notifier_run(backend: str, url: str, folder: Path, events: int, batched: bool) -> None:
    from sqlalchemy import func, select

    from services.notifier import consumer
    from services.notifier.models import Notice
    from services.notifier.settings import NotifierSettings
    from services.notifier.wiring import build_notifier

    run = uuid.uuid4().hex[:8]
    await publish_all(url, [registered(run, index) for index in range(1, events + 1)])
    sink_port = free_port()
    # The relay: a bare aiosmtpd sink in a process of its own (its CPU is not the notifier's).
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{sink_port}",
                             "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    settings = NotifierSettings(nats_url=url, notifier_database_url=await database(backend, folder, f"n{run}"),
                                var_dir=folder / f"var-{run}", relay_port=sink_port, log_level="WARNING")

    async def start():
        await asyncio.to_thread(wait_for_port, sink_port, 30)
        with unbatched(consumer, not batched):
            service = build_notifier(settings)
        await service.start()
        return service

    async def done(service) -> int:
        # A count, not the notices: loading 2,000 notices 20 times a second would be most of what is measured.
        async with service.engine.connect() as connection:
            return int((await connection.execute(
                select(func.count()).select_from(Notice).where(Notice.status == "sent"))).scalar_one())

    label = "batches of 32" if batched else "one event per transaction"
    try:
        await measure(f"notifier, {label}", start, done, lambda s: s.outbox.group, events)
    finally:
        sink.terminate()
        sink.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--service", action="append", choices=["registry", "notifier"],
                        help="measure only this service (default: both)")
    parser.add_argument("--mode", action="append", choices=["one", "batches"],
                        help="one event per transaction, or batches (default: both)")
    args = parser.parse_args()
    runs = {"registry": registry_run, "notifier": notifier_run}
    modes = {"one": False, "batches": True}
    print(f"events committed in batches — {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    from shared.logging import configure_logging

    configure_logging("WARNING", "console", service="bench")
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backend or ["sqlite"]:
            print(f"== {backend}, {args.events} events each", flush=True)
            for run in (runs[name] for name in args.service or runs):
                for batched in (modes[mode] for mode in args.mode or modes):
                    # A NATS of its own per run: no consumer position or event left over from another run.
                    with EmbeddedNats(Path(folder) / f"jetstream-{uuid.uuid4().hex[:8]}") as server:
                        await run(backend, server.url, Path(folder), args.events, batched)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
