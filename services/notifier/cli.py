"""`ombudsdesk notifier ...`: the outbox, flagged addresses and the print queue of postal letters."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

from services.notifier.handlers import utc_now
from services.notifier.outbox import Outbox
from services.notifier.reasons import describe_reason
from services.notifier.rendering import pick_language
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import MIGRATIONS
from shared.cli_help import StaffCommand, staff_app
from shared.database import create_engine, upgrade_to_head
from shared.settings import load_settings

app = staff_app(help="Notices to citizens and staff: outbox, undeliverable addresses, print queue.", no_args_is_help=True)
print_queue = staff_app(help="Postal letters waiting to be printed and posted.", no_args_is_help=True)
app.add_typer(print_queue, name="print-queue")

T = TypeVar("T")


LANGUAGE_HELP = "Language of the reasons shown (fr, nl, de, en); default: the staff_language setting"


def _with_outbox(action: Callable[[Outbox], Awaitable[T]], settings: NotifierSettings | None = None) -> T:
    settings = settings or load_settings(NotifierSettings)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            await upgrade_to_head(engine, MIGRATIONS)
            return await action(Outbox(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command("outbox", cls=StaffCommand)
def outbox_list(
    complaint: str = typer.Option(None, "--complaint", "-c", help="Only this case number"),
    language: str = typer.Option(None, "--language", "-l", help=LANGUAGE_HELP),
) -> None:
    """Every notice recorded, with its status."""
    settings = load_settings(NotifierSettings)
    shown_in = pick_language(language, settings.staff_language)
    notices = _with_outbox(lambda outbox: outbox.notices(complaint), settings)
    for notice in notices:
        typer.echo(
            f"{notice.id:>6}  {notice.complaint_number:<16} {notice.notice_kind:<22} {notice.channel:<6} "
            f"{notice.status:<10} {notice.recipient or '-':<32} {describe_reason(notice.status_reason, shown_in)}"
        )
    if not notices:
        typer.echo("no notice")


@app.command("flags", cls=StaffCommand)
def flags_list(language: str = typer.Option(None, "--language", "-l", help=LANGUAGE_HELP)) -> None:
    """Addresses our mail does not reach (write to these citizens by post)."""
    settings = load_settings(NotifierSettings)
    shown_in = pick_language(language, settings.staff_language)
    flags = _with_outbox(lambda outbox: outbox.flagged_addresses(), settings)
    for flag in flags:
        flagged_at = flag.flagged_at.astimezone(settings.timezone)
        typer.echo(f"{flag.address:<40} {flagged_at:%Y-%m-%d %H:%M}  {describe_reason(flag.reason, shown_in)}")
    if not flags:
        typer.echo("no flagged address")


@print_queue.command("list", cls=StaffCommand)
def print_queue_list(all_letters: bool = typer.Option(False, "--all", help="Include letters already printed")) -> None:
    """Letters waiting to be printed."""
    letters = _with_outbox(lambda outbox: outbox.print_queue(include_printed=all_letters))
    for letter in letters:
        address = " / ".join(line.strip() for line in letter.postal_address.splitlines() if line.strip())
        typer.echo(
            f"{letter.id:>6}  {letter.complaint_number:<16} {letter.notice_kind:<20} {letter.language}  "
            f"{letter.status:<8} {letter.recipient_name} – {address}"
        )
    if not letters:
        typer.echo("print queue empty")


@print_queue.command("pdf", cls=StaffCommand)
def print_queue_pdf(letter_id: int, output: Path) -> None:
    """Write one letter's PDF to a file, for printing."""

    async def fetch(outbox: Outbox) -> tuple[bool, bytes | None]:
        for letter in await outbox.print_queue(include_printed=True):
            if letter.id == letter_id:
                return True, letter.letter_pdf
        return False, None

    found, pdf = _with_outbox(fetch)
    if not found:
        typer.echo(f"no letter {letter_id}", err=True)
        raise typer.Exit(1)
    if pdf is None:
        # Printed letters lose their PDF: it carried the citizen's personal link (docs/privacy.md).
        typer.echo(f"letter {letter_id}: PDF removed after printing (it carried the personal link); "
                   "issue a new link if the citizen needs one", err=True)
        raise typer.Exit(1)
    output.write_bytes(pdf)
    typer.echo(f"written {output}")


@print_queue.command("done", cls=StaffCommand)
def print_queue_done(
    letter_ids: list[int],
    by: str = typer.Option(None, "--by", help="Who printed and posted it (default: the current user)"),
) -> None:
    """Mark letters as printed and posted."""
    who = by or getpass.getuser()

    async def mark(outbox: Outbox) -> list[int]:
        now = utc_now()
        return [letter_id for letter_id in letter_ids if not await outbox.mark_printed(letter_id, who, now)]

    missing = _with_outbox(mark)
    for letter_id in letter_ids:
        if letter_id not in missing:
            typer.echo(f"letter {letter_id} marked printed by {who}")
    if missing:
        typer.echo(f"not in the print queue: {', '.join(map(str, missing))}", err=True)
        raise typer.Exit(1)
