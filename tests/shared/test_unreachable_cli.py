"""With the stack stopped, every staff command that needs NATS or a database ends within 5 s (plus the interpreter's
start-up) with one line naming what is unreachable and the setting to check (issue 10: `ombudsdesk intake
quarantine list` used to hang for ever). The real `ombudsdesk` command, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ombudsdesk.embedded_nats import free_port

# 5 s for the command, and the start-up of a Python interpreter importing every service on a busy 2-CPU machine.
DEADLINE_SECONDS = 5.0 + 4.0
NATS_COMMANDS = [
    ["intake", "quarantine", "list"],
    ["intake", "quarantine", "show", "abc"],
    ["intake", "quarantine", "replay", "--all"],
    ["deadletter", "list"],
    ["deadletter", "show", "1"],
    ["deadletter", "replay", "1"],
]
DATABASE_COMMANDS = [
    (["register", "list"], "OMBUDSDESK_REGISTRY_DATABASE_URL"),
    (["notifier", "outbox"], "OMBUDSDESK_NOTIFIER_DATABASE_URL"),
    (["notifier", "flags"], "OMBUDSDESK_NOTIFIER_DATABASE_URL"),
    (["notifier", "print-queue", "list"], "OMBUDSDESK_NOTIFIER_DATABASE_URL"),
]


def run(arguments: list[str], tmp_path: Path, **environment: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"), **environment}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "ombudsdesk", *arguments], env=env, capture_output=True,
                            text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    return result, time.monotonic() - started


@pytest.mark.parametrize("arguments", NATS_COMMANDS, ids=" ".join)
def test_nats_commands_say_nats_is_unreachable(arguments, tmp_path):
    port = free_port()  # nobody listens there
    result, took = run(arguments, tmp_path, OMBUDSDESK_NATS_URL=f"nats://127.0.0.1:{port}")
    assert result.returncode == 3, result.stderr
    assert took < DEADLINE_SECONDS
    assert result.stderr.strip() == (f"ombudsdesk: cannot reach NATS at nats://127.0.0.1:{port} "
                                     "(OMBUDSDESK_NATS_URL): connection refused")


@pytest.mark.parametrize(("arguments", "variable"), DATABASE_COMMANDS, ids=lambda value: " ".join(value)
                         if isinstance(value, list) else value)
def test_database_commands_say_the_database_is_unreachable(arguments, variable, tmp_path):
    port = free_port()
    result, took = run(arguments, tmp_path, **{variable: f"postgresql+asyncpg://staff:secret@127.0.0.1:{port}/x"})
    assert result.returncode == 3, result.stderr
    assert took < DEADLINE_SECONDS
    assert result.stderr.strip() == (f"ombudsdesk: cannot reach the database postgresql+asyncpg://[redacted]@127.0.0.1:"
                                     f"{port}/x ({variable}): connection refused")
    assert "secret" not in result.stderr
