"""Views of the register's records (pure): JSON for the HTTP API and the CLI's `--json`, and the translated text
the CLI prints for staff (`TextContext` + `*_lines`).

JSON keeps the stable English identifiers (machines read it); text shows every enumerated value through
`vocabulary.label` and the screening configuration's theme, service and ombudsman names, in the reader's language,
French first. French typography puts a non-breaking space before ":" (`colon`).

Both show what is known of who wrote each incoming message (`models.SenderTrust`, issue 10): the sender verdict and
its evidence, identity notes, the SMTP session's provenance, the forwarding staff member; and what intake made of it
(issue 11): the named rules that hit ("Classé automatique par la règle vacation-subject": the outcome translated, the
rule's name a technical id shown as is), and the sender's new text first, the quoted history after it. Text for a
terminal carries no control character a sender wrote (`shared.untrusted_text.for_terminal`, applied to every table
cell here and to every line the CLI prints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
import json
from typing import Any

from services.registry.commands import FACTS
from services.registry.models import ChangeLogEntry, Complaint, HeldMessage, SenderTrust, ThreadMessage
from services.registry.repository import FileExtras
from services.registry.screening import ScreeningConfig
from services.registry.vocabulary import DEFAULT_LANGUAGE, LANGUAGES, label, primary_language
from shared.untrusted_text import for_terminal


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value else None


def complaint_summary(c: Complaint) -> dict[str, Any]:
    return {
        "number": c.number,
        "status": c.status,
        "kind": c.kind,
        "channel": c.channel,
        "legal_start": _iso(c.legal_start),
        "complainant": c.complainant_name,
        "email": c.complainant_email,
        "subject": c.subject_line,
        "service": c.service_concerned,
        "theme": c.theme,
        "handler": c.handler,
        "acknowledgment_due": _iso(c.acknowledgment_due),
        "answer_due": _iso(c.answer_due),
        "data_protection": bool(c.data_protection),
    }


def identity_note(note: str, language: str) -> str:
    """An identity note ("code" or "code: detail") with its code in the reader's language, the detail as written."""
    code, colon, detail = note.partition(":")
    shown = label(code.strip(), language, "identity_note")
    return f"{shown}{colon}{detail}" if colon else shown


def sender_trust(record: SenderTrust) -> dict[str, Any]:
    """What is known of who wrote a message (a complaint: its first one); None values when it was not recorded."""
    forwarded = record.forwarded_by_email or record.forwarded_by_name
    return {
        "sender_verdict": record.sender_verdict,
        "sender_evidence": record.sender_evidence,
        "identity_notes": list(record.identity_notes or ()),
        "provenance": {"peer_ip": record.peer_ip, "peer_helo": record.peer_helo,
                       "authenticated_as": record.authenticated_as},
        "forwarded_by": {"name": record.forwarded_by_name or "", "email": record.forwarded_by_email,
                         "verified": bool(record.forward_verified)} if forwarded else None,
    }


def thread_message(m: ThreadMessage) -> dict[str, Any]:
    trust = sender_trust(m) if m.direction == "in" else {}
    return {
        "direction": m.direction,
        "occurred_at": _iso(m.occurred_at),
        "message_id": m.message_id,
        "sender": {"name": m.sender_name, "email": m.sender_email} if m.direction == "in" else None,
        "recipient": m.recipient,
        "subject": m.subject_line,
        "new_text": m.new_text,  # what the sender wrote this time (None: not separated from the quoted history)
        "text": m.body,  # the whole text, quoted history included
        "rules": list(m.rules or ()),
        "notice_kind": m.notice_kind,
        "attachments": m.attachments,
        "raw_object": m.raw_object,
        "automated": m.automated,
        "read_receipt_of": f"<{m.disposition_of}>" if m.disposition_of else None,
        **trust,
    }


def change(entry: ChangeLogEntry) -> dict[str, Any]:
    return {"at": _iso(entry.at), "actor": entry.actor, "change": entry.change, "reason": entry.reason,
            "details": entry.details, "change_id": entry.change_id}


def _extras(extras: FileExtras | None) -> dict[str, Any]:
    """Staff's notes, the linked files and the files merged into this one (issue 13)."""
    if extras is None:
        return {"notes": [], "links": [], "merged_from": []}
    return {
        "notes": [{"id": n.id, "author": n.author, "text": n.text, "at": _iso(n.created_at)} for n in extras.notes],
        "links": [{"number": link.number, "linked_by": link.linked_by, "linked_at": _iso(link.linked_at)}
                  for link in extras.links],
        "merged_from": list(extras.merged_from),
    }


