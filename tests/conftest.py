"""Fixtures over real parts: a NATS server spawned from the wheel, PostgreSQL databases, SQLite files.

PostgreSQL (and later Dovecot) tests are skipped with a visible reason on a machine without them, but fail when
`CI=true`: CI must prove every storage path.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ombudsdesk.embedded_nats import EmbeddedNats

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("OMBUDSDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_or_skip(reason: str) -> None:
    """Skip with the reason on a developer's machine; fail in CI where every real part must be proven.

    The one way a test of this project skips: `tests/test_skips.py` fails on any other `pytest.skip`, `skipif`,
    `mark.skip` or `importorskip` under tests/.
    """
    if IN_CI:
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """The net under `require_or_skip`: in CI a skip from anywhere else (a plugin, a library) fails as well."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(tmp_path / "jetstream", log_file=tmp_path / "nats.log") as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


def _postgres_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _postgres_admin(sql: str) -> None:
    """Run one administrative statement, in a thread of its own so that async fixtures may call it too."""
    import asyncio
    import threading

    import asyncpg

    async def execute() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    failure: list[BaseException] = []

    def runner() -> None:
        try:
            asyncio.run(execute())
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            failure.append(error)

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


@pytest.fixture
def postgres_database_factory() -> Iterator[Callable[[], str]]:
    """Creates fresh, empty PostgreSQL databases on demand (one per service), dropped after the test."""
    from sqlalchemy import make_url

    admin = make_url(POSTGRES_ADMIN_URL)
    if not _postgres_reachable(admin.host or "127.0.0.1", admin.port or 5432):
        require_or_skip(f"no PostgreSQL at {admin.host}:{admin.port} (set OMBUDSDESK_TEST_POSTGRES_URL)")
    created: list[str] = []

    def create() -> str:
        name = f"ombudsdesk_test_{uuid.uuid4().hex[:12]}"
        try:
            _postgres_admin(f'CREATE DATABASE "{name}"')
        except Exception as error:  # noqa: BLE001 - any refusal means no usable PostgreSQL here
            require_or_skip(f"cannot create a PostgreSQL database at {admin.host}:{admin.port}: {error}")
        created.append(name)
        return admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)

    yield create
    for name in created:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database_factory: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_database_factory()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")
