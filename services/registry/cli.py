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

Reading the register here is an admin tool's reading (issue 16): `list`, `show` and `held` record it in the audit
trail (`search`, `file.read`, `held.read`) in the name of the operating-system account (`cli:<login>`), and
data-protection files are left out — `list` does not show them, `show` refuses one (exit 4, recorded as
`file.denied`) — unless `--as-dpo EMAIL` names an active DPO account of the back office: the reads are then recorded
in that account's name (docs/privacy.md, "The citizen's own data, and access").
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
from services.registry.mediation import recommendation_store
from services.registry.access.accounts import AccountStore
from services.registry.access.audit import AuditTrail
from services.registry.access.roles import Role, VisibilityScope
from services.registry.audit_cli import cli_actor
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
    label,
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
AsDpoOption = typer.Option(None, "--as-dpo", metavar="EMAIL",
                           help="read data-protection files too, as this DPO account (recorded in the audit trail)")


class _Reader:
    """Who reads the register through this command line, as the audit trail records it: the operating-system account,
    or the DPO account `--as-dpo` named (which alone sees data-protection files)."""

    def __init__(self, store: RegistryStore, as_dpo: str | None) -> None:
        self.trail = AuditTrail(store.engine)
        self.accounts = AccountStore(store.engine)
        self.as_dpo = as_dpo
        self.actor, self.account_id, self.roles, self.dpo = cli_actor(), None, (), False

    async def identify(self) -> _Reader:
        if self.as_dpo is not None:
            account = await self.accounts.account_by_email(self.as_dpo)
            if account is None or not account.active or Role.DPO not in account.roles:
                raise _NotDpo(f"{self.as_dpo} is not an active DPO account")
            self.actor, self.account_id, self.roles, self.dpo = account.email, account.id, account.roles, True
        return self

    async def record(self, action: str, number: str | None = None, **details: Any) -> None:
        await self.trail.append(action, actor=self.actor, account_id=self.account_id, roles=self.roles,
                                number=number, details={**details, "via": "cli", "os_user": cli_actor()})


class _NotDpo(Exception):
    """`--as-dpo` named no active DPO account, or a data-protection file was asked for without it."""


def run_on_register(action: Callable[[RegistryStore, Registry], Awaitable[T]], *,
                    refused: tuple[type[Exception], ...] = ()) -> T:
    """Open the register (migrating it if new), run one action, close it; what is not found, refused (`Conflict`
    and the `refused` errors) or reserved to the DPO is said in one line with its exit code (2, 3, 4). The events
    the action queues stay in the outbox: the running service's outbox loop publishes them. Every `ombudsdesk`
    command that works on the register goes through here."""

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
    except (Conflict, *refused) as error:
        typer.echo(for_terminal(f"refusé / refused: {error}"), err=True)
        raise typer.Exit(3) from None
    except _NotDpo as error:
        typer.echo(for_terminal(f"réservé au DPO / DPO only: {error}"), err=True)
        raise typer.Exit(4) from None


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
    as_dpo: str | None = AsDpoOption,
) -> None:
    """List complaints, newest first (data-protection ones only with --as-dpo)."""

    async def listed(store: RegistryStore, registry: Registry) -> list[str] | list[Any]:
        reader = await _Reader(store, as_dpo).identify()
        if data_protection and not reader.dpo:
            raise _NotDpo("data-protection files are listed with --as-dpo EMAIL")
        rows = await store.list_complaints(ComplaintFilter(
            status=status.value if status else None, kind=kind.value if kind else None, service=service, year=year,
            due_before=_day(due_before, "--due-before"),
            overdue_on=registry.today() if overdue else None, text=search, limit=limit,
            number_format=registry.policy.number_format, channel=channel.value if channel else None, theme=theme,
            handler="" if unassigned else handler, screening_pending=screening_pending,
            data_protection=data_protection if reader.dpo else False, sort=sort.value, descending=not ascending))
        await reader.record("search", rows=len(rows), data_protection_files=reader.dpo)
        if as_json:
            return [views.complaint_summary(c) for c in rows]
        return views.complaint_table_lines(rows, _context(registry, lang))

    output = run_on_register(listed)
    if as_json:
        _echo_json(output)
    else:
        _echo(output)