def complaint_file(c: Complaint, thread: list[ThreadMessage], changes: list[ChangeLogEntry],
                   parties: list[str], extras: FileExtras | None = None) -> dict[str, Any]:
    """The whole file as JSON; `extras` is `RegistryStore.complaint_file(...).extras` (notes, links, merges)."""
    return {
        **complaint_summary(c),
        "received_at": _iso(c.received_at),
        "complainant": {"name": c.complainant_name, "email": c.complainant_email,
                        "postal_address": c.complainant_postal_address, "language": c.complainant_language},
        "text": c.body,
        "attachments": c.attachments,
        "raw_object": c.raw_object,
        "admissibility": {"decision": c.admissibility, "reasons": c.admissibility_reasons},
        "screening_proposal": c.screening_proposal,
        "facts": {"facts_date": _iso(c.facts_date), "last_step_date": _iso(c.last_step_date),
                  "first_line_contacted": c.first_line_contacted},
        "deadlines": {
            "acknowledgment_due": _iso(c.acknowledgment_due),
            "acknowledged_at": _iso(c.acknowledged_at),
            "answer_due": _iso(c.answer_due),
            "answer_extended": c.answer_extended,
            "paused_days": c.paused_days,
            "paused_since": _iso(c.paused_since),
            "answered_at": _iso(c.answered_at),
        },
        "ended_at": _iso(c.closed_at),
        "outcome": {"outcome": c.outcome, "category": c.outcome_category},
        "recommendations": c.recommendations,
        "linked_number": c.linked_number,
        "redirected_to": c.redirected_to,
        "merged_into": c.merged_into,
        **_extras(extras),
        **sender_trust(c),
        "acknowledgment_suppressed": c.acknowledgment_suppressed,
        "parties": parties,
        "thread": [thread_message(m) for m in thread],
        "changes": [change(e) for e in changes],
    }


def _held_event(h: HeldMessage) -> dict[str, Any]:
    """The held `MessageReceived` as JSON (its evidence: verdict, reason to confirm, forwarder); {} if unreadable."""
    try:
        event = json.loads(h.event)
    except (TypeError, ValueError):
        return {}
    return event if isinstance(event, dict) else {}


def held_message(h: HeldMessage) -> dict[str, Any]:
    event = _held_event(h)
    forwarded_by = event.get("forwarded_by") if isinstance(event.get("forwarded_by"), dict) else None
    return {
        "id": h.id,
        "reason": h.reason,
        "needs_confirmation": event.get("needs_confirmation"),
        "sender_verdict": event.get("sender_verdict"),
        "sender_evidence": event.get("sender_evidence") or None,
        "identity_notes": event.get("identity_notes") or [],
        "forwarded_by": {"name": forwarded_by.get("name") or "", "email": forwarded_by.get("email"),
                         "verified": bool(event.get("forward_verified"))} if forwarded_by else None,
        "read_receipt_of": event.get("disposition_of"),
        "rules": event.get("rules") or [],
        "new_text": event.get("new_text"),
        "sender": h.sender_email,
        "subject": h.subject_line,
        "received_at": _iso(h.received_at),
        "suggestions": h.suggestions,
        "status": h.status,
        "resolved_by": h.resolved_by,
        "resolved_number": h.resolved_number,
    }



# --- text for staff -------------------------------------------------------------------------------------------------
NBSP = "\u00a0"
NONE = "\u2014"  # an em dash: neither "aucun" nor "aucune", whatever the gender of the field

