"""`ombudsdesk audit ...`: check and export the audit trail (`services.registry.access.audit`) from the command line.

    ombudsdesk audit verify                               exit 0 when the chain is whole; 1 and the first broken
                                                          entry otherwise
    ombudsdesk audit export [--number N] [--account EMAIL] [--since YYYY-MM-DD] [--until YYYY-MM-DD]
                                                          CSV on standard output, oldest first

It opens the registry's database with the service's settings (`OMBUDSDESK_REGISTRY_DATABASE_URL`), like
`ombudsdesk register`. An export is itself recorded in the trail (`audit.export`), in the name of the operating-system
account that ran it (`cli:<login>`): the command line has no back-office identity. Days are those of the registry's
time zone (`OMBUDSDESK_REGISTRY_TIMEZONE`).
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import typer

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.audit_chain import VerifyResult
from services.registry.repository import migrate
from services.registry.settings import RegistrySettings
from shared.cli_help import StaffCommand, staff_app
from shared.database import create_engine
from shared.settings import load_settings
from shared.untrusted_text import json_for_terminal

app = staff_app(help="Le journal d'accès / the audit trail: verify the hash chain, export entries as CSV.",
                no_args_is_help=True, add_completion=False)
T = TypeVar("T")


def _run(action: Callable[[AuditTrail, ZoneInfo], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = load_settings(RegistrySettings)
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            return await action(AuditTrail(engine), ZoneInfo(settings.registry_timezone))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=option) from None


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a day of the registry's time zone."""
    return datetime.combine(day, time(0), tzinfo=zone)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name for this uid (a bare container)
        return "cli:unknown"


def verify_lines(result: VerifyResult) -> list[str]:
    if result.ok:
        return [f"audit trail verified: {result.entries} entries",
                f"head: sequence {result.head_sequence}, sha256 {result.head_hash}"]
    return [f"audit trail BROKEN at entry {result.first_broken}: {result.problem}",
            f"{result.entries} entries read; head: sequence {result.head_sequence}, sha256 {result.head_hash}"]


@app.command("verify", cls=StaffCommand)
def verify() -> None:
    """Check the hash chain from the first entry to the head; print the head to keep elsewhere for a later check."""

    async def checked(trail: AuditTrail, _zone: ZoneInfo) -> tuple[VerifyResult, dict[str, object] | None]:
        result = await trail.verify()
        broken = await trail.entry(result.first_broken) if result.first_broken else None
        return result, (asdict(broken) if broken is not None else None)

    result, entry = _run(checked)
    typer.echo("\n".join(verify_lines(result)), err=not result.ok)
    if entry is not None:
        typer.echo(json_for_terminal(json.dumps(entry, ensure_ascii=False, indent=2, default=str)), err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("export", cls=StaffCommand)
def export(
    number: str | None = typer.Option(None, "--number", metavar="NUMBER", help="entries of one file"),
    account: str | None = typer.Option(None, "--account", metavar="EMAIL", help="entries of one person"),
    since: str | None = typer.Option(None, "--since", metavar="YYYY-MM-DD", help="from this day on"),
    until: str | None = typer.Option(None, "--until", metavar="YYYY-MM-DD", help="up to this day, included"),
) -> None:
    """The entries selected, oldest first, as CSV with every hashed field (formula-like cells escaped)."""
    first, last = _day(since, "--since"), _day(until, "--until")

    async def exported(trail: AuditTrail, zone: ZoneInfo) -> str:
        criteria = AuditFilter(number=number, account=account,
                               since=day_start(first, zone) if first else None,
                               until=day_start(last + timedelta(days=1), zone) if last else None)
        text = await trail.export_csv(criteria)
        await trail.append("audit.export", actor=cli_actor(), details={"via": "cli", **criteria.describe()})
        return text

    text = _run(exported)
    typer.echo(text, nl=False)

