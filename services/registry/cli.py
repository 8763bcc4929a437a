"""`ombudsdesk register ...`: the staff command line over the register (mounted by the lead in `ombudsdesk/cli.py`).

It works on the registry's database directly (the same settings as the service), through the same handlers as the
service (each change a command of `commands.py`), so a change made here is logged and its events go out through the
outbox (published by the running
service's outbox loop, or at once when NATS is reachable).

What it prints for people is translated (`--lang fr|nl|de|en`, French by default): statuses, kinds, channels,
outcomes and every other enumerated value through `vocabulary.label`, themes, services and ombudsmen through the
screening configuration (`views.TextContext`). `--json` keeps the stable English identifiers, for scripts.

Much of what it prints was written by strangers (names, subjects, bodies): nothing reaches the terminal with a
control character in it (`shared.untrusted_text`: escape sequences and controls removed from text, DEL and C1
escaped in JSON).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

import typer

from services.registry import commands, views
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.reports import annual_report, annual_report_csv
from services.registry.repository import ComplaintFilter, RegistryStore, migrate
from services.registry.screening import ScreeningConfig
from services.registry.screening_files import load_screening_config
from services.registry.settings import RegistrySettings
from services.registry.vocabulary import (
    DEFAULT_LANGUAGE,
    FoundedCategory,
    InadmissibilityReason,
    Kind,
    Language,
    Outcome,
    Status,
)
from services.registry.wiring import policy_from_settings
from shared.cli_help import StaffCommand, one_of, staff_app
from shared.database import create_engine
from shared.events import Channel
from shared.settings import load_settings
from shared.untrusted_text import for_terminal, json_for_terminal


# --- help as staff read it (shared/cli_help.py), with the screening configuration's values -------------------------
# Options whose allowed values come from the screening configuration, listed when help is shown (not at import).
_TAXONOMIES = {"theme": ("themes", "theme id"), "service": ("services", "service id"),
               "redirect_to": ("directory", "directory id of the competent ombudsman")}


def _configured_screening() -> ScreeningConfig | None:
    try:
        return load_screening_config(load_settings(RegistrySettings).screening_config_path)
    except Exception:  # noqa: BLE001 - help must show even with a broken configuration (the command reports it)
        return None


class _Command(StaffCommand):
    """A register command: staff help, and the allowed themes, services and ombudsmen listed."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        taxonomies = [p for p in self.params if p.name in _TAXONOMIES]
        config = _configured_screening() if taxonomies else None
        for param in taxonomies:
            attribute, what = _TAXONOMIES[str(param.name)]
            ids = [entry.id for entry in getattr(config, attribute, ())]
            param.help = (f"{what}, one of: {', '.join(ids)}" if ids
                          else f"{what} from the screening configuration (OMBUDSDESK_SCREENING_CONFIG_PATH)")
        super().format_help(ctx, formatter)


# Shell completion belongs to the top-level `ombudsdesk` command, not to this group.
app = staff_app(help="Le registre des plaintes / the register of complaints.", no_args_is_help=True,
                add_completion=False)
T = TypeVar("T")


def command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return app.command(name, cls=_Command)


LangOption = typer.Option(Language(DEFAULT_LANGUAGE), "--lang", metavar="LANG",
                          help=f"language of the output, {one_of(Language)}")
NumberArgument = typer.Argument(..., metavar="NUMBER", help="complaint number, e.g. MED-2026-00042")
ActorOption = typer.Option(..., "--by", metavar="EMAIL", help="who decides (recorded in the change log)")
ReasonOption = typer.Option(None, metavar="TEXT", help="why (recorded in the change log)")
JsonOption = typer.Option(False, "--json", help="JSON with the stable identifiers, for scripts")


def _run(action: Callable[[RegistryStore, Registry], Awaitable[T]]) -> T:
    """Open the register (migrating it if new), run one action, close it."""

    async def main() -> T:
        settings = load_settings(RegistrySettings)
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            store = RegistryStore(engine)
            return await action(store, Registry(store, policy_from_settings(settings), _DeferredPublisher()))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except NotFound as error:
        typer.echo(for_terminal(f"introuvable / not found: {error}"), err=True)
        raise typer.Exit(2) from None
    except Conflict as error:
        typer.echo(for_terminal(f"refusé / refused: {error}"), err=True)
        raise typer.Exit(3) from None


class _DeferredPublisher:
    """The CLI leaves its events in the outbox: the running service's outbox loop publishes them."""

    async def publish(self, rows: Any) -> None:
        return None


