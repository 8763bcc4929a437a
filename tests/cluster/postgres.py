"""A private PostgreSQL server for the fault tests: its own data folder and port, started with initdb/pg_ctl from the
Debian packages, so that a test can restart (or crash) it without touching the machine's server, which other tests use.

PostgreSQL refuses to run as root: when the tests run as root, every PostgreSQL command runs as the `postgres` system
user (`runuser`) and the folder is handed to that user.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from ombudsdesk.embedded_nats import free_port, wait_for_port

POSTGRES_BIN = Path(os.environ.get("OMBUDSDESK_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"


class PrivatePostgres:
    """initdb + pg_ctl on a free loopback port; trust authentication (loopback only, a throw-away cluster)."""

    def __init__(self) -> None:
        # Outside pytest's tmp_path: that folder is private to the user running the tests (root), and the server
        # must be able to write here as `postgres`.
        self.folder = Path(tempfile.mkdtemp(prefix="ombudsdesk-faults-pg-"))
        self.data = self.folder / "data"
        self.log_file = self.folder / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    @staticmethod
    def available() -> str | None:
        """None when this machine can run a private server, else the reason it cannot."""
        if not (POSTGRES_BIN / "initdb").exists():
            return f"no PostgreSQL binaries in {POSTGRES_BIN} (set OMBUDSDESK_TEST_POSTGRES_BIN)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                return f"running as root and no {SYSTEM_USER!r} user to run PostgreSQL as"
        return None

    def _command(self, program: str, *arguments: str, timeout: float = 90) -> None:
        command = [str(POSTGRES_BIN / program), *arguments]
        if self.as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        # stdout/stderr to the log file, never to a pipe: the postmaster inherits them, and a pipe held open by it
        # would keep `subprocess.run` waiting for ever.
        with open(self.folder / "commands.log", "ab") as log:
            completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if completed.returncode != 0:
            tail = (self.folder / "commands.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{program} {' '.join(arguments)} failed ({completed.returncode}):\n{tail}")

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.folder, SYSTEM_USER, SYSTEM_USER)
        self._command("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-instructions", "--no-sync")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   "-c shared_buffers=32MB")
        self._command("pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w", "-t", "60", "-o", options,
                      "start")
        wait_for_port(self.port, timeout=30)

    def restart(self, mode: str) -> float:
        """`pg_ctl restart -m fast|immediate`; the seconds the server was unreachable (stop + start)."""
        started = time.monotonic()
        # The options of the first start are kept in postmaster.opts and used again.
        self._command("pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-m", mode, "-w", "-t", "60",
                      "restart")
        wait_for_port(self.port, timeout=30)
        return time.monotonic() - started

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # the folder goes anyway; a server left behind would show in the log
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        connection = await asyncpg.connect(self.url("postgres", "postgresql"))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    async def fetch(self, database: str, query: str) -> list[asyncpg.Record]:
        """One query on one database, retried while the server restarts (bounded: 60 s)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = await asyncpg.connect(self.url(database, "postgresql"), timeout=5)
                try:
                    return await connection.fetch(query)
                finally:
                    await connection.close()
            except (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError,
                    asyncpg.InterfaceError, asyncpg.exceptions.OperatorInterventionError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
