"""The whole system for end-to-end tests: the three services in-process or as real subprocesses, one mail catcher."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from ombudsdesk.embedded_nats import free_port, wait_for_port
from ombudsdesk.mailcatcher import MailCatcher
from services.intake.settings import IntakeSettings
from services.intake.wiring import build_intake
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import build_notifier
from services.registry.settings import RegistrySettings
from services.registry.wiring import build_registry
from shared.settings import load_settings

COMPLAINT_ADDRESS = "plaintes@ombudsdesk.localhost"


@dataclass
class StackConfig:
    """Every setting of one test stack, as environment variables (the form a real deployment uses)."""

    nats_url: str
    var_dir: Path
    registry_database_url: str
    notifier_database_url: str
    relay_port: int
    smtp_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    notifier_health_port: int = field(default_factory=free_port)

    def environment(self) -> dict[str, str]:
        return {
            "OMBUDSDESK_NATS_URL": self.nats_url,
            "OMBUDSDESK_VAR_DIR": str(self.var_dir),
            "OMBUDSDESK_REGISTRY_DATABASE_URL": self.registry_database_url,
            "OMBUDSDESK_NOTIFIER_DATABASE_URL": self.notifier_database_url,
            "OMBUDSDESK_RELAY_HOST": "127.0.0.1",
            "OMBUDSDESK_RELAY_PORT": str(self.relay_port),
            "OMBUDSDESK_SMTP_PORT": str(self.smtp_port),
            "OMBUDSDESK_INTAKE_HEALTH_PORT": str(self.health_port),
            "OMBUDSDESK_REGISTRY_API_PORT": str(self.api_port),
            "OMBUDSDESK_NOTIFIER_HEALTH_PORT": str(self.notifier_health_port),
            "OMBUDSDESK_COMPLAINT_ADDRESSES": COMPLAINT_ADDRESS,
            "OMBUDSDESK_ACK_WAIT_SECONDS": "5",
        }

    def overrides(self) -> dict[str, object]:
        return {
            "nats_url": self.nats_url,
            "var_dir": self.var_dir,
            "ack_wait_seconds": 5.0,
        }


class InProcessStack:
    """The three services built by their own wiring functions, in this event loop."""

    def __init__(self, config: StackConfig, intake_settings: dict[str, object] | None = None) -> None:
        common = config.overrides()
        self.intake = build_intake(load_settings(
            IntakeSettings, **common, smtp_port=config.smtp_port, intake_health_port=config.health_port,
            complaint_addresses=[COMPLAINT_ADDRESS], **(intake_settings or {})))
        self.registry = build_registry(load_settings(
            RegistrySettings, **common, registry_database_url=config.registry_database_url,
            registry_api_port=config.api_port))
        self.notifier = build_notifier(load_settings(
            NotifierSettings, **common, notifier_database_url=config.notifier_database_url,
            relay_host="127.0.0.1", relay_port=config.relay_port, notifier_health_port=config.notifier_health_port))

    async def start(self) -> None:
        for service in (self.registry, self.notifier, self.intake):
            await service.start()

    async def stop(self) -> None:
        for service in (self.intake, self.notifier, self.registry):
            await service.stop()


class ServiceProcess:
    """One service as a real process (`python -m services.<name>`), to be killed like a crash would."""

    def __init__(self, name: str, config: StackConfig, log_dir: Path) -> None:
        self.name = name
        self.config = config
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {**os.environ, **self.config.environment(), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], env=environment,
                                            stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def complaint_mail(sender: str, subject: str, body: str, message_id: str | None = None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = COMPLAINT_ADDRESS
    mail["Subject"] = subject
    if message_id:
        mail["Message-ID"] = message_id
    mail.set_content(body)
    return mail


def send_mail(port: int, mail: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(mail)


async def send_mail_async(port: int, mail: EmailMessage) -> None:
    await asyncio.to_thread(send_mail, port, mail)


async def start_catcher(outbox: Path) -> MailCatcher:
    catcher = MailCatcher(outbox, port=free_port())
    await catcher.start()
    await asyncio.to_thread(wait_for_port, catcher.port)
    return catcher


@dataclass
class RunningStack:
    """What `running_stack` yields: the services, the mail catcher, the settings, and the public pages' address
    (None when the public port is not opened)."""

    services: InProcessStack
    catcher: MailCatcher
    config: StackConfig
    public_url: str | None = None


def sqlite_urls(folder: Path) -> tuple[str, str]:
    """The registry's and the notifier's databases: two SQLite files in `folder`."""
    return (f"sqlite+aiosqlite:///{folder / 'registry.db'}", f"sqlite+aiosqlite:///{folder / 'notifier.db'}")


@asynccontextmanager
async def running_stack(nats_url: str, folder: Path, *, databases: tuple[str, str] | None = None,
                        intake_settings: dict[str, object] | None = None,
                        public_web: bool = False) -> AsyncIterator[RunningStack]:
    """The three services in this event loop, on SQLite files in `folder` unless `databases` names others (e.g. two
    PostgreSQL databases), a mail catcher as their relay, and (`public_web`) intake's public pages on a free port."""
    catcher = await start_catcher(folder / "outbox")
    registry_url, notifier_url = databases or sqlite_urls(folder)
    config = StackConfig(nats_url=nats_url, var_dir=folder / "var", registry_database_url=registry_url,
                         notifier_database_url=notifier_url, relay_port=catcher.port)
    settings = dict(intake_settings or {})
    public_url = None
    if public_web:
        settings["public_web_port"] = port = free_port()
        public_url = f"http://127.0.0.1:{port}"
    services = InProcessStack(config, intake_settings=settings)
    try:
        await services.start()
        yield RunningStack(services, catcher, config, public_url)
    finally:
        await services.stop()
        await catcher.stop()


@dataclass
class LoggedProcesses:
    """What `logged_processes` yields: the three services as processes writing JSON logs, and their mail catcher."""

    services: dict[str, ServiceProcess]
    catcher: MailCatcher
    config: StackConfig


@asynccontextmanager
async def logged_processes(nats_url: str, folder: Path, monkeypatch: object) -> AsyncIterator[LoggedProcesses]:
    """The registry, the notifier and intake as real processes on SQLite files in `folder`, logging JSON lines at
    INFO to `folder/logs/<service>.log`, once intake's SMTP port answers; stopped side by side afterwards."""
    catcher = await start_catcher(folder / "outbox")
    registry_url, notifier_url = sqlite_urls(folder)
    config = StackConfig(nats_url=nats_url, var_dir=folder / "var", registry_database_url=registry_url,
                         notifier_database_url=notifier_url, relay_port=catcher.port)
    monkeypatch.setenv("OMBUDSDESK_LOG_FORMAT", "json")  # type: ignore[attr-defined]
    monkeypatch.setenv("OMBUDSDESK_LOG_LEVEL", "INFO")  # type: ignore[attr-defined]
    log_dir = folder / "logs"
    log_dir.mkdir(exist_ok=True)
    services = {name: ServiceProcess(name, config, log_dir) for name in ("registry", "notifier", "intake")}
    for service in services.values():
        service.start()
    try:
        await asyncio.to_thread(wait_for_port, config.smtp_port, 60)
        yield LoggedProcesses(services, catcher, config)
    finally:
        # Side by side: each process takes its time to drain and stop.
        await asyncio.gather(*(asyncio.to_thread(service.terminate) for service in services.values()))
        await catcher.stop()
