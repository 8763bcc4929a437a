"""`ombudsdesk register ...`: the staff command line over the register (mounted by the lead in `ombudsdesk/cli.py`).

It works on the registry's database directly (the same settings as the service), through the same use cases as the
service, so a change made here is logged and its events go out through the outbox (published by the running
service's outbox loop, or at once when NATS is reachable). Labels are translatable: French first (`--lang`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import typer

from services.registry import views
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.reports import annual_report, annual_report_csv
from services.registry.repository import ComplaintFilter, RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from shared.settings import load_settings

app = typer.Typer(help="Le registre des plaintes / the register of complaints.", no_args_is_help=True)

T = TypeVar("T")

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "number": "Numéro", "status": "Statut", "received": "Reçue le", "legal_start": "Date de départ légale",
        "complainant": "Plaignant·e", "kind": "Nature", "channel": "Canal", "subject": "Objet",
        "service": "Service concerné", "theme": "Thème", "handler": "Gestionnaire",
        "admissibility": "Recevabilité", "ack_due": "Accusé de réception dû le", "answer_due": "Réponse due le",
        "acknowledged": "Accusé envoyé le", "linked": "Liée à", "parties": "Correspondants admis",
        "thread": "Fil des messages", "changes": "Historique", "none": "(aucune)", "in": "reçu", "out": "envoyé",
        "empty": "Aucune plainte.", "not_found": "Aucune plainte portant ce numéro",
        "held_empty": "Aucun message en attente.",
        "outcome": "Issue",
    },
    "en": {
        "number": "Number", "status": "Status", "received": "Received", "legal_start": "Legal start date",
        "complainant": "Complainant", "kind": "Kind", "channel": "Channel", "subject": "Subject",
        "service": "Service concerned", "theme": "Theme", "handler": "Handler",
        "admissibility": "Admissibility", "ack_due": "Acknowledgment due", "answer_due": "Answer due",
        "acknowledged": "Acknowledged", "linked": "Linked to", "parties": "Admitted correspondents",
        "thread": "Thread", "changes": "History", "none": "(none)", "in": "in", "out": "out",
        "empty": "No complaints.", "not_found": "No complaint with that number", "held_empty": "No held messages.",
        "outcome": "Outcome",
    },
}


def _labels(lang: str) -> dict[str, str]:
    return LABELS.get(lang, LABELS["fr"])


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
        typer.echo(f"introuvable / not found: {error}", err=True)
        raise typer.Exit(2) from None
    except Conflict as error:
        typer.echo(f"refusé / refused: {error}", err=True)
        raise typer.Exit(3) from None


class _DeferredPublisher:
    """The CLI leaves its events in the outbox: the running service's outbox loop publishes them."""

    async def publish(self, rows: Any) -> None:
        return None


LangOption = typer.Option("fr", "--lang", help="fr, en")


@app.command("list")
def list_complaints(
    status: str | None = typer.Option(None, help="received, acknowledged, in_review, ..."),
    kind: str | None = typer.Option(None),
    service: str | None = typer.Option(None),
    year: int | None = typer.Option(None),
    due_before: str | None = typer.Option(None, help="YYYY-MM-DD"),
    overdue: bool = typer.Option(False, help="only complaints past their answer deadline today"),
    search: str | None = typer.Option(None, "--search", "-s", help="text in subject, name, email or number"),
    limit: int = typer.Option(50),
    as_json: bool = typer.Option(False, "--json"),
    lang: str = LangOption,
) -> None:
    """List complaints, newest first."""
    def criteria(registry: Registry) -> ComplaintFilter:
        return ComplaintFilter(status=status, kind=kind, service=service, year=year,
                               due_before=date.fromisoformat(due_before) if due_before else None,
                               overdue_on=registry.today() if overdue else None, text=search, limit=limit,
                               number_format=registry.policy.number_format)

    rows = _run(lambda store, registry: store.list_complaints(criteria(registry)))
    if as_json:
        typer.echo(json.dumps([views.complaint_summary(c) for c in rows], ensure_ascii=False, indent=2))
        return
    labels = _labels(lang)
    if not rows:
        typer.echo(labels["empty"])
        return
    for c in rows:
        who = c.complainant_name or c.complainant_email or "-"
        typer.echo(f"{c.number}  {c.legal_start.isoformat()}  {c.status:<14} {c.answer_due.isoformat()}  "
                   f"{who[:30]:<30}  {c.subject_line[:60]}")