@command("show")
def show(number: str = NumberArgument, lang: Language = LangOption,
         as_json: bool = JsonOption, as_dpo: str | None = AsDpoOption) -> None:
    """Print the whole file of a complaint: complainant, routing, status, deadlines, every message in and out,
    and its history (a data-protection file only with --as-dpo)."""

    async def shown(store: RegistryStore, registry: Registry) -> list[str] | dict[str, Any] | None:
        reader = await _Reader(store, as_dpo).identify()
        found = await store.complaint_file(number.strip().upper())
        if found is None:
            return None
        if found[0].data_protection and not reader.dpo:
            await reader.record("file.denied", found[0].number)
            raise _NotDpo(f"{found[0].number} is a data-protection file: read it with --as-dpo EMAIL")
        await reader.record("file.read", found[0].number)
        if as_json:
            return views.complaint_file(*found, found.extras)
        return views.complaint_file_lines(*found, _context(registry, lang), found.extras)

    output = run_on_register(shown)
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
        await _Reader(store, None).record("held.read", rows=len(rows))
        if as_json:
            return [views.held_message(h) for h in rows]
        return views.held_table_lines(rows, _context(registry, lang))

    output = run_on_register(pen)
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
    outcome = run_on_register(lambda _store, registry: registry.handle(commands.AttachHeld(
        held_id, number, actor, add_correspondent=correspondent)))
    typer.echo(f"{outcome.action} {outcome.number}")


@command("register-held")
def register_held(held_id: int = HeldIdArgument, actor: str = ActorOption) -> None:
    """Register a held message as a new complaint."""
    outcome = run_on_register(lambda _store, registry: registry.handle(commands.RegisterHeld(held_id, actor)))
    typer.echo(f"{outcome.action} {outcome.number}")


@command("add-correspondent")
def add_correspondent(number: str = NumberArgument,
                      email: str = typer.Argument(..., metavar="EMAIL", help="address to admit"),
                      actor: str = ActorOption, reason: str | None = ReasonOption) -> None:
    """Admit an email address as a correspondent of a complaint (its mail is then attached to the case)."""
    added = run_on_register(lambda _store, registry: registry.handle(commands.AddCorrespondent(number, email, actor, reason)))
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
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.Transition(
        number, target.value, actor, reason, outcome=outcome.value if outcome else None,
        category=category.value if category else None, reasons=tuple(r.value for r in inadmissible_reason),
        redirect_to=redirect_to, answer_text=answer_text)))
    _confirm(complaint, lang)


