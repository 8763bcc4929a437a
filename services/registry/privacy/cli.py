"""`ombudsdesk privacy ...`: retention, erasure on request, legal holds and rectification from the command line
(issue 16; `privacy export` is `export.py`'s).

    ombudsdesk privacy retention [--dry-run] [--json]       what the schedule makes due today, and why; without
                                                            --dry-run, do it (as the daily job does)
    ombudsdesk privacy erase EMAIL [--dry-run] [--yes]      erase one citizen's data in the register: every copy
                                                            listed, confirmation asked unless --yes
    ombudsdesk privacy hold NUMBER --reason TEXT            place a legal hold (retention and erasure suspended)
    ombudsdesk privacy release NUMBER [--reason TEXT]       release it
    ombudsdesk privacy rectify NUMBER [--name] [--email] [--postal-address] [--language]
                                                            correct the complainant's contact details

It opens the registry's database with the service's settings, like `ombudsdesk register`, and changes it through the
registry's commands: each change is in the file's change log, its events (`PersonalDataErased` among them) wait in the
outbox for the running service to publish, and each action is recorded in the audit trail in the name given by
`--by` (default: the operating-system account, `cli:<login>`). What it prints names files by number and copies by
count, never a person; `--lang` chooses the language of its words (French by default).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from services.registry.access.audit import AuditTrail
from services.registry.audit_cli import cli_actor
from services.registry.commands import PlaceLegalHold, RectifyContact, ReleaseLegalHold
from services.registry.cli import run_on_register
from services.registry.handlers import Registry
from services.registry.privacy.export_cli import export_command
from services.registry.privacy import erase as erasure
from services.registry.privacy import retention
from services.registry.repository import RegistryStore
from services.registry.settings import RegistrySettings
from services.registry.vocabulary import DEFAULT_LANGUAGE, Language, label, primary_language
from shared.cli_help import StaffCommand, one_of, staff_app
from shared.settings import load_settings
from shared.untrusted_text import for_terminal, json_for_terminal

app = staff_app(help="Vie privée / privacy: retention, erasure on request, legal holds, rectification.",
                no_args_is_help=True, add_completion=False)
T = TypeVar("T")

# The words this command prints, in the office's four languages.
WORDS: dict[str, dict[str, str]] = {
    "anonymise": {"fr": "à anonymiser", "nl": "te anonimiseren", "de": "zu anonymisieren", "en": "to anonymise"},
    "delete": {"fr": "à supprimer", "nl": "te verwijderen", "de": "zu löschen", "en": "to delete"},
    "suspended": {"fr": "suspendu (gel juridique)", "nl": "opgeschort (juridische bewaring)",
                  "de": "ausgesetzt (rechtliche Aufbewahrung)", "en": "suspended (legal hold)"},
    "due": {"fr": "échu le", "nl": "vervallen op", "de": "fällig seit", "en": "due on"},
    "rule": {"fr": "règle", "nl": "regel", "de": "Regel", "en": "rule"},
    "total": {"fr": "décision(s)", "nl": "beslissing(en)", "de": "Entscheidung(en)", "en": "decision(s)"},
    "done": {"fr": "fait", "nl": "uitgevoerd", "de": "erledigt", "en": "done"},
    "failed": {"fr": "échec", "nl": "mislukt", "de": "fehlgeschlagen", "en": "failed"},
    "dry_run": {"fr": "simulation : rien n'a été modifié", "nl": "proefdraai: niets gewijzigd",
                "de": "Probelauf: nichts geändert", "en": "dry run: nothing changed"},
    "complainant": {"fr": "plaignant", "nl": "klager", "de": "Beschwerdeführer", "en": "complainant"},
    "correspondent": {"fr": "correspondant", "nl": "correspondent", "de": "Korrespondent", "en": "correspondent"},
    "held_message": {"fr": "message en attente", "nl": "bericht in de wachtrij", "de": "zurückgehaltene Nachricht",
                     "en": "held message"},
    "copies": {"fr": "copies", "nl": "kopieën", "de": "Kopien", "en": "copies"},
    "kept": {"fr": "conservé", "nl": "bewaard", "de": "aufbewahrt", "en": "kept"},
    "already": {"fr": "déjà anonymisé", "nl": "al geanonimiseerd", "de": "bereits anonymisiert",
                "en": "already anonymised"},
    "nothing": {"fr": "rien à effacer", "nl": "niets te wissen", "de": "nichts zu löschen",
                "en": "nothing to erase"},
    "confirm": {"fr": "Effacer définitivement ces données ?", "nl": "Deze gegevens definitief wissen?",
                "de": "Diese Daten endgültig löschen?", "en": "Erase these data for good?"},
    "cancelled": {"fr": "annulé", "nl": "geannuleerd", "de": "abgebrochen", "en": "cancelled"},
    "hold_placed": {"fr": "gel juridique posé", "nl": "juridische bewaring ingesteld",
                    "de": "rechtliche Aufbewahrung angeordnet", "en": "legal hold placed"},
    "hold_released": {"fr": "gel juridique levé", "nl": "juridische bewaring opgeheven",
                      "de": "rechtliche Aufbewahrung aufgehoben", "en": "legal hold released"},
    "no_hold": {"fr": "aucun gel juridique", "nl": "geen juridische bewaring", "de": "keine rechtliche Aufbewahrung",
                "en": "no legal hold"},
    "rectified": {"fr": "coordonnées rectifiées", "nl": "contactgegevens rechtgezet",
                  "de": "Kontaktdaten berichtigt", "en": "contact details rectified"},
}
# What each count of copies is, in the order printed (`anonymise.Copies.as_dict`).
COPY_WORDS: dict[str, dict[str, str]] = {
    "thread_messages": {"fr": "messages", "nl": "berichten", "de": "Nachrichten", "en": "messages"},
    "notes": {"fr": "notes", "nl": "notities", "de": "Notizen", "en": "notes"},
    "change_log_entries": {"fr": "historique", "nl": "historiek", "de": "Verlauf", "en": "history entries"},
    "parties": {"fr": "parties", "nl": "partijen", "de": "Beteiligte", "en": "parties"},
    "held_messages": {"fr": "en attente", "nl": "in wachtrij", "de": "zurückgehalten", "en": "held"},
    "outbox_rows": {"fr": "événements", "nl": "gebeurtenissen", "de": "Ereignisse", "en": "events"},
    "information_requests": {"fr": "demandes d'information", "nl": "informatievragen", "de": "Auskunftsersuchen",
                             "en": "information requests"},
    "position_requests": {"fr": "demandes de position", "nl": "standpuntvragen", "de": "Stellungnahmeersuchen",
                          "en": "position requests"},
    "raw_objects": {"fr": "originaux", "nl": "originelen", "de": "Originale", "en": "raw originals"},
    "attachment_objects": {"fr": "pièces jointes", "nl": "bijlagen", "de": "Anhänge", "en": "attachments"},
}

LangOption = typer.Option(Language(DEFAULT_LANGUAGE), "--lang", metavar="LANG",
                          help=f"language of the output, {one_of(Language)}")
ActorOption = typer.Option(None, "--by", metavar="EMAIL",
                           help="who decides (change log and audit trail); default: cli:<login>")
JsonOption = typer.Option(False, "--json", help="JSON with the stable identifiers, for scripts")


def word(key: str, lang: str, table: dict[str, dict[str, str]] = WORDS) -> str:
    return table[key][primary_language(lang)]


def _run(action: Callable[[Registry, AuditTrail, RegistrySettings], Awaitable[T]]) -> T:
    """`ombudsdesk register`'s way of opening the register (migrated, the outbox left to the running service, not
    found and refused reported in one line), with the audit trail and the settings."""

    async def with_audit(store: RegistryStore, registry: Registry) -> T:
        return await action(registry, AuditTrail(store.engine), load_settings(RegistrySettings))

    return run_on_register(with_audit)


def _echo_json(value: Any) -> None:
    typer.echo(json_for_terminal(json.dumps(value, ensure_ascii=False, indent=2)))


def retention_lines(report: retention.RetentionReport, lang: str) -> list[str]:
    lines = [f"{d.subject:<24} {word(d.action.value, lang):<28} {word('rule', lang)} {d.rule.value:<14} "
             f"{word('due', lang)} {d.due_on.isoformat()}" for d in report.decisions]
    lines.append(f"{len(report.decisions)} {word('total', lang)}")
    if report.dry_run:
        lines.append(word("dry_run", lang))
    else:
        lines.append(f"{word('done', lang)}: {len(report.done)}")
        lines += [f"{word('failed', lang)}: {subject}: {why}" for subject, why in report.failed.items()]
    return lines


@app.command("retention", cls=StaffCommand)
def retention_command(dry_run: bool = typer.Option(False, "--dry-run", help="list what is due and why, change "
                                                   "nothing"),
                      by: str | None = ActorOption, as_json: bool = JsonOption, lang: Language = LangOption) -> None:
    """Anonymise the files and delete the held messages the retention schedule makes due today (the daily job of
    the registry does the same); with --dry-run, only list them, each with its rule and the day it became due."""

    async def act(registry: Registry, audit: AuditTrail, settings: RegistrySettings) -> retention.RetentionReport:
        return await retention.run(registry, audit, settings.retention_schedule(), actor=by or cli_actor(),
                                   dry_run=dry_run, outbox_days=settings.retention_outbox_days)

    report = _run(act)
    if as_json:
        _echo_json(report.as_dict())
    else:
        typer.echo(for_terminal("\n".join(retention_lines(report, lang.value))))
    if report.failed:
        raise typer.Exit(1)


def erasure_lines(plan: erasure.ErasurePlan, lang: str) -> list[str]:
    lines: list[str] = []
    for entry in plan.files:
        state = (word("suspended", lang) if entry.on_hold else word("already", lang) if entry.anonymised
                 else label(entry.status, lang))
        lines.append(f"{entry.number:<24} {word(entry.role, lang):<18} {state}")
        counts = entry.copies.as_dict()
        lines.append("    " + word("copies", lang) + ": " + ", ".join(
            f"{word(key, lang, COPY_WORDS)} {counts[key]}" for key in COPY_WORDS))
    lines += [f"held:{held_id:<19} {word('held_message', lang)}" for held_id in plan.held_messages]
    return lines or [word("nothing", lang)]


app.command("export", cls=StaffCommand)(export_command)


@app.command("erase", cls=StaffCommand)
def erase_command(email: str = typer.Argument(..., metavar="EMAIL", help="the citizen's email address"),
                  dry_run: bool = typer.Option(False, "--dry-run", help="list every copy that would be erased, "
                                               "change nothing"),
                  yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
                  by: str | None = ActorOption, as_json: bool = JsonOption, lang: Language = LangOption) -> None:
    """Erase one citizen's personal data in the register (GDPR art. 17): their files anonymised, their messages on
    others' files and in the holding pen removed, every other service told to erase its copies. A file under a legal
    hold is kept and said so."""

    async def act(registry: Registry, audit: AuditTrail, _settings: RegistrySettings) -> erasure.ErasurePlan | None:
        plan = await erasure.plan_erasure(registry, email)
        if as_json and dry_run:
            _echo_json(plan.as_dict())
        elif not as_json:
            typer.echo(for_terminal("\n".join(erasure_lines(plan, lang.value))))
        if dry_run:
            if not as_json:
                typer.echo(word("dry_run", lang.value))
            return None
        if not plan.files and not plan.held_messages:
            return plan
        if not yes and not typer.confirm(word("confirm", lang.value), default=False):
            typer.echo(word("cancelled", lang.value))
            raise typer.Exit(1)
        return await erasure.carry_out(registry, audit, plan, actor=by or cli_actor())

    plan = _run(act)
    if plan is None:
        return
    if as_json:
        _echo_json(plan.as_dict())
    else:
        typer.echo(for_terminal(f"{word('done', lang.value)}: {', '.join(plan.done) or '-'}"))
        for number, why in plan.kept.items():
            typer.echo(for_terminal(f"{word('kept', lang.value)}: {number}: {why}"))
    # The streams: every event of the files that were the person's own; of the others (where they only wrote), the
    # events that carry their address — never a whole file that is someone else's.
    own = [entry for entry in plan.files if entry.number in plan.done and entry.role == "complainant"]
    if plan.done:
        keys = [key for entry in own for key in entry.copies.message_keys]
        for step in AFTER_ERASURE:
            step([entry.number for entry in own], keys, email)


NumberArgument = typer.Argument(..., metavar="NUMBER", help="complaint number, e.g. MED-2026-00042")

# What follows the register's part of an erasure, outside the register: the streams' copies are erased by the
# `ombudsdesk` command with the admin NATS user (`ombudsdesk.privacy_streams`, registered by `ombudsdesk.cli`: the
# registry may not delete events, and does not import the top-level package). Each takes the erased numbers, their
# message keys and the citizen's address.
AFTER_ERASURE: list[Callable[[list[str], list[str], str], None]] = []


@app.command("hold", cls=StaffCommand)
def hold_command(number: str = NumberArgument,
                 reason: str = typer.Option(..., metavar="TEXT", help="why (litigation, inspection...)"),
                 by: str | None = ActorOption, lang: Language = LangOption) -> None:
    """Place a legal hold on a file: neither retention nor an erasure request touches it until it is released."""

    async def act(registry: Registry, audit: AuditTrail, _settings: RegistrySettings) -> None:
        actor = by or cli_actor()
        await registry.handle(PlaceLegalHold(number, actor, reason))
        await audit.append("change.legal_hold_placed", actor=actor, number=number, reason=reason)

    _run(act)
    typer.echo(for_terminal(f"{number.strip().upper()}: {word('hold_placed', lang.value)}"))


@app.command("release", cls=StaffCommand)
def release_command(number: str = NumberArgument,
                    reason: str | None = typer.Option(None, metavar="TEXT", help="why"),
                    by: str | None = ActorOption, lang: Language = LangOption) -> None:
    """Release the legal hold of a file (its retention resumes at the next run)."""

    async def act(registry: Registry, audit: AuditTrail, _settings: RegistrySettings) -> bool:
        actor = by or cli_actor()
        released = await registry.handle(ReleaseLegalHold(number, actor, reason))
        if released:
            await audit.append("change.legal_hold_released", actor=actor, number=number, reason=reason)
        return released

    released = _run(act)
    typer.echo(for_terminal(f"{number.strip().upper()}: {word('hold_released' if released else 'no_hold', lang.value)}"))


@app.command("rectify", cls=StaffCommand)
def rectify_command(number: str = NumberArgument,
                    name: str | None = typer.Option(None, metavar="TEXT", help="the complainant's name"),
                    email: str | None = typer.Option(None, metavar="EMAIL", help="their email address (\"\" clears "
                                                     "it)"),
                    postal_address: str | None = typer.Option(None, metavar="TEXT", help="their postal address"),
                    language: str | None = typer.Option(None, metavar="LANG", help=f"their language, "
                                                        f"{one_of(Language)}"),
                    reason: str | None = typer.Option(None, metavar="TEXT", help="why (change log, audit trail)"),
                    by: str | None = ActorOption, lang: Language = LangOption) -> None:
    """Correct the complainant's contact details (GDPR art. 16). The change log and the audit trail record which
    fields changed, by whom and why — not the values."""

    async def act(registry: Registry, audit: AuditTrail, _settings: RegistrySettings) -> None:
        actor = by or cli_actor()
        before = await registry.store.complaint(number.strip().upper())
        complaint = await registry.handle(RectifyContact(number, actor, reason, name=name, email=email,
                                                         postal_address=postal_address, language=language))
        changed = sorted(column for column in ("complainant_name", "complainant_email", "complainant_postal_address",
                                               "complainant_language")
                         if before is not None and getattr(before, column) != getattr(complaint, column))
        await audit.append("change.rectified", actor=actor, number=complaint.number, reason=reason,
                           details={"fields": changed})

    _run(act)
    typer.echo(for_terminal(f"{number.strip().upper()}: {word('rectified', lang.value)}"))