@app.command("show")
def show(number: str, lang: str = LangOption) -> None:
    """Print the whole file of a complaint: complainant, routing, status, deadlines, every message in and out."""
    found = _run(lambda store, _registry: store.complaint_file(number.strip().upper()))
    labels = _labels(lang)
    if found is None:
        typer.echo(f"{labels['not_found']}: {number}", err=True)
        raise typer.Exit(1)
    c, thread, changes, parties = found
    complainant = ", ".join(p for p in (c.complainant_name, c.complainant_email, c.complainant_postal_address,
                                        c.complainant_language) if p)
    rows = [
        ("number", c.number), ("status", c.status), ("kind", c.kind), ("channel", c.channel),
        ("received", c.received_at.isoformat()), ("legal_start", c.legal_start.isoformat()),
        ("complainant", complainant or labels["none"]), ("subject", c.subject_line),
        ("service", c.service_concerned or labels["none"]), ("theme", c.theme or labels["none"]),
        ("handler", c.handler or labels["none"]),
        ("admissibility", " ".join([c.admissibility, *map(str, c.admissibility_reasons)])),
        ("ack_due", c.acknowledgment_due.isoformat()),
        ("acknowledged", c.acknowledged_at.isoformat() if c.acknowledged_at else labels["none"]),
        ("answer_due", c.answer_due.isoformat() + (" (+)" if c.answer_extended else "")),
        ("outcome", " / ".join(p for p in (c.outcome, c.outcome_category) if p) or labels["none"]),
        ("linked", c.linked_number or labels["none"]),
        ("parties", ", ".join(parties) or labels["none"]),
    ]
    width = max(len(labels[key]) for key, _ in rows)
    for key, value in rows:
        typer.echo(f"{labels[key]:<{width}}  {value}")
    typer.echo(f"\n{labels['thread']}:")
    for m in thread:
        who = (m.sender_email or m.sender_name) if m.direction == "in" else m.recipient
        detail = m.notice_kind or m.subject_line
        typer.echo(f"  {m.occurred_at.isoformat()}  {labels[m.direction]:<7} {who or '-'}  {detail}"
                   + (f"  <{m.message_id}>" if m.message_id else ""))
        if m.body:
            for line in m.body.splitlines()[:20]:
                typer.echo(f"      {line}")
    typer.echo(f"\n{labels['changes']}:")
    for entry in changes:
        typer.echo(f"  {entry.at.isoformat()}  {entry.actor}  {entry.change}  {entry.reason or ''}")