def _context(registry: Registry, lang: str) -> views.TextContext:
    return views.TextContext(language=lang, zone=registry.policy.timezone, screening=registry.policy.screening)


def _echo(lines: list[str]) -> None:
    typer.echo(for_terminal("\n".join(lines)))


def _echo_json(value: Any) -> None:
    typer.echo(json_for_terminal(json.dumps(value, ensure_ascii=False, indent=2)))


class Sort(StrEnum):
    NUMBER = "number"
    RECEIVED = "received"
    ANSWER_DUE = "answer_due"
    STATUS = "status"


@command("list")
def list_complaints(
    status: Status | None = typer.Option(None, metavar="STATUS", help=one_of(Status)),
    kind: Kind | None = typer.Option(None, metavar="KIND", help=one_of(Kind)),
    service: str | None = typer.Option(None, metavar="SERVICE"),
    year: int | None = typer.Option(None, metavar="YEAR"),
    due_before: str | None = typer.Option(None, metavar="YYYY-MM-DD", help="answer due before this day"),
    overdue: bool = typer.Option(False, "--overdue", help="only complaints past their answer deadline today"),
    search: str | None = typer.Option(None, "--search", "-s", metavar="TEXT",
                                      help="text in subject, name, email or number"),
    channel: Channel | None = typer.Option(None, metavar="CHANNEL", help=one_of(Channel)),
    theme: str | None = typer.Option(None, metavar="THEME"),
    handler: str | None = typer.Option(None, metavar="EMAIL", help="handled by EMAIL (see --unassigned)"),
    unassigned: bool = typer.Option(False, "--unassigned", help="only complaints with no handler"),
    screening_pending: bool = typer.Option(False, "--screening-pending",
                                           help="only complaints whose screening is not decided yet"),
    data_protection: bool | None = typer.Option(None, "--data-protection/--no-data-protection",
                                                help="only data-protection complaints, or only the others"),
    sort: Sort = typer.Option(Sort.NUMBER, metavar="SORT", help=one_of(Sort)),
    ascending: bool = typer.Option(False, "--ascending", help="oldest (smallest) first"),
    limit: int = typer.Option(50, metavar="N", help="at most N complaints"),
    as_json: bool = JsonOption,
    lang: Language = LangOption,
) -> None:
    """List complaints, newest first."""

    async def listed(store: RegistryStore, registry: Registry) -> list[str] | list[Any]:
        rows = await store.list_complaints(ComplaintFilter(
            status=status.value if status else None, kind=kind.value if kind else None, service=service, year=year,
            due_before=_day(due_before, "--due-before"),
            overdue_on=registry.today() if overdue else None, text=search, limit=limit,
            number_format=registry.policy.number_format, channel=channel.value if channel else None, theme=theme,
            handler="" if unassigned else handler, screening_pending=screening_pending,
            data_protection=data_protection, sort=sort.value, descending=not ascending))
        if as_json:
            return [views.complaint_summary(c) for c in rows]
        return views.complaint_table_lines(rows, _context(registry, lang))

    output = _run(listed)
    if as_json:
        _echo_json(output)
    else:
        _echo(output)


@command("show")
def show(number: str = NumberArgument, lang: Language = LangOption,
         as_json: bool = JsonOption) -> None:
    """Print the whole file of a complaint: complainant, routing, status, deadlines, every message in and out,
    and its history."""

    async def shown(store: RegistryStore, registry: Registry) -> list[str] | dict[str, Any] | None:
        found = await store.complaint_file(number.strip().upper())
        if found is None:
            return None
        if as_json:
            return views.complaint_file(*found, found.extras)
        return views.complaint_file_lines(*found, _context(registry, lang), found.extras)

    output = _run(shown)
    if output is None:
        ctx = views.TextContext(language=lang)
        typer.echo(f"{ctx.colon(ctx.text('not_found'))} {number}", err=True)
        raise typer.Exit(1)
    if isinstance(output, dict):
        _echo_json(output)
    else:
        _echo(output)


@command("held")
def held(as_json: bool = JsonOption, lang: Language = LangOption) -> None:
    """Messages in the holding pen, with the reason and the suggested cases."""

    async def pen(store: RegistryStore, registry: Registry) -> list[str] | list[Any]:
        rows = await store.held_messages()
        if as_json:
            return [views.held_message(h) for h in rows]
        return views.held_table_lines(rows, _context(registry, lang))

    output = _run(pen)
    if as_json:
        _echo_json(output)
    else:
        _echo(output)


HeldIdArgument = typer.Argument(..., metavar="HELD_ID", help="number of the held message (see `register held`)")


