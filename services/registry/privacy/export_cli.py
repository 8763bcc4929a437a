"""`ombudsdesk privacy export EMAIL --output FILE --reason TEXT`: the citizen's own data as one archive
(`export.py`), from the command line, for the DPO.

Mounted in H11's `privacy` group (`privacy/cli.py`) by one line: `app.command("export", cls=StaffCommand)
(export_command)`. It opens the registry's database with the service's settings, and intake's object store over NATS
(`OMBUDSDESK_NATS_URL` and the service's credentials, as `ombudsdesk deadletter` does) for the raw originals and
attachments; when NATS is unreachable it stops (exit 3), unless `--without-originals` accepts an archive that lists
them as missing. The archive is written to a new file only (an existing one is never overwritten), readable by its
owner alone (mode 0600: it is a person's whole file). The export is recorded in the audit trail — one entry per
file and one for the whole — in the name given by `--by` (default `cli:<login>`), with the reason; what it prints
names files by count, never the person.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from services.registry.access.audit import AuditTrail
from services.registry.audit_cli import cli_actor
from services.registry.backoffice.pages.file_originals import OriginalStore
from services.registry.privacy.export import TooManyFiles, audit_entries, export_person
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.vocabulary import Language
from shared.cli_help import one_of
from shared.database import create_engine
from shared.messaging import Unreachable, connect_client_for_command
from shared.settings import load_settings
from shared.untrusted_text import for_terminal


def _write_new(path: Path, data: bytes) -> None:
    """Create `path` (never replace a file), owner-only, and write the archive whole."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def export_command(
    email: str = typer.Argument(..., metavar="EMAIL", help="the citizen's email address"),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="the archive to create (.zip); an "
                                "existing file is not overwritten"),
    reason: str = typer.Option(..., "--reason", metavar="TEXT", help="why (the request's reference; audit trail)"),
    language: Language | None = typer.Option(None, "--language", metavar="LANG", help="language of the PDF summary, "
                                             f"{one_of(Language)} (default: that of their latest file)"),
    by: str | None = typer.Option(None, "--by", metavar="EMAIL", help="who exports (audit trail; default "
                                  "cli:<login>)"),
    without_originals: bool = typer.Option(False, "--without-originals", help="when NATS is unreachable, export "
                                           "anyway and list the originals and attachments as missing"),
) -> None:
    """Export everything held about one citizen (GDPR art. 15): their files, messages with attachments and raw
    originals, notices sent, change log, as JSON, and a PDF summary in their language."""
    if output.exists():
        typer.echo(for_terminal(f"ombudsdesk: {output} exists; choose a new file"), err=True)
        raise typer.Exit(2)
    if not reason.strip():
        raise typer.BadParameter("a reason is required", param_hint="--reason")

    async def main() -> tuple[int, int]:
        settings = load_settings(RegistrySettings)
        engine = create_engine(settings.database_url)
        connection = None
        try:
            await migrate(engine)
            try:
                connection = await connect_client_for_command(settings)
            except Unreachable:
                if not without_originals:
                    raise
            store = RegistryStore(engine)
            originals = OriginalStore(connection.jetstream) if connection is not None else None
            chosen = language.value if language else None
            result = await export_person(
                store, email, originals, now=datetime.now(timezone.utc), zone=ZoneInfo(settings.registry_timezone),
                organisation=settings.localized_organisation_name(chosen or "fr"), language=chosen)
            _write_new(output, result.archive)
            trail = AuditTrail(engine)
            for number, details in audit_entries(result):
                await trail.append("export", actor=by or cli_actor(), number=number, reason=reason,
                                   details={**details, "via": "cli"})
            return len(result.numbers), len(result.missing)
        finally:
            if connection is not None:
                await connection.close()
            await engine.dispose()

    try:
        files, missing = asyncio.run(main())
    except Unreachable as error:
        typer.echo(for_terminal(f"ombudsdesk: {error} (--without-originals exports without them)"), err=True)
        raise typer.Exit(3) from None
    except TooManyFiles as error:
        typer.echo(for_terminal(f"ombudsdesk: refused: {error}"), err=True)
        raise typer.Exit(3) from None
    typer.echo(for_terminal(f"{output}: {files} file(s), {missing} missing object(s)"))