TEXTS: Mapping[str, Mapping[str, str]] = {
    "fr": {
        "number": "Numéro", "status": "Statut", "kind": "Nature", "channel": "Canal", "received": "Reçue le",
        "legal_start": "Date de départ légale", "complainant": "Plaignant·e", "postal_address": "Adresse postale",
        "language": "Langue", "subject": "Objet", "service": "Service concerné", "theme": "Thème",
        "handler": "Gestionnaire", "admissibility": "Recevabilité", "proposal": "Proposition du tri",
        "redirect_to": "réorienter vers", "dpo": "à transmettre au DPD", "ack_due": "Accusé de réception dû le",
        "acknowledged": "Accusé de réception envoyé le", "answer_due": "Réponse due le", "extended": "prolongé",
        "paused": "Délai suspendu depuis le", "paused_days": "Jours de suspension", "answered": "Réponse envoyée le",
        "ended": "Terminée le", "outcome": "Issue", "redirected_to": "Réorientée vers", "linked": "Liée à",
        "parties": "Correspondants admis", "recommendations": "Recommandations", "attachments": "Pièces jointes",
        "thread": "Fil des messages", "changes": "Historique", "system": "registre (automatique)",
        "empty": "Aucune plainte.", "not_found": "Aucune plainte ne porte ce numéro",
        "held_empty": "Aucun message en attente.", "held_id": "N°", "held_received": "Reçu le",
        "reason": "Motif", "sender": "Expéditeur", "suggestions": "Dossiers suggérés",
        "list_start": "Départ légal", "from_to": "{old} → {new}",
        "sender_check": "Authentification de l'expéditeur", "identity_notes": "Anomalies d'identité",
        "provenance": "Provenance", "logged_in_as": "connecté en tant que", "forwarded_by": "Transmis par",
        "forward_verified": "agent vérifié", "forward_unverified": "transfert non vérifié",
        "ack_suppressed": "Accusé de réception non envoyé", "read_receipt_of": "Accusé de lecture de",
        "facts_date": "Date des faits", "last_step_date": "Dernière démarche le",
        "first_line_contacted": "Service concerné contacté d'abord", "yes": "oui", "no": "non",
        "by_rule": "par la règle", "quoted": "Historique cité",
        "data_protection": "Protection des données", "merged_into": "Fusionnée dans",
        "merged_from": "Dossiers fusionnés dans celui-ci", "links": "Dossiers liés", "notes": "Notes internes",
    },
    "nl": {
        "number": "Nummer", "status": "Status", "kind": "Aard", "channel": "Kanaal", "received": "Ontvangen op",
        "legal_start": "Wettelijke begindatum", "complainant": "Klager", "postal_address": "Postadres",
        "language": "Taal", "subject": "Onderwerp", "service": "Betrokken dienst", "theme": "Thema",
        "handler": "Behandelaar", "admissibility": "Ontvankelijkheid", "proposal": "Voorstel van de screening",
        "redirect_to": "doorverwijzen naar", "dpo": "naar de DPO", "ack_due": "Ontvangstbevestiging uiterlijk op",
        "acknowledged": "Ontvangstbevestiging verstuurd op", "answer_due": "Antwoord uiterlijk op",
        "extended": "verlengd", "paused": "Termijn opgeschort sinds", "paused_days": "Dagen opgeschort",
        "answered": "Beantwoord op", "ended": "Beëindigd op", "outcome": "Uitkomst",
        "redirected_to": "Doorverwezen naar", "linked": "Gekoppeld aan", "parties": "Toegelaten correspondenten",
        "recommendations": "Aanbevelingen", "attachments": "Bijlagen", "thread": "Berichten",
        "changes": "Geschiedenis", "system": "register (automatisch)", "empty": "Geen klachten.",
        "not_found": "Geen klacht met dat nummer", "held_empty": "Geen berichten in de wachtrij.",
        "held_id": "Nr.", "held_received": "Ontvangen op", "reason": "Reden", "sender": "Afzender",
        "suggestions": "Voorgestelde dossiers", "list_start": "Begindatum", "from_to": "{old} → {new}",
        "sender_check": "Verificatie van de afzender", "identity_notes": "Afwijkingen in de identiteit",
        "provenance": "Herkomst", "logged_in_as": "aangemeld als", "forwarded_by": "Doorgestuurd door",
        "forward_verified": "medewerker geverifieerd", "forward_unverified": "doorsturing niet geverifieerd",
        "ack_suppressed": "Geen ontvangstbevestiging verstuurd", "read_receipt_of": "Leesbevestiging van",
        "facts_date": "Datum van de feiten", "last_step_date": "Laatste stap op",
        "first_line_contacted": "Betrokken dienst eerst gecontacteerd", "yes": "ja", "no": "nee",
        "by_rule": "door regel", "quoted": "Geciteerde berichten",
        "data_protection": "Gegevensbescherming", "merged_into": "Samengevoegd met",
        "merged_from": "Hierin samengevoegde dossiers", "links": "Gekoppelde dossiers", "notes": "Interne notities",
    },
    "de": {
        "number": "Nummer", "status": "Status", "kind": "Art", "channel": "Kanal", "received": "Eingegangen am",
        "legal_start": "Gesetzlicher Fristbeginn", "complainant": "Beschwerdeführer·in",
        "postal_address": "Postanschrift", "language": "Sprache", "subject": "Betreff",
        "service": "Betroffene Dienststelle", "theme": "Thema", "handler": "Bearbeiter·in",
        "admissibility": "Zulässigkeit", "proposal": "Vorschlag der Vorprüfung", "redirect_to": "weiterleiten an",
        "dpo": "an den DSB", "ack_due": "Eingangsbestätigung fällig am",
        "acknowledged": "Eingangsbestätigung versandt am", "answer_due": "Antwort fällig am",
        "extended": "verlängert", "paused": "Frist gehemmt seit", "paused_days": "Tage gehemmt",
        "answered": "Beantwortet am", "ended": "Beendet am", "outcome": "Ergebnis",
        "redirected_to": "Weitergeleitet an", "linked": "Verknüpft mit", "parties": "Zugelassene Korrespondenten",
        "recommendations": "Empfehlungen", "attachments": "Anlagen", "thread": "Nachrichten",
        "changes": "Verlauf", "system": "Register (automatisch)", "empty": "Keine Beschwerden.",
        "not_found": "Keine Beschwerde mit dieser Nummer", "held_empty": "Keine Nachrichten in der Warteschlange.",
        "held_id": "Nr.", "held_received": "Eingegangen am", "reason": "Grund", "sender": "Absender",
        "suggestions": "Vorgeschlagene Akten", "list_start": "Fristbeginn", "from_to": "{old} → {new}",
        "sender_check": "Prüfung des Absenders", "identity_notes": "Auffälligkeiten der Identität",
        "provenance": "Herkunft", "logged_in_as": "angemeldet als", "forwarded_by": "Weitergeleitet von",
        "forward_verified": "Mitarbeiter verifiziert", "forward_unverified": "Weiterleitung nicht verifiziert",
        "ack_suppressed": "Keine Eingangsbestätigung versandt", "read_receipt_of": "Lesebestätigung für",
        "facts_date": "Datum des Sachverhalts", "last_step_date": "Letzter Schritt am",
        "first_line_contacted": "Betroffene Dienststelle zuerst kontaktiert", "yes": "ja", "no": "nein",
        "by_rule": "durch Regel", "quoted": "Zitierter Verlauf",
        "data_protection": "Datenschutz", "merged_into": "Zusammengeführt in",
        "merged_from": "Hierin zusammengeführte Akten", "links": "Verknüpfte Akten", "notes": "Interne Notizen",
    },
    "en": {
        "number": "Number", "status": "Status", "kind": "Kind", "channel": "Channel", "received": "Received",
        "legal_start": "Legal start date", "complainant": "Complainant", "postal_address": "Postal address",
        "language": "Language", "subject": "Subject", "service": "Service concerned", "theme": "Theme",
        "handler": "Handler", "admissibility": "Admissibility", "proposal": "Screening proposal",
        "redirect_to": "redirect to", "dpo": "route to the DPO", "ack_due": "Acknowledgment due",
        "acknowledged": "Acknowledged", "answer_due": "Answer due", "extended": "extended",
        "paused": "Clock paused since", "paused_days": "Days paused", "answered": "Answered", "ended": "Ended",
        "outcome": "Outcome", "redirected_to": "Redirected to", "linked": "Linked to",
        "parties": "Admitted correspondents", "recommendations": "Recommendations", "attachments": "Attachments",
        "thread": "Thread", "changes": "History", "system": "registry (automatic)", "empty": "No complaints.",
        "not_found": "No complaint with that number", "held_empty": "No held messages.", "held_id": "No.",
        "held_received": "Received", "reason": "Reason", "sender": "Sender", "suggestions": "Suggested cases",
        "list_start": "Legal start", "from_to": "{old} → {new}",
        "sender_check": "Sender check", "identity_notes": "Identity notes", "provenance": "Provenance",
        "logged_in_as": "logged in as", "forwarded_by": "Forwarded by", "forward_verified": "staff verified",
        "forward_unverified": "forward not verified", "ack_suppressed": "Acknowledgment not sent",
        "read_receipt_of": "Read receipt of",
        "facts_date": "Date of the facts", "last_step_date": "Last step taken",
        "first_line_contacted": "Service concerned contacted first", "yes": "yes", "no": "no",
        "by_rule": "by rule", "quoted": "Quoted history",
        "data_protection": "Data protection", "merged_into": "Merged into",
        "merged_from": "Files merged into this one", "links": "Linked files", "notes": "Internal notes",
    },
}
_DATE_FORMATS = {"fr": "%d/%m/%Y", "nl": "%d-%m-%Y", "de": "%d.%m.%Y", "en": "%Y-%m-%d"}


