"""`ombudsdesk intake ...`: the intake service's command group (mounted by the top-level CLI).

`quarantine list|show|replay` work on the quarantine kept in JetStream, so they run from any machine that reaches
NATS; `replay` runs a message through the same pipeline as SMTP (after a parser fix it yields its event once).
`quarantine migrate-stream` makes, once, the quarantine of a deployment created before issue 16 erasable for good
(`stores.migrate_quarantine_stream`, docs/privacy.md). `retention [--dry-run]` removes quarantine entries and rejected
letters past their retention (`retention.py`), as the service does periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import typer
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError

from shared.cli_help import StaffCommand, staff_app
from shared.messaging import Unreachable, command_broker, connect_for_command
from shared.settings import load_settings
from shared.stream_admin import ensure_streams
from services.intake.pipeline import IntakePipeline
from services.intake.retention import IntakeRetentionList
from services.intake.settings import IntakeSettings
from services.intake.stores import QuarantineMigrationFailed, ensure_intake_buckets, migrate_quarantine_stream
from services.intake.wiring import intake_retention

ResultT = TypeVar("ResultT")

app = staff_app(help="Intake: messages taken in by SMTP, IMAP and the letters folder.", no_args_is_help=True)
quarantine_app = staff_app(help="Messages the parser could not handle, kept raw with the reason.",
                             no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@contextlib.asynccontextmanager
async def connected_pipeline() -> AsyncIterator[IntakePipeline]:
    settings = load_settings(IntakeSettings)
    broker = command_broker(settings)
    await connect_for_command(broker, settings)  # one line naming NATS and its setting within seconds, never a hang
    try:
        js = broker.connection.jetstream()
        await ensure_streams(js, settings)
        await ensure_intake_buckets(js, settings.stream_replicas)
        pipeline = IntakePipeline(broker, settings)
        try:
            yield pipeline
        finally:
            await pipeline.drain()
            pipeline.close()
    finally:
        await broker.stop()


async def _resolve(pipeline: IntakePipeline, key: str) -> str:
    """Accept a unique prefix of a message key, as `list` prints them shortened."""
    keys = await pipeline.quarantine.keys()
    matches = [candidate for candidate in keys if candidate.startswith(key)]
    if len(matches) != 1:
        typer.echo(f"no single quarantined message matches {key!r} ({len(matches)} found)", err=True)
        raise typer.Exit(2)
    return matches[0]


def run_command(work: Coroutine[Any, Any, ResultT]) -> ResultT:
    """Run a command's coroutine; NATS out of reach ends it with one line on standard error and exit status 3."""
    try:
        return asyncio.run(work)
    except Unreachable as error:
        typer.echo(f"ombudsdesk: {error}", err=True)
        raise typer.Exit(3) from None


@quarantine_app.command("list", cls=StaffCommand)
def quarantine_list() -> None:
    """One line per quarantined message: key, date, size, source, reason."""

    async def run() -> None:
        async with connected_pipeline() as pipeline:
            records = await pipeline.quarantine.records()
        for record in records:
            typer.echo(f"{record.message_key[:24]}  {record.quarantined_at:%Y-%m-%d %H:%M}  {record.size:>9}  "
                       f"{record.source:<12}  {record.reason}")
        typer.echo(f"{len(records)} message(s) in quarantine")

    run_command(run())


def describe_hit(hit: dict[str, str]) -> str:
    """One rule hit as staff read it: "automated by rule vacation-subject (out-of-office subject)"."""
    why = f" ({hit['why']})" if hit.get("why") else ""
    return f"{hit['outcome']} by rule {hit['rule']}{why}"


@quarantine_app.command("show", cls=StaffCommand)
def quarantine_show(
    key: str = typer.Argument(..., help="Message key or a unique prefix of it"),
    raw: bool = typer.Option(False, "--raw", help="Write the raw original to standard output"),
) -> None:
    """The quarantine record of one message (and its raw original with --raw)."""

    async def run() -> None:
        async with connected_pipeline() as pipeline:
            full_key = await _resolve(pipeline, key)
            record = await pipeline.quarantine.get(full_key)
            assert record is not None
            if raw:
                sys.stdout.buffer.write(await pipeline.objects.get_raw(record.raw_object))
                return
        fields = record.model_dump()
        hits = fields.pop("rules", None) or ()
        for name, value in fields.items():
            typer.echo(f"{name:>20}: {value}")
        # The named rules of understanding that hit before the message was stopped (services/intake/message/rules).
        for index, hit in enumerate(hits):
            typer.echo(f"{'rules' if index == 0 else '':>20}: {describe_hit(hit)}")

    run_command(run())


