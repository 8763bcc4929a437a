"""The `ombudsdesk` command: one entry point mounting each service's own command group.

    ombudsdesk run                      the whole system on embedded defaults (what `make run` calls)
    ombudsdesk register ...             the register of complaints (registry)
    ombudsdesk intake ...               intake: quarantine list/show/replay
    ombudsdesk notifier ...             notifier: outbox and print queue
"""

from __future__ import annotations

import typer

from services.intake.cli import app as intake_app
from services.notifier.cli import app as notifier_app
from services.registry.cli import app as registry_app

app = typer.Typer(help="ombudsdesk: complaint intake, register and notices for mediation services.", no_args_is_help=True)
app.add_typer(registry_app, name="register", help="The register of complaints.")
app.add_typer(intake_app, name="intake", help="Incoming messages: quarantine.")
app.add_typer(notifier_app, name="notifier", help="Outgoing notices: outbox and print queue.")


@app.command()
def run() -> None:
    """Start NATS, the mail catcher and the three services in the foreground (Ctrl-C stops them)."""
    from ombudsdesk.launcher import main as launch

    launch()


def main() -> None:
    app()
