"""Parsing large messages in child processes that can be killed: a parse past its time limit is stopped for real.

A thread cannot be stopped in Python: a hostile mail that makes the parser loop used to keep its thread (and the
GIL) busy for as long as it liked, long after intake had quarantined it. Here each large message is parsed in one of
a few long-lived worker processes (started by multiprocessing's "forkserver" method: forked from a clean server
process that has already imported the parser, never from the service's own threaded event-loop process). The
worker gets the raw bytes and the parse context over a pipe and sends back the pickled `Understanding`. When the
time limit passes, the worker is killed (SIGKILL) and replaced by a fresh one at the next large message; a worker
that dies on a message (segmentation fault, out of memory) fails that message only.

The waits on the pipes run in a small thread pool of this module's own (one thread per worker), so the event loop
never blocks on reading a 25 MB result, and the default executor (used by the letters folder) is left alone.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

import structlog

log = structlog.get_logger(__name__)

START_METHOD = "forkserver"
# Imported once by the fork server, so that each worker starts with the parser loaded.
PRELOAD = ["services.intake.message.understanding"]
# How long a killed worker may take to be reaped before it counts as stuck (see `ParseProcesses.stuck`).
REAP_POLL_SECONDS = 0.2


class ParseTimedOut(Exception):
    """The parse did not finish in time; its worker process was killed."""


class ParserProcessDied(RuntimeError):
    """The worker process ended while parsing (crash, killed by the system): this message is the suspect."""


def _serve(connection: Connection) -> None:
    """A worker's life: parse job after job until the pipe closes (the service stopped or killed it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle; it then closes the pipes
    while True:
        try:
            parse, context = connection.recv()
            raw = connection.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            payload = pickle.dumps((True, parse(raw, context)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the service, which quarantines
            try:
                payload = pickle.dumps((False, error), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled: its type name and text
                payload = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
        del raw
        try:
            connection.send_bytes(payload)
        except (EOFError, OSError):
            return


class _Worker:
    def __init__(self, context: BaseContext) -> None:
        parent_end, child_end = context.Pipe(duplex=True)
        self.connection = parent_end
        self.process = context.Process(target=_serve, args=(child_end,), name="intake-parse", daemon=True)
        self.process.start()
        # Our copy of the child's end must go: the child's death must show up as end-of-file on ours.
        child_end.close()

    def exchange(self, parse: Callable[..., Any], raw: bytes, context: Any) -> tuple[bool, Any]:
        """Send one job and wait for its answer (runs in the module's thread pool)."""
        try:
            self.connection.send((parse, context))
            self.connection.send_bytes(raw)
            answer = self.connection.recv_bytes()
        except (EOFError, OSError):
            raise ParserProcessDied(self._death()) from None
        return pickle.loads(answer)

    def _death(self) -> str:
        self.process.join(1.0)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"the parser process was killed by signal {-code}"
        return f"the parser process ended unexpectedly (exit code {code})"

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.connection.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive() and not self.connection.closed


class ParseProcesses:
    """At most `workers` parses at once, each in a worker process, each stopped for good at its time limit."""

    def __init__(self, workers: int, *, start_method: str = START_METHOD) -> None:
        self.workers = workers
        self._start_method = start_method
        self._context: BaseContext | None = None
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._slots: asyncio.Semaphore | None = None
        self._threads: ThreadPoolExecutor | None = None
        # Killed workers not yet reaped (a process in uninterruptible sleep cannot die at once).
        self.stuck = 0
        self.killed = 0

    def _multiprocessing(self) -> BaseContext:
        if self._context is None:
            context = multiprocessing.get_context(self._start_method)
            if self._start_method == "forkserver":
                context.set_forkserver_preload(PRELOAD)
            self._context = context
        return self._context

    def _executor(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="intake-parse-io")
        return self._threads

    async def parse(self, parse: Callable[..., Any], raw: bytes, context: Any, timeout: float) -> Any:
        """`parse(raw, context)` in a worker process; `ParseTimedOut` (worker killed) after `timeout` seconds."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        loop = asyncio.get_running_loop()
        async with self._slots:
            worker = await self._take(loop)
            self._busy.add(worker)
            started: asyncio.Future[None] = loop.create_future()

            def exchange_from_a_thread() -> tuple[bool, Any]:
                loop.call_soon_threadsafe(_resolve, started)
                return worker.exchange(parse, raw, context)

            exchange = loop.run_in_executor(self._executor(), exchange_from_a_thread)
            try:
                # The limit runs from the start of the parse: waiting for a place, or for a thread of the pool (one
                # may still wait for a killed worker's end of file), is not the message's fault.
                await asyncio.wait((started, exchange), return_when=asyncio.FIRST_COMPLETED)
                ok, value = await asyncio.wait_for(asyncio.shield(exchange), timeout)
            except TimeoutError:
                self._retire(worker, exchange)
                raise ParseTimedOut(timeout) from None
            except ParserProcessDied:
                self._busy.discard(worker)
                worker.kill()
                raise
            except BaseException:  # cancelled: the worker's state is unknown, it must not serve again
                self._retire(worker, exchange)
                raise
            self._busy.discard(worker)
            self._idle.append(worker)
        if not ok:
            raise value
        return value

    async def _take(self, loop: asyncio.AbstractEventLoop) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
            worker.kill()
        # Starting a process talks to the fork server (and starts it the first time): not on the event loop.
        return await loop.run_in_executor(self._executor(), _Worker, self._multiprocessing())

    def _retire(self, worker: _Worker, exchange: asyncio.Future[Any]) -> None:
        self._busy.discard(worker)
        worker.kill()
        self.killed += 1
        exchange.add_done_callback(_retrieve)
        if worker.process.is_alive():
            self.stuck += 1
            asyncio.get_running_loop().create_task(self._reaped(worker))
        log.warning("intake.parse_killed", pid=worker.process.pid, killed_since_start=self.killed)

    async def _reaped(self, worker: _Worker) -> None:
        try:
            while worker.process.is_alive():
                await asyncio.sleep(REAP_POLL_SECONDS)
        finally:
            self.stuck -= 1

    def close(self) -> None:
        """Stop every worker (the service is stopping); a parse still running fails with `ParserProcessDied`."""
        for worker in [*self._idle, *self._busy]:
            worker.kill()
        self._idle.clear()
        self._busy.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    def pids(self) -> list[int]:
        """The worker processes alive now (for tests and the health report)."""
        return [worker.process.pid for worker in [*self._idle, *self._busy]
                if worker.process.pid is not None and worker.process.is_alive()]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # the killed worker's exchange fails with ParserProcessDied: nobody awaits it any more