@quarantine_app.command("replay", cls=StaffCommand)
def quarantine_replay(
    key: str = typer.Argument(None, help="Message key or a unique prefix of it"),
    replay_all: bool = typer.Option(False, "--all", help="Replay every quarantined message"),
) -> None:
    """Run quarantined messages through the pipeline again; those that now pass leave the quarantine."""
    if not key and not replay_all:
        typer.echo("give a message key or --all", err=True)
        raise typer.Exit(2)

    async def run() -> int:
        async with connected_pipeline() as pipeline:
            keys = await pipeline.quarantine.keys() if replay_all else [await _resolve(pipeline, key)]
            still = 0
            for full_key in keys:
                outcome = await pipeline.replay(full_key)
                typer.echo(f"{full_key[:24]}  {outcome.status.value}  {outcome.reason or ''}".rstrip())
                still += outcome.status.value == "quarantined"
            return still

    remaining = run_command(run())
    raise typer.Exit(1 if remaining else 0)


MIGRATION_OUTCOMES = {
    "created": "no quarantine yet: created, its entries erasable for good",
    "migrated": "made again without deny_delete: {entries} entry(ies) copied, erasable for good from now on",
    "resumed": "an interrupted migration finished: {entries} entry(ies) copied back",
    "unchanged": "already erasable for good: nothing to do",
}


@quarantine_app.command("migrate-stream", cls=StaffCommand)
def quarantine_migrate_stream() -> None:
    """Make the quarantine's stream one whose entries can be erased for good (once, for a deployment created before
    it was made so; run it as the admin NATS user while intake is stopped). Safe to run again."""

    async def run() -> str:
        settings = load_settings(IntakeSettings)
        broker = command_broker(settings)
        await connect_for_command(broker, settings)
        try:
            done = await migrate_quarantine_stream(broker.connection.jetstream(), settings.stream_replicas)
        except QuarantineMigrationFailed as error:
            typer.echo(f"ombudsdesk: {error}", err=True)
            raise typer.Exit(1) from None
        except (APIError, NatsTimeoutError) as error:
            # No answer is what a user without the right to delete the stream gets (the server drops the request).
            typer.echo(f"ombudsdesk: the migration stopped ({error!r}); it can be run again, as the admin NATS user "
                       "(OMBUDSDESK_NATS_USER)", err=True)
            raise typer.Exit(1) from None
        finally:
            await broker.stop()
        return MIGRATION_OUTCOMES[done.outcome].format(entries=done.entries)

    typer.echo(f"quarantine: {run_command(run())}")


@app.command("retention", cls=StaffCommand)
def retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed, remove nothing"),
) -> None:
    """Remove what no register file names, past its retention (docs/privacy.md): quarantine entries never replayed
    (OMBUDSDESK_QUARANTINE_RETENTION_DAYS) and rejected letters (OMBUDSDESK_REJECTED_LETTERS_RETENTION_DAYS). The
    service does the same every OMBUDSDESK_INTAKE_RETENTION_INTERVAL_HOURS."""

    async def run() -> IntakeRetentionList:
        settings = load_settings(IntakeSettings)
        async with connected_pipeline() as pipeline:
            return await intake_retention(settings, pipeline.stores).run(dry_run=dry_run)

    listing = run_command(run())
    verb = "would remove" if dry_run else "removed"
    for entry in listing.quarantine:
        typer.echo(f"quarantine  {entry.message_key[:24]}  quarantined {entry.quarantined_at:%Y-%m-%d}"
                   f"{'  with its raw original' if entry.raw_object else ''}")
    for due in listing.rejected_letters:
        typer.echo(f"rejected letter  {due.path.name}  rejected {due.rejected_at:%Y-%m-%d}")
    if dry_run:
        typer.echo(f"{verb}: {len(listing.quarantine)} quarantine entr(y/ies), "
                   f"{len(listing.rejected_letters)} rejected letter file(s)")
    else:
        typer.echo(f"{verb}: {listing.removed_quarantine} quarantine entr(y/ies), {listing.removed_objects} raw "
                   f"original(s), {listing.removed_files} rejected letter file(s)")