def _confirm(complaint: Any, lang: str, *extra: str) -> None:
    """One line after a staff action: the number, its status in words, what changed."""
    ctx = views.TextContext(language=lang)
    typer.echo(for_terminal("  ".join([complaint.number, ctx.term(complaint.status), *extra])))


@command("attach")
def attach(
    held_id: int = HeldIdArgument,
    number: str = NumberArgument,
    actor: str = ActorOption,
    correspondent: bool = typer.Option(False, "--correspondent",
                                       help="also admit the sender as a correspondent of the case"),
) -> None:
    """Attach a held message to a complaint."""
    outcome = _run(lambda _store, registry: registry.handle(commands.AttachHeld(
        held_id, number, actor, add_correspondent=correspondent)))
    typer.echo(f"{outcome.action} {outcome.number}")


@command("register-held")
def register_held(held_id: int = HeldIdArgument, actor: str = ActorOption) -> None:
    """Register a held message as a new complaint."""
    outcome = _run(lambda _store, registry: registry.handle(commands.RegisterHeld(held_id, actor)))
    typer.echo(f"{outcome.action} {outcome.number}")


@command("add-correspondent")
def add_correspondent(number: str = NumberArgument,
                      email: str = typer.Argument(..., metavar="EMAIL", help="address to admit"),
                      actor: str = ActorOption, reason: str | None = ReasonOption) -> None:
    """Admit an email address as a correspondent of a complaint (its mail is then attached to the case)."""
    added = _run(lambda _store, registry: registry.handle(commands.AddCorrespondent(number, email, actor, reason)))
    typer.echo("added" if added else "already a party")


@command("transition")
def transition(
    number: str = NumberArgument,
    target: Status = typer.Argument(..., metavar="STATUS", help=f"the new status, {one_of(Status)}"),
    actor: str = ActorOption,
    reason: str | None = ReasonOption,
    outcome: Outcome | None = typer.Option(None, metavar="OUTCOME",
                                           help=f"on closing, the assessment, {one_of(Outcome)}"),
    category: FoundedCategory | None = typer.Option(
        None, metavar="CATEGORY", help=f"on closing a (partially) founded complaint, {one_of(FoundedCategory)}"),
    inadmissible_reason: list[InadmissibilityReason] = typer.Option(
        [], "--inadmissible-reason", metavar="REASON",
        help=f"repeat for several reasons, {one_of(InadmissibilityReason)}"),
    redirect_to: str | None = typer.Option(None, metavar="OMBUDSMAN_ID",
                                           help="directory id of the competent ombudsman"),
    answer_file: typer.FileText | None = typer.Option(None, metavar="FILE", help="text of the final answer"),
    lang: Language = LangOption,
) -> None:
    """Change the status of a complaint (the workflow refuses illegal changes)."""
    answer_text = answer_file.read() if answer_file else None
    complaint = _run(lambda _store, registry: registry.handle(commands.Transition(
        number, target.value, actor, reason, outcome=outcome.value if outcome else None,
        category=category.value if category else None, reasons=tuple(r.value for r in inadmissible_reason),
        redirect_to=redirect_to, answer_text=answer_text)))
    _confirm(complaint, lang)


