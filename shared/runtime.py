"""Running one service in the foreground: logging set-up, SIGINT/SIGTERM handling, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import Protocol

import structlog

from shared.logging import configure_logging
from shared.settings import CommonSettings


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def freeze_startup_heap() -> None:
    """Leave what is alive once the service has started (modules, models, compiled statements and templates, the
    broker, the engine) out of every later garbage collection.

    CPython's full collection walks every object it tracks. A started registry holds about 260,000 that live as long
    as the process, and under load a full collection came every 2-3 s, each 0.1-0.3 s of CPU and as long a pause:
    about 0.5 ms of the registry's CPU per complaint, measured with `gc.callbacks` (docs/benchmarks.md, "The heap of
    the start frozen"). `gc.freeze()` moves the objects alive now to a permanent generation that collections skip;
    reference counting still frees them.

    What it costs: one collection now; and an object alive now that later dies in a reference cycle (the start's NATS
    transport and its tasks after a reconnect, the pool's first connections after a PostgreSQL restart, a batch in
    flight at this moment) is never reclaimed, nor what it still holds then. Each such object dies once, so the
    memory kept is bounded by what was alive at this call and does not grow with the events handled.
    """
    gc.collect()
    gc.freeze()


async def serve_until_signalled(service: Service, name: str) -> None:
    log = structlog.get_logger(name)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        await service.start()
    except BaseException:
        # Half started (broker connected, database open...): release what was acquired, then report the cause.
        try:
            await service.stop()
        except Exception as cleanup_error:  # noqa: BLE001 - the start-up failure is what must surface
            log.warning("service.cleanup_failed", error=repr(cleanup_error))
        raise
    freeze_startup_heap()
    log.info("service.started")
    try:
        await stop_requested.wait()
    finally:
        log.info("service.stopping")
        await service.stop()
        log.info("service.stopped")


def run_service(service: Service, settings: CommonSettings, name: str) -> None:
    configure_logging(settings.log_level, settings.log_format, service=name)
    asyncio.run(serve_until_signalled(service, name))