@app.command("held")
def held(as_json: bool = typer.Option(False, "--json"), lang: str = LangOption) -> None:
    """Messages in the holding pen, with the reason and the suggested cases."""
    rows = _run(lambda store, _registry: store.held_messages())
    if as_json:
        typer.echo(json.dumps([views.held_message(h) for h in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo(_labels(lang)["held_empty"])
    for h in rows:
        suggestions = ", ".join(f"{s['number']} ({s['why']})" for s in h.suggestions) or "-"
        typer.echo(f"#{h.id}  {h.received_at.isoformat()}  {h.reason:<20} {h.sender_email or '-'}  "
                   f"{h.subject_line[:50]}  -> {suggestions}")


@app.command("attach")
def attach(
    held_id: int,
    number: str,
    actor: str = typer.Option(..., "--by", help="who decides (recorded in the change log)"),
    correspondent: bool = typer.Option(False, help="also admit the sender as a correspondent of the case"),
) -> None:
    """Attach a held message to a complaint."""
    outcome = _run(lambda _store, registry: registry.attach_held(held_id, number.strip().upper(), actor,
                                                                  add_correspondent=correspondent))
    typer.echo(f"{outcome.action} {outcome.number}")


@app.command("register-held")
def register_held(held_id: int, actor: str = typer.Option(..., "--by")) -> None:
    """Register a held message as a new complaint."""
    outcome = _run(lambda _store, registry: registry.register_held(held_id, actor))
    typer.echo(f"{outcome.action} {outcome.number}")


@app.command("add-correspondent")
def add_correspondent(number: str, email: str, actor: str = typer.Option(..., "--by"),
                      reason: str | None = typer.Option(None)) -> None:
    """Admit an email address as a correspondent of a complaint (its mail is then attached to the case)."""
    added = _run(lambda _store, registry: registry.add_correspondent(number.strip().upper(), email, actor, reason))
    typer.echo("added" if added else "already a party")


ActorOption = typer.Option(..., "--by", help="who decides (recorded in the change log)")


@app.command("transition")
def transition(
    number: str,
    target: str,
    actor: str = ActorOption,
    reason: str | None = typer.Option(None),
    outcome: str | None = typer.Option(None, help="on closing: founded, partially_founded, unfounded, no_assessment"),
    category: str | None = typer.Option(None, help="founded category"),
    inadmissible_reason: list[str] = typer.Option([], "--inadmissible-reason"),
    redirect_to: str | None = typer.Option(None, help="directory id of the competent ombudsman"),
    answer_file: typer.FileText | None = typer.Option(None, help="text of the final answer"),
) -> None:
    """Change the status of a complaint (the workflow refuses illegal changes)."""
    answer_text = answer_file.read() if answer_file else None
    complaint = _run(lambda _store, registry: registry.transition(
        number, target, actor, reason, outcome=outcome, category=category, reasons=inadmissible_reason,
        redirect_to=redirect_to, answer_text=answer_text))
    typer.echo(f"{complaint.number} {complaint.status}")


@app.command("assign")
def assign(number: str, handler: str, actor: str = ActorOption, reason: str | None = typer.Option(None)) -> None:
    """Assign a complaint to a handler."""
    complaint = _run(lambda _store, registry: registry.assign(number, handler, actor, reason))
    typer.echo(f"{complaint.number} {complaint.handler}")


@app.command("classify")
def classify(number: str, actor: str = ActorOption, kind: str | None = typer.Option(None),
             theme: str | None = typer.Option(None), service: str | None = typer.Option(None),
             reason: str | None = typer.Option(None)) -> None:
    """Confirm or override the suggested kind, theme and service."""
    complaint = _run(lambda _store, registry: registry.classify(number, actor, reason, kind=kind, theme=theme,
                                                                service=service))
    typer.echo(f"{complaint.number} {complaint.kind} {complaint.theme or '-'} {complaint.service_concerned or '-'}")


@app.command("screening")
def screening(
    number: str,
    actor: str = ActorOption,
    admissible: bool | None = typer.Option(None, "--admissible/--inadmissible", help="omit to confirm the proposal"),
    inadmissible_reason: list[str] = typer.Option([], "--inadmissible-reason"),
    redirect_to: str | None = typer.Option(None),
    reason: str | None = typer.Option(None),
) -> None:
    """Confirm the screening proposal, or override it."""
    complaint = _run(lambda _store, registry: registry.confirm_screening(
        number, actor, reason, admissible=admissible, reasons=inadmissible_reason or None, redirect_to=redirect_to))
    typer.echo(f"{complaint.number} {complaint.status} {complaint.admissibility}")


@app.command("extend")
def extend(number: str, actor: str = ActorOption, reason: str | None = typer.Option(None)) -> None:
    """Extend the answer deadline once (the citizen is told before the original deadline)."""
    complaint = _run(lambda _store, registry: registry.extend(number, actor, reason))
    typer.echo(f"{complaint.number} {complaint.answer_due.isoformat()}")


@app.command("recommend")
def recommend(number: str, text: str, actor: str = ActorOption) -> None:
    """Record a recommendation or improvement action drawn from a complaint."""
    complaint = _run(lambda _store, registry: registry.add_recommendation(number, text, actor))
    typer.echo(f"{complaint.number} {len(complaint.recommendations)}")


@app.command("indicators")
def indicators(year: int, output_format: str = typer.Option("json", "--format", help="json or csv"),
               as_of: str | None = typer.Option(None, help="YYYY-MM-DD; default today for the current year")) -> None:
    """Annual indicators of a year, as JSON or CSV."""
    if output_format not in {"json", "csv"}:
        raise typer.BadParameter("json or csv", param_hint="--format")

    async def report(store: RegistryStore, registry: Registry) -> str:
        today = registry.today()
        cutoff = date.fromisoformat(as_of) if as_of else (today if year == today.year else None)
        zone = registry.policy.timezone
        if output_format == "csv":
            return await annual_report_csv(store, year, zone, as_of=cutoff)
        return json.dumps(await annual_report(store, year, zone, as_of=cutoff), ensure_ascii=False, indent=2)

    typer.echo(_run(report), nl=False if output_format == "csv" else True)
