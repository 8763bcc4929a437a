"""`ombudsdesk streams ...`: the JetStream streams and buckets as they are, and as the settings want them (issue 14).

    ombudsdesk streams status           each stream: subjects, replicas and their leader, messages, bytes, and what
                                        differs from the settings (OMBUDSDESK_STREAM_*)
    ombudsdesk streams update [--yes]   apply those differences (asks first without --yes)

The services never change an existing stream at start (they log a warning naming it, `shared.stream_admin`): raising
the replicas when a single server becomes a cluster, ageing events out, moving streams to tagged servers is done
here, deliberately, by an operator. It runs from any machine that reaches NATS with the services' settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from shared.cli_help import StaffCommand, staff_app
from shared.settings import CommonSettings, load_settings
from shared.stream_admin import StreamDifference, StreamStatus, show, stream_statuses, update_streams

app = staff_app(help="JetStream streams: their state, and the settings applied to them.", no_args_is_help=True)

ResultT = TypeVar("ResultT")

CREATED_BY = {"key-value": "intake creates it at its start"}


def _with_jetstream(action: Callable[[JetStreamContext], Awaitable[ResultT]]) -> ResultT:
    # The top-level command's connection rules (one line naming NATS and its setting, never a hang); imported here
    # because the top-level command imports this module to mount it.
    from ombudsdesk.cli import with_jetstream

    return with_jetstream(action)


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def replicas_line(info: StreamInfo) -> str:
    """`3 (leader nats-2; nats-1 current, nats-3 lagging 12)`, or `1` on a single server."""
    replicas = info.config.num_replicas or 1
    cluster = info.cluster
    if cluster is None or (cluster.name is None and replicas == 1):
        return f"{replicas}"  # a single server: nothing more to say
    if not cluster.leader:
        return f"{replicas} (no leader: not available)"
    peers = ", ".join(f"{peer.name} " + ("offline" if peer.offline else "current" if peer.current
                                          else f"lagging {peer.lag or 0}")
                      for peer in cluster.replicas or [])
    return f"{replicas} (leader {cluster.leader}" + (f"; {peers})" if peers else ")")


def status_lines(status: StreamStatus) -> list[str]:
    desired, info = status.desired, status.info
    title = f"{desired.name}  [{desired.kind}" + (f" {desired.bucket}" if desired.bucket else "") + "]"
    if info is None:
        return [title, f"  not created yet ({CREATED_BY.get(desired.kind, 'the services create it at their start')})"]
    config = info.config
    lines = [
        title,
        f"  subjects: {', '.join(config.subjects or []) or '(none)'}",
        f"  replicas: {replicas_line(info)}",
        f"  messages: {info.state.messages}   bytes: {size(info.state.bytes)}   "
        f"max age: {show('max_age', float(config.max_age or 0))}   "
        f"max bytes: {show('max_bytes', config.max_bytes if config.max_bytes is not None else -1)}   "
        f"placement: {show('placement_tags', tuple(config.placement.tags or ()) if config.placement else ())}",
    ]
    if status.differences:
        lines.append("  differs from the settings:")
        lines += [f"    {difference.describe()}" for difference in status.differences]
    return lines


@app.command("status", cls=StaffCommand)
def status() -> None:
    """Each stream and bucket: subjects, replicas and leader, messages, bytes, and what differs from the settings."""
    settings = load_settings(CommonSettings)
    statuses = _with_jetstream(lambda js: stream_statuses(js, settings))
    for entry in statuses:
        typer.echo("\n".join(status_lines(entry)))
    differing = [entry for entry in statuses if entry.differences]
    if differing:
        typer.echo(f"\n{len(differing)} stream(s) differ from the settings; `ombudsdesk streams update` applies what "
                   "JetStream can change in place.")
    else:
        typer.echo("\nEvery existing stream matches the settings.")


def plan_lines(differing: list[StreamDifference]) -> list[str]:
    lines: list[str] = []
    for difference in differing:
        change = f"{show(difference.field, difference.current)} -> {show(difference.field, difference.wanted)}"
        lines.append(f"  {difference.stream}: {difference.field} {change}"
                     + ("" if difference.changeable else "   (cannot be changed in place: not applied)"))
    return lines


@app.command("update", cls=StaffCommand)
def update(yes: bool = typer.Option(False, "--yes", help="Apply without asking")) -> None:
    """Apply the settings (OMBUDSDESK_STREAM_*) to the existing streams: replicas, placement, limits."""
    settings = load_settings(CommonSettings)
    statuses = _with_jetstream(lambda js: stream_statuses(js, settings))
    differing = [difference for entry in statuses for difference in entry.differences]
    if not differing:
        typer.echo("Every existing stream matches the settings: nothing to do.")
        return
    typer.echo("Changes to the streams:")
    typer.echo("\n".join(plan_lines(differing)))
    if not any(difference.changeable for difference in differing):
        typer.echo("Nothing JetStream can change in place; a stream must be recreated by hand (deploy/README.md).")
        raise typer.Exit(1)
    typer.echo("A change of replicas or placement copies each stream to its new servers while it keeps working.")
    if not yes and not typer.confirm("Apply these changes?", default=False):
        typer.echo("Nothing changed.")
        raise typer.Exit(1)
    names = sorted({difference.stream for difference in differing if difference.changeable})
    outcomes = _with_jetstream(lambda js: update_streams(js, settings, only=names))
    failed = False
    for outcome in outcomes:
        if outcome.applied:
            typer.echo(f"{outcome.stream}: applied " + ", ".join(difference.field for difference in outcome.applied))
        if outcome.error:
            failed = True
            typer.echo(f"{outcome.stream}: refused by JetStream: {outcome.error}", err=True)
        if outcome.unchangeable:
            typer.echo(f"{outcome.stream}: left as it is: "
                       + ", ".join(difference.field for difference in outcome.unchangeable)
                       + " (recreate the stream to change it)")
    if failed:
        raise typer.Exit(1)
