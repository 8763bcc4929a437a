"""The `ombudsdesk` command: one entry point mounting each service's own command group.

    ombudsdesk run                      the whole system on embedded defaults (what `make run` calls)
    ombudsdesk run --cluster            the same as a three-node NATS cluster and two instances of each service
    ombudsdesk register ...             the register of complaints (registry)
    ombudsdesk users ...                staff accounts of the back office and the API: add, list, disable, role, token
    ombudsdesk privacy ...              retention, erasure, legal holds, rectification (issue 16)
    ombudsdesk intake ...               intake: quarantine list/show/replay/migrate-stream, retention
    ombudsdesk notifier ...             notifier: outbox and print queue
    ombudsdesk deadletter ...           events a consumer gave up on: list, show, replay
    ombudsdesk nats config --out DIR    a deployment's NATS users, permissions, TLS and password files
    ombudsdesk streams ...              JetStream streams: status, update (replicas, placement, limits from settings)
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError
from nats.js import JetStreamContext

from shared.cli_help import StaffCommand, staff_app
from shared.messaging import Unreachable, connect_client_for_command
from shared.deadletters import get_dead_letter, list_dead_letters, replay_dead_letter
from shared.logging import configure_logging, redact_url
from shared.settings import CommonSettings, load_settings
from services.intake.cli import app as intake_app
from services.notifier.cli import app as notifier_app
from services.registry.annual_report.cli import report as annual_report_command
from services.registry.mediation.administrations_cli import app as administrations_app
from services.registry.audit_cli import app as audit_app
from services.registry.privacy.cli import AFTER_ERASURE
from services.registry.privacy.cli import app as privacy_app
from services.registry.cli import app as registry_app
from services.registry.users_cli import app as users_app
from ombudsdesk.streams_cli import app as streams_app
from ombudsdesk.privacy_streams import scrub_after_erasure, scrub_streams_command
from ombudsdesk.nats_config import app as nats_app

app = staff_app(help="ombudsdesk: complaint intake, register and notices for mediation services.", no_args_is_help=True)
app.add_typer(registry_app, name="register", help="The register of complaints.")
app.add_typer(users_app, name="users", help="Staff accounts of the back office and the API.")
app.add_typer(administrations_app, name="administrations",
              help="The directory of services and administrations (issue 15): list, add, import.")
app.add_typer(audit_app, name="audit", help="The audit trail: verify its hash chain, export entries as CSV.")
app.add_typer(privacy_app, name="privacy",
              help="Privacy (issue 16): retention, erasure on request, legal holds, rectification.")
# The streams' part of an erasure (admin NATS user): ombudsdesk/privacy_streams.py.
privacy_app.command("scrub-streams", cls=StaffCommand)(scrub_streams_command)
app.command("report", cls=StaffCommand)(annual_report_command)
app.add_typer(intake_app, name="intake", help="Incoming messages: quarantine.")
app.add_typer(notifier_app, name="notifier", help="Outgoing notices: outbox and print queue.")
app.add_typer(streams_app, name="streams", help="JetStream streams: status, and the settings applied to them.")
app.add_typer(nats_app, name="nats", help="NATS users, permissions and TLS of a deployment.")

deadletter_app = staff_app(help="Events a consumer gave up on after its last try, kept whole for replay.",
                             no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")

ResultT = TypeVar("ResultT")


def with_jetstream(action: Callable[[JetStreamContext], Awaitable[ResultT]]) -> ResultT:
    settings = load_settings(CommonSettings)

    async def connected() -> ResultT:
        connection = await connect_client_for_command(settings)
        try:
            return await action(connection.jetstream())
        finally:
            await connection.close()

    try:
        return asyncio.run(connected())
    except Unreachable as error:
        typer.echo(f"ombudsdesk: {error}", err=True)
        raise typer.Exit(3) from None


@deadletter_app.command("list", cls=StaffCommand)
def deadletter_list() -> None:
    """One line per dead letter: sequence, consumer, subject, deliveries, error."""
    letters = with_jetstream(list_dead_letters)
    for stored in letters:
        record = stored.record
        typer.echo(f"{stored.sequence:>6}  {record.consumer:<22} {record.original_subject:<45} "
                   f"tries={record.deliveries}  {record.error[:80]}")
    typer.echo(f"{len(letters)} dead letter(s)")


@deadletter_app.command("show", cls=StaffCommand)
def deadletter_show(sequence: int) -> None:
    """The whole dead letter, with the original event."""
    stored = with_jetstream(lambda js: get_dead_letter(js, sequence))
    if stored is None:
        typer.echo(f"no dead letter {sequence}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(stored.record.model_dump(mode="json"), indent=2, ensure_ascii=False))


@deadletter_app.command("replay", cls=StaffCommand)
def deadletter_replay(sequence: int) -> None:
    """Publish the original event again (consumers are idempotent), then remove the dead letter."""
    try:
        record = with_jetstream(lambda js: replay_dead_letter(js, sequence))
    except LookupError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"replayed dead letter {sequence} on {record.original_subject}")


@app.command(cls=StaffCommand)
def run(cluster: bool = typer.Option(False, "--cluster", help="Three NATS servers as one JetStream cluster and two "
                                     "instances of each service, against PostgreSQL")) -> None:
    """Start NATS, the mail catcher and the three services in the foreground (Ctrl-C stops them)."""
    if cluster:
        from ombudsdesk.cluster_launcher import main as launch_cluster

        launch_cluster()
        return
    from ombudsdesk.launcher import main as launch

    launch()


# The database each command group needs, and the setting that names it.
DATABASE_SETTINGS = {
    "register": ("services.registry.settings", "RegistrySettings", "OMBUDSDESK_REGISTRY_DATABASE_URL"),
    "users": ("services.registry.settings", "RegistrySettings", "OMBUDSDESK_REGISTRY_DATABASE_URL"),
    "privacy": ("services.registry.settings", "RegistrySettings", "OMBUDSDESK_REGISTRY_DATABASE_URL"),
    "notifier": ("services.notifier.settings", "NotifierSettings", "OMBUDSDESK_NOTIFIER_DATABASE_URL"),
}


def database_unreachable(group: str, error: BaseException) -> str | None:
    """One line naming the database a command could not reach and its setting, or None for another group."""
    if group not in DATABASE_SETTINGS:
        return None
    import importlib

    module, class_name, variable = DATABASE_SETTINGS[group]
    settings = load_settings(getattr(importlib.import_module(module), class_name))
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = "connection refused" if isinstance(error, ConnectionRefusedError) or "refused" in str(error).lower() \
        else (text[0][:160] if text else type(error).__name__)
    url = settings.database_url() if callable(settings.database_url) else settings.database_url  # method or property
    return f"ombudsdesk: cannot reach the database {redact_url(url)} ({variable}): {reason}"


def main() -> None:
    # `privacy erase` then erases the streams' copies too (admin NATS user); registered here, when the command runs,
    # so that importing this module (tests, the docs generators) connects to nothing.
    AFTER_ERASURE.append(scrub_after_erasure)
    # Log lines go to standard error: what a command prints for people or scripts (a token, a CSV) stays clean.
    configure_logging()
    try:
        app()
    except (OSError, TimeoutError, SQLAlchemyError) as error:
        # A database that is not there: one line naming it and its setting, not a traceback (issue 10).
        line = database_unreachable(sys.argv[1] if len(sys.argv) > 1 else "", error)
        if line is None:
            raise
        typer.echo(line, err=True)
        raise SystemExit(3) from None