@dataclass(frozen=True)
class TextContext:
    """Who reads (language), in which time zone (the organisation's), and the configured names of themes, services
    and ombudsmen (their ids are shown when there is no configuration)."""

    language: str = DEFAULT_LANGUAGE
    zone: tzinfo = timezone.utc
    screening: ScreeningConfig | None = None
    system_actor: str = "registry"

    @property
    def lang(self) -> str:
        primary = primary_language(self.language)
        return primary if primary in LANGUAGES else DEFAULT_LANGUAGE

    def text(self, key: str) -> str:
        return TEXTS[self.lang][key]

    def colon(self, words: str) -> str:
        """`words:` -- with the non-breaking space French typography puts before a colon."""
        return f"{words}{NBSP}:" if self.lang == "fr" else f"{words}:"

    @property
    def semicolon(self) -> str:
        """The separator of a list of reasons (French: a non-breaking space before ";" as well)."""
        return f"{NBSP}; " if self.lang == "fr" else "; "

    def term(self, value: str | None, vocabulary: str | None = None) -> str:
        return label(value, self.lang, vocabulary) if value else NONE

    def theme(self, theme_id: str | None) -> str:
        if not theme_id:
            return NONE
        return self.screening.theme_label(theme_id, self.lang) if self.screening else theme_id

    def service(self, service_id: str | None) -> str:
        if not service_id:
            return NONE
        return self.screening.service_label(service_id, self.lang) if self.screening else service_id

    def ombudsman(self, ombudsman_id: str | None) -> str:
        if not ombudsman_id:
            return NONE
        try:
            return self.screening.ombudsman(ombudsman_id).name(self.lang) if self.screening else ombudsman_id
        except KeyError:
            return ombudsman_id

    def date(self, value: date | None) -> str:
        return value.strftime(_DATE_FORMATS[self.lang]) if value else NONE

    def moment(self, value: datetime | None) -> str:
        """A timestamp in the organisation's zone, to the minute (what staff compare with their own clock)."""
        if value is None:
            return NONE
        local = value.astimezone(self.zone)
        return f"{self.date(local.date())} {local:%H:%M}"

    def actor(self, actor: str) -> str:
        return self.text("system") if actor == self.system_actor else label(actor, self.lang, "actor")

    def from_to(self, old: str, new: str) -> str:
        return self.text("from_to").format(old=old, new=new)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded. Cells may hold what a sender wrote:
    control characters are removed before the widths are measured."""
    body = [[for_terminal(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in [list(header), *body]) for i in range(len(header) - 1)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(line, widths)), line[-1]]).rstrip()
            for line in [list(header), *body]]


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def complaint_table_lines(rows: Sequence[Complaint], ctx: TextContext) -> list[str]:
    """`register list`: a header row, then one aligned row per complaint."""
    if not rows:
        return [ctx.text("empty")]
    header = [ctx.text(k) for k in ("number", "list_start", "status", "answer_due", "complainant", "subject")]
    return _table(header, (
        [c.number, ctx.date(c.legal_start), ctx.term(c.status), ctx.date(c.answer_due),
         _clip(c.complainant_name or c.complainant_email or NONE, 30), _clip(c.subject_line, 60)]
        for c in rows))


def held_table_lines(rows: Sequence[HeldMessage], ctx: TextContext) -> list[str]:
    """`register held`: the holding pen, with the reason and the suggested cases."""
    if not rows:
        return [ctx.text("held_empty")]
    header = [ctx.text(k) for k in ("held_id", "held_received", "reason", "sender", "subject", "suggestions")]
    return _table(header, (
        [f"#{h.id}", ctx.moment(h.received_at), _held_reason(h, ctx), h.sender_email or NONE,
         _clip(h.subject_line, 50), ", ".join(s["number"] for s in h.suggestions) or NONE]
        for h in rows))


def _held_reason(h: HeldMessage, ctx: TextContext) -> str:
    """The reason, translated, with the evidence a trust hold rests on (`dmarc=fail ...`), or else the rules of
    intake that classified the message ("Classé automatique par la règle vacation-subject")."""
    reason = ctx.term(h.reason, "hold_reason")
    event = _held_event(h)
    evidence = event.get("sender_evidence") if h.reason == "sender_failed_authentication" else None
    evidence = evidence or ctx.semicolon.join(rule_hit(hit, ctx, why=False) for hit in rule_hits(event.get("rules")))
    return f"{reason} ({_clip(str(evidence), 60)})" if evidence else reason


def rule_hits(rules: Any) -> list[Mapping[str, Any]]:
    """The rule record as stored (a list of {rule, outcome, why}); anything else is no record."""
    return [hit for hit in rules if isinstance(hit, Mapping)] if isinstance(rules, list) else []


def rule_hit(hit: Mapping[str, Any], ctx: TextContext, *, why: bool = True) -> str:
    """"Classé automatique par la règle vacation-subject (Subject: Absence)": the outcome in the reader's language,
    the rule's name and its technical detail as intake wrote them."""
    outcome = label(str(hit.get("outcome") or ""), ctx.lang, "rule_outcome")
    line = f"{outcome[:1].upper()}{outcome[1:]} {ctx.text('by_rule')} {hit.get('rule') or '?'}"
    return f"{line} ({hit['why']})" if why and hit.get("why") else line


