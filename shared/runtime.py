"""Running one service in the foreground: logging set-up, SIGINT/SIGTERM handling, clean shutdown."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol

import structlog

from shared.logging import configure_logging
from shared.settings import CommonSettings


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


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
