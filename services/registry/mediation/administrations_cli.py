"""`ombudsdesk administrations ...`: the directory of services and administrations the office writes to (issue 15),
on the registry's database (the same settings as the service):

    ombudsdesk administrations list [--json]
    ombudsdesk administrations add KEY --name N [--email E ...] [--postal-address A] [--language fr]
                                   [--contact C] [--answer-days 30] [--inactive]
    ombudsdesk administrations import FILE      a TOML directory (services/registry/mediation/administrations.example.toml)

`add` changes the entry with the same key when there is one. `import` checks the whole file first (every entry, no
duplicate key, no unknown field) and stores nothing if one entry is wrong; entries of the database that the file
does not name are left as they are. Each change goes through the register's `SaveAdministration` command.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from sqlalchemy import select

from services.registry.mediation import administrations as rules
from services.registry.audit_cli import cli_actor
from services.registry.commands import SaveAdministration
from services.registry.handlers import Registry
from services.registry.cli import run_on_register
from services.registry.models import Administration
from services.registry.repository import RegistryStore
from shared.cli_help import StaffCommand, staff_app
from shared.untrusted_text import for_terminal, json_for_terminal

app = staff_app(help="The directory of services and administrations: list, add or change, import from TOML.",
                no_args_is_help=True, add_completion=False)
T = TypeVar("T")


def _run(action: Callable[[RegistryStore, Registry], Awaitable[T]]) -> T:
    return run_on_register(action, refused=(rules.InvalidEntry,))


async def directory(store: RegistryStore) -> list[Administration]:
    """Every entry, by name."""
    async with store.transaction() as tx:
        return list((await tx.session.execute(select(Administration).order_by(Administration.name))).scalars())


def _save(entry: rules.DirectoryEntry, actor: str) -> SaveAdministration:
    return SaveAdministration(entry.key, entry.name, actor, emails=entry.emails, postal_address=entry.postal_address,
                              language=entry.language, contact_person=entry.contact_person,
                              answer_days=entry.answer_days, active=entry.active)


@app.command("list", cls=StaffCommand)
def list_administrations(as_json: bool = typer.Option(False, "--json", help="JSON, for scripts")) -> None:
    """The directory: key, name, addresses, language, answer days."""
    rows = _run(lambda store, _registry: directory(store))
    if as_json:
        typer.echo(json_for_terminal(json.dumps([
            {"id": row.id, "key": row.key, "name": row.name, "emails": row.emails,
             "postal_address": row.postal_address, "language": row.language, "contact_person": row.contact_person,
             "answer_days": row.answer_days, "active": row.active} for row in rows], ensure_ascii=False, indent=2)))
        return
    for row in rows:
        where = ", ".join(row.emails) or (row.postal_address or "").replace("\n", ", ")
        state = "" if row.active else " (inactive)"
        typer.echo(for_terminal(
            f"{row.id}\t{row.key}\t{row.name}{state}\t{row.language}\t{row.answer_days} d\t{where}"))


@app.command("add", cls=StaffCommand)
def add(
    key: str = typer.Argument(..., metavar="KEY", help="stable id, e.g. the screening service id fps-finance"),
    name: str = typer.Option(..., "--name", metavar="NAME"),
    emails: list[str] = typer.Option([], "--email", metavar="EMAIL", help="correspondence address, repeatable"),
    postal_address: str | None = typer.Option(None, "--postal-address", metavar="TEXT",
                                              help="for printed letters; lines separated by \\n"),
    language: str = typer.Option("fr", "--language", metavar="LANG", help="fr, nl, de or en"),
    contact: str = typer.Option("", "--contact", metavar="NAME", help="contact person"),
    answer_days: int = typer.Option(30, "--answer-days", metavar="DAYS", help="its own deadline to answer"),
    inactive: bool = typer.Option(False, "--inactive", help="kept for the history, no new requests"),
) -> None:
    """Add an entry, or change the one with this key."""
    try:
        entry = rules.checked_entry(key=key, name=name, emails=emails,
                                    postal_address=postal_address.replace("\\n", "\n") if postal_address else None,
                                    language=language, contact_person=contact, answer_days=answer_days,
                                    active=not inactive)
    except rules.InvalidEntry as error:
        typer.echo(for_terminal(f"refusé / refused: {error}"), err=True)
        raise typer.Exit(3) from None
    saved = _run(lambda _store, registry: registry.handle(_save(entry, cli_actor())))
    typer.echo(for_terminal(f"{saved}\t{entry.key}"))


@app.command("import", cls=StaffCommand)
def import_directory(file: Path = typer.Argument(..., metavar="FILE", exists=True, dir_okay=False,
                                                 help="TOML with [[administration]] entries")) -> None:
    """Add or change every entry of the file (nothing if one entry is wrong)."""
    try:
        entries = rules.parse_directory_toml(file.read_text(encoding="utf-8"))
    except (rules.InvalidEntry, UnicodeDecodeError) as error:
        typer.echo(for_terminal(f"refusé / refused: {error}"), err=True)
        raise typer.Exit(3) from None

    async def save_all(_store: RegistryStore, registry: Registry) -> int:
        for entry in entries:
            await registry.handle(_save(entry, cli_actor()))
        return len(entries)

    typer.echo(for_terminal(f"{_run(save_all)} administration(s)"))
