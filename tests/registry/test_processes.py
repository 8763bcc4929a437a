"""Real registry processes (`python -m services.registry`) against a real NATS and database: two processes
sharing the work never duplicate or skip a number; a process killed mid-flow loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from services.registry.models import Complaint
from services.registry.repository import RegistryStore
from shared import streams
from shared.database import create_engine
from shared.events import ComplaintRegistered
from tests.registry.conftest import next_events, publish_all, received

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class Processes:
    def __init__(self, tmp_path: Path, nats_url: str, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "OMBUDSDESK_NATS_URL": nats_url,
            "OMBUDSDESK_REGISTRY_DATABASE_URL": database_url,
            "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"),
            "OMBUDSDESK_REGISTRY_API_PORT": "0",
            "OMBUDSDESK_LOG_LEVEL": "WARNING",
            # A killed process's unacknowledged message comes back quickly.
            "OMBUDSDESK_ACK_WAIT_SECONDS": "2",
        }
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"registry-{len(self.running)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, "-m", "services.registry"], cwd=ROOT, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _count(store: RegistryStore) -> int:
    try:
        async with store.transaction() as tx:
            return int((await tx.session.execute(select(func.count()).select_from(Complaint))).scalar_one())
    except DBAPIError:  # the processes have not created the schema yet
        return 0


async def _wait_for_count(store: RegistryStore, expected: int, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await _count(store)) < expected:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{count} of {expected} complaints registered after {timeout}s")
        await asyncio.sleep(0.2)


async def _check_exactly_once(store: RegistryStore, js, keys: list[str]) -> None:
    async with store.transaction() as tx:
        rows = (await tx.session.execute(select(Complaint.sequence, Complaint.message_key))).all()
    assert sorted(sequence for sequence, _ in rows) == list(range(1, len(keys) + 1))  # no gap, no duplicate
    assert sorted(key for _, key in rows) == sorted(keys)  # every message exactly once
    payloads = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, len(keys), "t-check", timeout=30)
    announced = [ComplaintRegistered.model_validate_json(p) for p in payloads]
    assert len({a.complaint_number for a in announced}) == len(keys)
    assert sorted(a.message_key for a in announced) == sorted(keys)


async def test_two_processes_register_2000_messages_gap_free(tmp_path, nats_server, postgres_url, js):
    events = [received(key=f"concurrent-{i}") for i in range(2000)]
    await publish_all(js, events)
    engine = create_engine(postgres_url)
    store = RegistryStore(engine)
    group = Processes(tmp_path, nats_server.url, postgres_url)
    try:
        group.start()
        group.start()
        await _wait_for_count(store, 1, 60)  # both started (migrations serialised), numbering under way
        await _wait_for_count(store, 2000, 240)
        await _check_exactly_once(store, js, [e.message_key for e in events])
        assert all(p.poll() is None for p in group.running), "a registry process died"
    finally:
        group.stop_all()
        await engine.dispose()


async def test_killed_process_loses_and_duplicates_nothing(tmp_path, nats_server, js, database_url):
    # Enough that the kill lands mid-flow: a registry committing batches registers 300 between two polls.
    events = [received(key=f"crash-{i}") for i in range(3000)]
    await publish_all(js, events)
    engine = create_engine(database_url)
    store = RegistryStore(engine)
    group = Processes(tmp_path, nats_server.url, database_url)
    try:
        victim = group.start()
        await _wait_for_count(store, 60, 60)
        victim.kill()  # SIGKILL mid-flow: no clean shutdown, transactions and acks cut wherever they are
        victim.wait()
        assert 60 <= await _count(store) < 3000
        group.start()
        await _wait_for_count(store, 3000, 240)
        await _check_exactly_once(store, js, [e.message_key for e in events])
    finally:
        group.stop_all()
        await engine.dispose()