@command("assign")
def assign(number: str = NumberArgument,
           handler: str = typer.Argument(..., metavar="HANDLER", help="email of the handler"),
           actor: str = ActorOption, reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Assign a complaint to a handler."""
    complaint = _run(lambda _store, registry: registry.handle(commands.Assign(number, handler, actor, reason)))
    _confirm(complaint, lang, complaint.handler or views.NONE)


def _check_taxonomy(config: ScreeningConfig | None, attribute: str, value: str | None) -> None:
    """A theme or service must be one the screening configuration knows (its labels and indicators use them)."""
    known = [entry.id for entry in getattr(config, attribute, ())]
    if value is not None and known and value not in known:
        raise Conflict(f"unknown {attribute[:-1]} {value!r}; expected one of: {', '.join(known)}")


@command("classify")
def classify(number: str = NumberArgument, actor: str = ActorOption,
             kind: Kind | None = typer.Option(None, metavar="KIND", help=one_of(Kind)),
             theme: str | None = typer.Option(None, metavar="THEME"),
             service: str | None = typer.Option(None, metavar="SERVICE"),
             reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Confirm or override the suggested kind, theme and service."""

    async def apply(_store: RegistryStore, registry: Registry) -> tuple[Any, views.TextContext]:
        _check_taxonomy(registry.policy.screening, "themes", theme)
        _check_taxonomy(registry.policy.screening, "services", service)
        complaint = await registry.handle(commands.Classify(number, actor, reason, kind=kind.value if kind else None,
                                                            theme=theme, service=service))
        return complaint, _context(registry, lang)

    complaint, ctx = _run(apply)
    _confirm(complaint, lang, ctx.term(complaint.kind), ctx.theme(complaint.theme),
             ctx.service(complaint.service_concerned))


@command("screening")
def screening(
    number: str = NumberArgument,
    actor: str = ActorOption,
    admissible: bool | None = typer.Option(None, "--admissible/--inadmissible", help="omit to confirm the proposal"),
    inadmissible_reason: list[InadmissibilityReason] = typer.Option(
        [], "--inadmissible-reason", metavar="REASON",
        help=f"repeat for several reasons, {one_of(InadmissibilityReason)}"),
    redirect_to: str | None = typer.Option(None, metavar="OMBUDSMAN_ID",
                                           help="directory id of the competent ombudsman"),
    reason: str | None = ReasonOption,
    lang: Language = LangOption,
) -> None:
    """Confirm the screening proposal, or override it."""
    complaint = _run(lambda _store, registry: registry.handle(commands.DecideScreening(
        number, actor, reason, admissible=admissible,
        reasons=tuple(r.value for r in inadmissible_reason) or None, redirect_to=redirect_to)))
    _confirm(complaint, lang, views.TextContext(language=lang).term(complaint.admissibility, "admissibility"))


class Fact(StrEnum):
    FACTS_DATE = "facts_date"
    LAST_STEP_DATE = "last_step_date"
    FIRST_LINE_CONTACTED = "first_line_contacted"


def _day(value: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"{value!r} is no date (YYYY-MM-DD)", param_hint=option) from None


@command("facts")
def facts(
    number: str = NumberArgument,
    actor: str = ActorOption,
    facts_date: str | None = typer.Option(None, metavar="YYYY-MM-DD", help="date of the facts complained about"),
    last_step_date: str | None = typer.Option(None, metavar="YYYY-MM-DD",
                                              help="date of the citizen's last step since the facts"),
    first_line_contacted: bool | None = typer.Option(
        None, "--first-line-contacted/--first-line-not-contacted",
        help="whether the service concerned was contacted first"),
    forget: list[Fact] = typer.Option([], "--forget", metavar="FACT",
                                      help=f"make a fact unknown again (repeat), {one_of(Fact)}"),
    reason: str | None = ReasonOption,
    lang: Language = LangOption,
) -> None:
    """Record the facts screening weighs (facts date, last step, first-line contact); screening proposes again."""
    recorded = commands.RecordFacts(
        number, actor, reason, facts_date=_day(facts_date, "--facts-date"),
        last_step_date=_day(last_step_date, "--last-step-date"), first_line_contacted=first_line_contacted,
        forget=tuple(fact.value for fact in forget))
    complaint = _run(lambda _store, registry: registry.handle(recorded))
    ctx = views.TextContext(language=lang)
    _confirm(complaint, lang, *(f"{ctx.colon(label)} {value}" for label, value in views.facts_rows(complaint, ctx)))


@command("extend")
def extend(number: str = NumberArgument, actor: str = ActorOption, reason: str | None = ReasonOption,
           lang: Language = LangOption) -> None:
    """Extend the answer deadline once (the citizen is told before the original deadline)."""
    complaint = _run(lambda _store, registry: registry.handle(commands.Extend(number, actor, reason)))
    _confirm(complaint, lang, views.TextContext(language=lang).date(complaint.answer_due))


@command("recommend")
def recommend(number: str = NumberArgument,
              text: str = typer.Argument(..., metavar="TEXT", help="the recommendation or improvement action"),
              actor: str = ActorOption, lang: Language = LangOption) -> None:
    """Record a recommendation or improvement action drawn from a complaint."""
    complaint = _run(lambda _store, registry: registry.handle(commands.AddRecommendation(number, text, actor)))
    _confirm(complaint, lang, str(len(complaint.recommendations)))


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@command("indicators")
def indicators(year: int = typer.Argument(..., metavar="YEAR", help="e.g. 2026"),
               output_format: ReportFormat = typer.Option(ReportFormat.JSON, "--format", metavar="FORMAT",
                                                          help=one_of(ReportFormat)),
               as_of: str | None = typer.Option(None, metavar="YYYY-MM-DD",
                                                help="count open cases on this day; default today for the current "
                                                     "year")) -> None:
    """Annual indicators of a year, as JSON or CSV."""

    async def report(store: RegistryStore, registry: Registry) -> str:
        today = registry.today()
        cutoff = date.fromisoformat(as_of) if as_of else (today if year == today.year else None)
        zone = registry.policy.timezone
        if output_format is ReportFormat.CSV:
            return await annual_report_csv(store, year, zone, as_of=cutoff)
        return json_for_terminal(json.dumps(await annual_report(store, year, zone, as_of=cutoff), ensure_ascii=False,
                                            indent=2))

    typer.echo(_run(report), nl=output_format is not ReportFormat.CSV)


# --- the back office's actions (issue 13), the same commands as its pages ------------------------------------------
@command("note")
def note(number: str = NumberArgument,
         text: str = typer.Argument(..., metavar="TEXT", help="the internal note (never sent to anyone)"),
         actor: str = ActorOption, lang: Language = LangOption) -> None:
    """Add an internal note to a complaint's file."""
    complaint = _run(lambda _store, registry: registry.handle(commands.AddNote(number, text, actor)))
    _confirm(complaint, lang)


OtherArgument = typer.Argument(..., metavar="OTHER", help="the other complaint's number")


@command("merge")
def merge(source: str = typer.Argument(..., metavar="SOURCE", help="the complaint merged (it ends as merged)"),
          target: str = typer.Argument(..., metavar="TARGET", help="the complaint it is merged into"),
          actor: str = ActorOption, reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Merge a complaint into another: its messages join the other's file (undo with `unmerge`)."""
    complaint = _run(lambda _store, registry: registry.handle(commands.MergeComplaints(source, target, actor,
                                                                                       reason)))
    _confirm(complaint, lang)


@command("unmerge")
def unmerge(source: str = typer.Argument(..., metavar="SOURCE", help="the complaint that was merged"),
            actor: str = ActorOption, reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Undo a merge: the complaint gets its messages and its status back."""
    complaint = _run(lambda _store, registry: registry.handle(commands.UndoMerge(source, actor, reason)))
    _confirm(complaint, lang)


@command("link")
def link(number: str = NumberArgument, other: str = OtherArgument, actor: str = ActorOption,
         reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Link two related complaints."""
    complaint = _run(lambda _store, registry: registry.handle(commands.LinkComplaints(number, other, actor, reason)))
    _confirm(complaint, lang, other.strip().upper())


@command("unlink")
def unlink(number: str = NumberArgument, other: str = OtherArgument, actor: str = ActorOption,
           reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Remove the link between two complaints."""
    complaint = _run(lambda _store, registry: registry.handle(commands.UnlinkComplaints(number, other, actor,
                                                                                        reason)))
    _confirm(complaint, lang)


class ManualChannel(StrEnum):
    PHONE = "phone"
    IN_PERSON = "in_person"
    LETTER = "letter"


@command("new")
def new(
    channel: ManualChannel = typer.Argument(..., metavar="CHANNEL", help=one_of(ManualChannel)),
    actor: str = ActorOption,
    received_on: str | None = typer.Option(None, "--received-on", metavar="YYYY-MM-DD",
                                           help="the day it was received (default today)"),
    name: str = typer.Option("", metavar="NAME", help="the complainant's name"),
    email: str | None = typer.Option(None, metavar="EMAIL", help="the complainant's email address"),
    postal_address: str | None = typer.Option(None, metavar="ADDRESS",
                                              help="the complainant's postal address (a letter answers without email)"),
    language: Language | None = typer.Option(None, "--language", metavar="LANG",
                                             help=f"the complainant's language, {one_of(Language)}"),
    subject: str = typer.Option("", metavar="TEXT", help="what it is about, in a line"),
    body_file: typer.FileText | None = typer.Option(None, "--text-file", metavar="FILE",
                                                    help="what the complainant said (a file, - for stdin)"),
    kind: Kind = typer.Option(Kind.COMPLAINT, metavar="KIND", help=one_of(Kind)),
    lang: Language = LangOption,
) -> None:
    """Register a complaint received by phone, in person or by post: screened and numbered like a mailed one."""
    body = body_file.read() if body_file else ""
    day = _day(received_on, "--received-on")

    async def register(_store: RegistryStore, registry: Registry) -> Any:
        return await registry.handle(commands.RegisterManual(
            channel.value, actor, name=name, email=email, postal_address=postal_address,
            language=language.value if language else None, subject=subject, body=body,
            received_on=day or registry.today(), kind=kind.value))

    complaint = _run(register)
    _confirm(complaint, lang, views.TextContext(language=lang).date(complaint.answer_due))