@command("assign")
def assign(number: str = NumberArgument,
           handler: str = typer.Argument(..., metavar="HANDLER", help="email of the handler"),
           actor: str = ActorOption, reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Assign a complaint to a handler."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.Assign(number, handler, actor, reason)))
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

    complaint, ctx = run_on_register(apply)
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
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.DecideScreening(
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
    complaint = run_on_register(lambda _store, registry: registry.handle(recorded))
    ctx = views.TextContext(language=lang)
    _confirm(complaint, lang, *(f"{ctx.colon(label)} {value}" for label, value in views.facts_rows(complaint, ctx)))


@command("extend")
def extend(number: str = NumberArgument, actor: str = ActorOption, reason: str | None = ReasonOption,
           lang: Language = LangOption) -> None:
    """Extend the answer deadline once (the citizen is told before the original deadline)."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.Extend(number, actor, reason)))
    _confirm(complaint, lang, views.TextContext(language=lang).date(complaint.answer_due))


@command("recommend")
def recommend(number: str = NumberArgument,
              text: str = typer.Argument(..., metavar="TEXT", help="the recommendation or improvement action"),
              actor: str = ActorOption, lang: Language = LangOption) -> None:
    """Record a recommendation or improvement action drawn from a complaint."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.AddRecommendation(number, text, actor)))
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

    typer.echo(run_on_register(report), nl=output_format is not ReportFormat.CSV)


# --- the back office's actions (issue 13), the same commands as its pages ------------------------------------------
@command("note")
def note(number: str = NumberArgument,
         text: str = typer.Argument(..., metavar="TEXT", help="the internal note (never sent to anyone)"),
         actor: str = ActorOption, lang: Language = LangOption) -> None:
    """Add an internal note to a complaint's file."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.AddNote(number, text, actor)))
    _confirm(complaint, lang)


OtherArgument = typer.Argument(..., metavar="OTHER", help="the other complaint's number")


@command("merge")
def merge(source: str = typer.Argument(..., metavar="SOURCE", help="the complaint merged (it ends as merged)"),
          target: str = typer.Argument(..., metavar="TARGET", help="the complaint it is merged into"),
          actor: str = ActorOption, reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Merge a complaint into another: its messages join the other's file (undo with `unmerge`)."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.MergeComplaints(source, target, actor,
                                                                                       reason)))
    _confirm(complaint, lang)


@command("unmerge")
def unmerge(source: str = typer.Argument(..., metavar="SOURCE", help="the complaint that was merged"),
            actor: str = ActorOption, reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Undo a merge: the complaint gets its messages and its status back."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.UndoMerge(source, actor, reason)))
    _confirm(complaint, lang)


@command("link")
def link(number: str = NumberArgument, other: str = OtherArgument, actor: str = ActorOption,
         reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Link two related complaints."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.LinkComplaints(number, other, actor, reason)))
    _confirm(complaint, lang, other.strip().upper())


@command("unlink")
def unlink(number: str = NumberArgument, other: str = OtherArgument, actor: str = ActorOption,
           reason: str | None = ReasonOption, lang: Language = LangOption) -> None:
    """Remove the link between two complaints."""
    complaint = run_on_register(lambda _store, registry: registry.handle(commands.UnlinkComplaints(number, other, actor,
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

    complaint = run_on_register(register)
    _confirm(complaint, lang, views.TextContext(language=lang).date(complaint.answer_due))


# --- recommendations followed up (issue 15) --------------------------------------------------------------------------
recommendation_app = staff_app(help="Les recommandations et leur suivi / recommendations and their follow-up.",
                               no_args_is_help=True)
app.add_typer(recommendation_app, name="recommendation")
RecommendationIdArgument = typer.Argument(..., metavar="ID", help="the recommendation's id (`recommendation list`)")


class FollowUpStatus(StrEnum):
    ACCEPTED = "accepted"
    IMPLEMENTED = "implemented"
    REFUSED = "refused"


def _recommendation_line(recommendation: Any, number: str | None, lang: str) -> str:
    """`12  MED-2026-00042  Implemented  SPF Finances  review 2027-03-01  Publish the refund calendar`."""
    ctx = views.TextContext(language=lang)
    first_line = next((line for line in recommendation.text.splitlines() if line.strip()), "")
    review = f"{ctx.colon(label('review', lang, 'recommendation'))} {ctx.date(recommendation.review_date)}" \
        if recommendation.review_date else ""
    return "  ".join(part for part in (
        str(recommendation.id), number or label("general", lang, "recommendation"),
        label(recommendation.status, lang, "follow_up"), recommendation.addressee or views.NONE, review,
        first_line[:80]) if part)


def _recommendation_json(recommendation: Any, number: str | None) -> dict[str, Any]:
    return {"id": recommendation.id, "number": number, "addressee": recommendation.addressee,
            "administration_id": recommendation.administration_id, "text": recommendation.text,
            "issued_on": recommendation.issued_on.isoformat(), "status": recommendation.status,
            "status_reason": recommendation.status_reason,
            "review_date": recommendation.review_date.isoformat() if recommendation.review_date else None,
            "history": recommendation.history}


def _echo_recommendation(command: commands.Command[Any], lang: str) -> None:
    """Handle a change of one recommendation and print its line, with its file's number."""

    async def changed(store: RegistryStore, registry: Registry) -> tuple[Any, str | None]:
        recommendation = await registry.handle(command)
        return recommendation, await recommendation_store.file_number(store, recommendation.complaint_id)

    recommendation, number = run_on_register(changed)
    typer.echo(for_terminal(_recommendation_line(recommendation, number, lang)))


@recommendation_app.command("add", cls=_Command)
def recommendation_add(
    text: str = typer.Argument(..., metavar="TEXT", help="the recommendation"),
    actor: str = ActorOption,
    number: str | None = typer.Option(None, "--file", metavar="NUMBER",
                                      help="the file it is drawn from; none: a general recommendation"),
    addressee: str | None = typer.Option(None, "--to", metavar="NAME",
                                         help="the administration it is addressed to (default: the file's service)"),
    administration: int | None = typer.Option(None, "--administration", metavar="ID",
                                              help="its entry in the directory of administrations"),
    issued_on: str | None = typer.Option(None, "--on", metavar="YYYY-MM-DD", help="its date (default today)"),
    review: str | None = typer.Option(None, "--review", metavar="YYYY-MM-DD",
                                      help="when to review what became of it (the handler is reminded then)"),
    lang: Language = LangOption,
) -> None:
    """Record a recommendation to an administration, drawn from a file or general."""
    issued = commands.IssueRecommendation(
        number.strip().upper() if number else None, text, actor, addressee=addressee,
        administration_id=administration, issued_on=_day(issued_on, "--on"), review_date=_day(review, "--review"))
    recommendation = run_on_register(lambda _store, registry: registry.handle(issued))
    typer.echo(for_terminal(_recommendation_line(recommendation, issued.number, lang)))


@recommendation_app.command("status", cls=_Command)
def recommendation_status(
    recommendation_id: int = RecommendationIdArgument,
    status: FollowUpStatus = typer.Argument(..., metavar="STATUS", help=one_of(FollowUpStatus)),
    actor: str = ActorOption,
    reason: str | None = typer.Option(None, metavar="TEXT", help="why (required for refused: the administration's)"),
    lang: Language = LangOption,
) -> None:
    """Record what the administration did with a recommendation."""
    _echo_recommendation(commands.FollowUpRecommendation(recommendation_id, status.value, actor, reason), lang)


@recommendation_app.command("review", cls=_Command)
def recommendation_review(
    recommendation_id: int = RecommendationIdArgument,
    review: str = typer.Argument(..., metavar="YYYY-MM-DD|none", help="the review date, or none to clear it"),
    actor: str = ActorOption,
    reason: str | None = ReasonOption,
    lang: Language = LangOption,
) -> None:
    """Set (or clear) the day a recommendation's follow-up is reviewed; the handler is reminded that day."""
    day = None if review.strip().lower() == "none" else _day(review, "REVIEW")
    _echo_recommendation(commands.SetRecommendationReview(recommendation_id, day, actor, reason), lang)


@recommendation_app.command("list", cls=_Command)
def recommendation_list(
    status: str | None = typer.Option(None, metavar="STATUS", help="pending, accepted, implemented or refused"),
    addressee: str | None = typer.Option(None, "--to", metavar="NAME", help="addressed to this administration"),
    general: bool = typer.Option(False, "--general", help="only general recommendations (of no file)"),
    limit: int = typer.Option(50, metavar="N", help="at most N recommendations"),
    as_json: bool = JsonOption,
    lang: Language = LangOption,
    as_dpo: str | None = AsDpoOption,
) -> None:
    """List recommendations, newest first (those of data-protection files only with --as-dpo)."""

    async def listed(store: RegistryStore, _registry: Registry) -> list[Any]:
        # The reader as `list` and `show` identify and record it: a data-protection file's recommendation (its text,
        # its addressee) is the DPO's alone, so without --as-dpo naming a DPO account the query leaves those out.
        reader = await _Reader(store, as_dpo).identify()
        rows = await recommendation_store.list_recommendations(store, recommendation_store.RecommendationFilter(
            status=status, addressee=addressee, general_only=general, limit=max(1, min(limit, 1000)),
            scope=VisibilityScope(ordinary="all", data_protection=reader.dpo)))
        await reader.record("search", rows=len(rows), data_protection_files=reader.dpo, list="recommendations")
        return rows

    rows = run_on_register(listed)
    if as_json:
        _echo_json([_recommendation_json(row.recommendation, row.number) for row in rows])
    else:
        _echo([_recommendation_line(row.recommendation, row.number, lang) for row in rows])
