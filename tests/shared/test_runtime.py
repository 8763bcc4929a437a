"""A service run in the foreground (`shared.runtime`): what its start built is left out of later garbage
collections, a failed start is cleaned up and reported, SIGTERM stops it.

Each case runs in a process of its own, as a service does: the freeze must not reach the test session's heap (one
collection of a session's heap after thousands of tests takes seconds), nor the SIGTERM the session itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A service whose start builds three objects the collector tracks, and records whether the collector still walks
# them (`gc.get_objects` leaves out the frozen ones) during its start and once it runs; then it stops itself with a
# SIGTERM, as systemd would. The outcome is printed as JSON.
_SERVICE = """
import asyncio, gc, json, os, signal, sys
from shared.runtime import serve_until_signalled

class Built:
    "Something a start builds and keeps: an object the collector tracks."

def walked(objects):
    ids = {id(tracked) for tracked in gc.get_objects()}
    return [id(candidate) in ids for candidate in objects]

class Service:
    def __init__(self, fail):
        self.fail, self.built, self.during_start, self.running, self.stopped = fail, [], [], [], False

    async def start(self):
        self.built = [Built() for _ in range(3)]
        self.during_start = walked(self.built)
        if self.fail:
            raise RuntimeError("the database is unreachable")
        asyncio.get_running_loop().call_later(0.05, self.signal_stop)

    def signal_stop(self):
        self.running = walked(self.built)
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self):
        self.stopped = True

service = Service(fail=sys.argv[1] == "fail")
error = None
try:
    asyncio.run(serve_until_signalled(service, "test"))
except RuntimeError as raised:
    error = str(raised)
print(json.dumps({"during_start": service.during_start, "running": service.running, "stopped": service.stopped,
                  "error": error, "frozen": gc.get_freeze_count()}))
"""


def _run(mode: str) -> dict[str, object]:
    completed = subprocess.run([sys.executable, "-c", _SERVICE, mode], cwd=ROOT, capture_output=True, text=True,
                               timeout=60, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_what_the_start_built_is_frozen_once_started() -> None:
    outcome = _run("start")

    assert outcome["error"] is None
    assert outcome["stopped"] is True
    assert outcome["during_start"] == [True, True, True]
    # Once started, what the start built is in the permanent generation: no collection walks it any more.
    assert outcome["running"] == [False, False, False]
    assert outcome["frozen"] > 0


def test_a_failed_start_is_stopped_and_reported_without_freezing() -> None:
    outcome = _run("fail")

    assert outcome["error"] == "the database is unreachable"
    assert outcome["stopped"] is True
    assert outcome["during_start"] == [True, True, True]
    assert outcome["frozen"] == 0
