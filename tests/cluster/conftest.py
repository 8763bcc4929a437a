"""Fixtures of the fault tests: one private PostgreSQL per test module (never the machine's server: these tests
restart theirs), a `FaultStack` per test, and the figures each test reports, repeated in pytest's summary so that
they are seen without `-s` (docs/resilience.md keeps them)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import FaultStack
from tests.cluster.postgres import PrivatePostgres
from tests.conftest import require_or_skip

FIGURES: list[tuple[str, dict[str, object]]] = []


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = PrivatePostgres.available()
    if reason:
        require_or_skip(reason)
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def fault_stack(private_postgres: PrivatePostgres, tmp_path: Path) -> AsyncIterator[FaultStack]:
    # A short folder name: it names the stack's databases, and NATS socket paths must stay short.
    folder = Path(tempfile.mkdtemp(prefix="faults-", dir=tmp_path))
    async with FaultStack(folder, private_postgres) as stack:
        yield stack


@pytest.fixture
def report_figures(request: pytest.FixtureRequest):
    """`report_figures(dict)`: printed now (seen with -s) and again in the session's summary."""

    def report(figures: dict[str, object]) -> None:
        print(f"\n[{request.node.name}] " + json.dumps(figures, ensure_ascii=False, default=str))
        FIGURES.append((request.node.nodeid, figures))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault tests: figures")
    for nodeid, figures in FIGURES:
        terminalreporter.write_line(nodeid)
        for key, value in figures.items():
            terminalreporter.write_line(f"    {key}: {json.dumps(value, ensure_ascii=False, default=str)}")
