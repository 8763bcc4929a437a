"""The `ombudsdesk` command: one entry point mounting each service's own command group.

    ombudsdesk run                      the whole system on embedded defaults (what `make run` calls)
    ombudsdesk register ...             the register of complaints (registry)
    ombudsdesk intake ...               intake: quarantine list/show/replay
    ombudsdesk notifier ...             notifier: outbox and print queue
    ombudsdesk deadletter ...           events a consumer gave up on: list, show, replay
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
import typer
from nats.js import JetStreamContext

from shared.cli_help import StaffCommand, staff_app
from shared.deadletters import get_dead_letter, list_dead_letters, replay_dead_letter
from shared.settings import CommonSettings, load_settings
from services.intake.cli import app as intake_app
from services.notifier.cli import app as notifier_app
from services.registry.cli import app as registry_app

app = staff_app(help="ombudsdesk: complaint intake, register and notices for mediation services.", no_args_is_help=True)
app.add_typer(registry_app, name="register", help="The register of complaints.")
app.add_typer(intake_app, name="intake", help="Incoming messages: quarantine.")
app.add_typer(notifier_app, name="notifier", help="Outgoing notices: outbox and print queue.")

deadletter_app = staff_app(help="Events a consumer gave up on after its last try, kept whole for replay.",
                             no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")

ResultT = TypeVar("ResultT")


def with_jetstream(action: Callable[[JetStreamContext], Awaitable[ResultT]]) -> ResultT:
    settings = load_settings(CommonSettings)

    async def connected() -> ResultT:
        connection = await nats.connect(settings.nats_url.split(","), connect_timeout=5, max_reconnect_attempts=1)
        try:
            return await action(connection.jetstream())
        finally:
            await connection.close()

    return asyncio.run(connected())


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
def run() -> None:
    """Start NATS, the mail catcher and the three services in the foreground (Ctrl-C stops them)."""
    from ombudsdesk.launcher import main as launch

    launch()


def main() -> None:
    app()