def admissibility_text(c: Complaint, ctx: TextContext) -> str:
    decision = ctx.term(c.admissibility, "admissibility")
    reasons = ctx.semicolon.join(ctx.term(str(r)) for r in c.admissibility_reasons)
    return f"{decision} {NONE} {reasons}" if reasons else decision


def proposal_text(proposal: Mapping[str, Any] | None, ctx: TextContext) -> str | None:
    """What screening proposed, while staff have not decided yet."""
    if not proposal:
        return None
    reasons = [ctx.term(r["code"]) for r in proposal.get("reasons", ())]
    parts = [ctx.term("admissible" if proposal.get("admissible") else "inadmissible", "admissibility")]
    if reasons:
        parts[0] += f" {NONE} " + ctx.semicolon.join(reasons)
    if proposal.get("redirect"):
        parts.append(f"{ctx.text('redirect_to')} " + ", ".join(ctx.ombudsman(r["id"]) for r in proposal["redirect"]))
    if proposal.get("route_to_dpo"):
        parts.append(ctx.text("dpo"))
    return ctx.semicolon.join(parts)


def _attachments(attachments: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(str(a.get("filename") or a.get("object_name") or "?") for a in attachments)


def change_summary(entry: ChangeLogEntry, ctx: TextContext) -> str:
    """One line per change: what changed, in words, with the values translated."""
    details = entry.details or {}
    what = ctx.term(entry.change, "change")
    summary = ""
    if entry.change == "status":
        summary = ctx.from_to(ctx.term(details.get("from")), ctx.term(details.get("to")))
        if details.get("outcome"):
            assessed = (details.get("outcome"), details.get("category"))
            summary += ctx.semicolon + " / ".join(ctx.term(v) for v in assessed if v)
        if details.get("reasons"):
            summary += f" {NONE} " + ctx.semicolon.join(ctx.term(r) for r in details["reasons"])
        if details.get("redirect_to"):
            summary += f" {NONE} {ctx.ombudsman(details['redirect_to'])}"
    elif entry.change == "assignment":
        summary = ctx.from_to(details.get("from") or NONE, details.get("to") or NONE)
    elif entry.change == "classification":
        show = {"kind": ctx.term, "theme": ctx.theme, "service_concerned": ctx.service,
                "data_protection": lambda value: _fact_text(value, ctx)}
        names = {"kind": "kind", "theme": "theme", "service_concerned": "service",
                 "data_protection": "data_protection"}
        summary = ", ".join(
            f"{ctx.text(names[field])} {ctx.from_to(show[field](change['from']), show[field](change['to']))}"
            for field, change in details.items() if field in show)
    elif entry.change == "screening":
        summary = ctx.term("admissible" if details.get("admissible") else "inadmissible", "admissibility")
    elif entry.change == "extension":
        summary = ctx.from_to(_date_text(details.get("from"), ctx), _date_text(details.get("to"), ctx))
    elif entry.change == "recommendation":
        summary = str(details.get("text", ""))
    elif entry.change in {"follow_up_appended", "follow_up_attached"}:
        summary = f" {NONE} ".join(str(v) for v in (details.get("sender"), details.get("subject")) if v)
    elif entry.change == "notification_failed":
        summary = f" {NONE} ".join(v for v in (ctx.term(details.get("notice_kind"), "notice"),
                                               details.get("recipient")) if v)
    elif entry.change == "facts":
        summary = ctx.semicolon.join(
            f"{ctx.text(name)} {ctx.from_to(_fact_text(change['from'], ctx), _fact_text(change['to'], ctx))}"
            for name, change in details.items() if name in FACTS and isinstance(change, Mapping))
        if "proposal_admissible" in details:
            proposed = ctx.term("admissible" if details["proposal_admissible"] else "inadmissible", "admissibility")
            summary += f"{ctx.semicolon}{ctx.colon(ctx.text('proposal'))} {proposed}"
    elif entry.change == "correspondent_added":
        summary = str(details.get("email", ""))
    elif entry.change == "read_receipt" and details.get("disposition_of"):
        # "Accusé de réception <id> — affiché": which notice, and what the receipt says became of it (RFC 8098).
        notice, disposition = details.get("notice_kind"), details.get("disposition")
        which = f"<{details['disposition_of']}>"
        which = f"{ctx.term(notice, 'notice')} {which}" if notice else which
        summary = f"{which} {NONE} {ctx.term(disposition, 'disposition')}" if disposition else which
    elif entry.change == "registered":
        # A mailed complaint says nothing more; one entered by hand names its channel (phone, counter, letter).
        parts = [ctx.term(details["channel"], "channel")] if details.get("channel") not in (None, "email") else []
        if details.get("linked_number"):
            parts.append(f"{ctx.text('linked')} {details['linked_number']}")
        summary = ctx.semicolon.join(parts)
    elif entry.change in {"merged_into", "merged_from"}:
        summary = str(details.get("target") or details.get("source") or "")
    elif entry.change == "merge_undone":
        summary = ctx.from_to(str(details.get("target", "")), str(details.get("source", "")))
    elif entry.change in {"link_added", "link_removed"}:
        summary = str(details.get("other", ""))
    elif entry.change == "staff_message":
        first_line = next((line for line in str(details.get("text", "")).splitlines() if line.strip()), "")
        language = details.get("language")
        summary = f"{ctx.term(language, 'language')} {NONE} " if language else ""
        summary += _clip(first_line.strip(), 80)
    line = f"{ctx.colon(what)} {summary}" if summary else what
    # The registry's own reasons are known phrases, translated; a person's reason is shown as they wrote it.
    return f"{line} ({ctx.term(entry.reason, 'system_reason')})" if entry.reason else line


def _fact_text(value: Any, ctx: TextContext) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return ctx.text("yes" if value else "no")
    return _date_text(value, ctx)


def facts_rows(c: Complaint, ctx: TextContext) -> list[tuple[str, str]]:
    """The facts on file, as (translated name, value): only those known."""
    return [(ctx.text(name), _fact_text(getattr(c, name), ctx)) for name in FACTS if getattr(c, name) is not None]


def _date_text(value: Any, ctx: TextContext) -> str:
    try:
        return ctx.date(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def verdict_text(record: SenderTrust, ctx: TextContext) -> str | None:
    """"expéditeur non vérifié — <evidence>", or None when no verdict was recorded (older rows, outgoing mail)."""
    if not record.sender_verdict:
        return None
    verdict = ctx.term(record.sender_verdict, "sender_verdict")
    return f"{verdict} {NONE} {record.sender_evidence}" if record.sender_evidence else verdict


def _provenance(record: SenderTrust, ctx: TextContext) -> str | None:
    parts = [f"IP {record.peer_ip}" if record.peer_ip else "", f"HELO {record.peer_helo}" if record.peer_helo else "",
             f"{ctx.text('logged_in_as')} {record.authenticated_as}" if record.authenticated_as else ""]
    return ", ".join(p for p in parts if p) or None


def _forwarded_by(record: SenderTrust, ctx: TextContext) -> str | None:
    if not (record.forwarded_by_email or record.forwarded_by_name):
        return None
    who = " ".join(p for p in (record.forwarded_by_name,
                               f"<{record.forwarded_by_email}>" if record.forwarded_by_email else "") if p)
    return f"{who} ({ctx.text('forward_verified' if record.forward_verified else 'forward_unverified')})"


def trust_rows(record: SenderTrust, ctx: TextContext) -> list[tuple[str, str | None]]:
    """The rows of `register show` (and of an incoming thread entry) on who wrote the message."""
    return [
        ("sender_check", verdict_text(record, ctx)),
        ("identity_notes", ctx.semicolon.join(identity_note(str(n), ctx.lang) for n in record.identity_notes or ())
         or None),
        ("provenance", _provenance(record, ctx)),
        ("forwarded_by", _forwarded_by(record, ctx)),
    ]


def _thread_lines(m: ThreadMessage, ctx: TextContext) -> list[str]:
    """A message in or out: when, which way, with whom, its subject (for a notice: its kind and the subject sent);
    for an incoming one, whether its sender was verified (and on which evidence), where it came from, who forwarded
    it; for a read receipt, the notice it reports on."""
    who = (m.sender_email or m.sender_name) if m.direction == "in" else m.recipient
    if m.notice_kind:
        notice = ctx.term(m.notice_kind, "notice")
        subject = f"{notice} {NONE} {m.subject_line}" if m.subject_line else notice
    else:
        subject = m.subject_line or NONE
    # A notice the notifier gave up on is filed as "out" under a "failed:" key (`handlers/notifications.py`).
    direction = "failed" if m.direction == "out" and m.message_key.startswith("failed:") else m.direction
    if m.disposition_of:
        direction = "receipt"
    verdict = f"  [{ctx.term(m.sender_verdict, 'sender_verdict')}]" if m.direction == "in" and m.sender_verdict else ""
    lines = [f"  {ctx.moment(m.occurred_at)}  {ctx.term(direction, 'direction').ljust(12)} {who or NONE}{verdict}",
             f"      {ctx.colon(ctx.text('subject'))} {subject}"]
    if m.disposition_of:
        lines.append(f"      {ctx.colon(ctx.text('read_receipt_of'))} <{m.disposition_of}>")
    if m.direction == "in":
        # The verdict is in the first line already; its own row only when it has evidence to show.
        lines += [f"      {ctx.colon(ctx.text(key))} {value}" for key, value in trust_rows(m, ctx)
                  if value is not None and (key != "sender_check" or m.sender_evidence)]
    if m.message_id:
        lines.append(f"      {ctx.colon('Message-ID')} <{m.message_id}>")
    if m.attachments:
        lines.append(f"      {ctx.colon(ctx.text('attachments'))} {_attachments(m.attachments)}")
    lines += [f"      {rule_hit(hit, ctx)}" for hit in rule_hits(m.rules)]
    new_text, quoted = split_text(m.body, m.new_text)
    lines.extend(f"      | {line}" for line in new_text.splitlines()[:20])
    if quoted:
        lines.append(f"      {ctx.colon(ctx.text('quoted'))}")
        lines.extend(f"      ¦ {line}" for line in quoted.splitlines()[:20])
    return lines


def split_text(text: str, new_text: str | None) -> tuple[str, str]:
    """(what the sender wrote this time, the quoted history and signature after it) of a message's whole `text`;
    the whole text and nothing quoted when intake did not separate them."""
    new = (new_text or "").strip()
    if new_text is None or not new:
        return text, ""
    start = text.find(new)
    rest = text if start < 0 else text[:start] + text[start + len(new):]
    return new, rest.strip()


def deadline_rows(c: Complaint, ctx: TextContext) -> list[tuple[str, str | None]]:
    """The deadlines of a file as `register show` and the back office show them (None: not applicable)."""
    answer_due = ctx.date(c.answer_due) + (f" ({ctx.text('extended')})" if c.answer_extended else "")
    return [
        ("ack_due", ctx.date(c.acknowledgment_due)),
        ("acknowledged", ctx.moment(c.acknowledged_at)),
        ("answer_due", answer_due),
        ("paused", ctx.date(c.paused_since) if c.paused_since else None),
        ("paused_days", str(c.paused_days) if c.paused_days else None),
        ("answered", ctx.moment(c.answered_at) if c.answered_at else None),
        ("ended", ctx.moment(c.closed_at) if c.closed_at else None),
    ]


def complaint_file_lines(c: Complaint, thread: Sequence[ThreadMessage], changes: Sequence[ChangeLogEntry],
                         parties: Sequence[str], ctx: TextContext, extras: FileExtras | None = None) -> list[str]:
    """`register show`: the whole file of a complaint, every value translated, then staff's notes, its thread and
    history (`extras`: `RegistryStore.complaint_file(...).extras`)."""
    complainant = " ".join(p for p in (c.complainant_name, f"<{c.complainant_email}>" if c.complainant_email
                                       else "") if p)
    outcome = " / ".join(ctx.term(v) for v in (c.outcome, c.outcome_category) if v)
    rows: list[tuple[str, str | None]] = [
        ("number", c.number),
        ("status", ctx.term(c.status)),
        ("kind", ctx.term(c.kind)),
        ("channel", ctx.term(c.channel, "channel")),
        ("received", ctx.moment(c.received_at)),
        ("legal_start", ctx.date(c.legal_start)),
        ("complainant", complainant or NONE),
        ("postal_address", c.complainant_postal_address),
        ("language", ctx.term(c.complainant_language, "language") if c.complainant_language else None),
        ("subject", c.subject_line or NONE),
        ("service", ctx.service(c.service_concerned)),
        ("theme", ctx.theme(c.theme)),
        ("handler", c.handler or NONE),
        ("admissibility", admissibility_text(c, ctx)),
        ("proposal", proposal_text(c.screening_proposal, ctx) if c.admissibility == "pending" else None),
        *((name, _fact_text(getattr(c, name), ctx) if getattr(c, name) is not None else None) for name in FACTS),
        *deadline_rows(c, ctx),
        ("outcome", outcome or NONE),
        ("redirected_to", ctx.ombudsman(c.redirected_to) if c.redirected_to else None),
        ("linked", c.linked_number or NONE),
        ("data_protection", ctx.text("yes") if c.data_protection else None),
        ("merged_into", c.merged_into),
        ("merged_from", ", ".join(extras.merged_from) if extras and extras.merged_from else None),
        ("links", ", ".join(link.number for link in extras.links) if extras and extras.links else None),
        *trust_rows(c, ctx),
        ("ack_suppressed", c.acknowledgment_suppressed),
        ("parties", ", ".join(parties) or NONE),
        ("attachments", _attachments(c.attachments) if c.attachments else None),
    ]
    shown = [(ctx.text(key), value) for key, value in rows if value is not None]
    width = max(len(name) for name, _ in shown)
    lines = [f"{name.ljust(width)}  {value}" for name, value in shown]
    if c.recommendations:
        lines += ["", ctx.colon(ctx.text("recommendations")), *(f"  - {r}" for r in c.recommendations)]
    if extras and extras.notes:
        lines += ["", ctx.colon(ctx.text("notes"))]
        for note in extras.notes:
            lines.append(f"  {ctx.moment(note.created_at)}  {ctx.actor(note.author)}")
            lines.extend(f"      | {line}" for line in note.text.splitlines())
    lines += ["", ctx.colon(ctx.text("thread"))]
    for m in thread:
        lines += _thread_lines(m, ctx)
    lines += ["", ctx.colon(ctx.text("changes"))]
    lines += [f"  {ctx.moment(e.at)}  {ctx.actor(e.actor)}  {change_summary(e, ctx)}" for e in changes]
    return lines
