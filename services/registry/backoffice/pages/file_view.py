"""What the file page shows of a complaint (pure): everything `register show` prints, grouped for reading.

Values are formatted exactly as the CLI formats them (`views.TextContext` and the row helpers of `views`: the same
translated field names, dates, change summaries, screening proposal, sender evidence), so the page and
`register show` cannot drift apart; the page adds structure (groups, the thread as cards with the new text first and
the quoted history folded and sent only when unfolded, download links) and leaves escaping to the templates (Jinja2 autoescape; what a sender or
a citizen wrote is also isolated with `<bdi>` there, so a right-to-left override cannot reorder the page around it).

The citizen's personal links (`citizen_links_view`, issue 17) are shown from what the register keeps of them: when,
by whom, revoked or not, and until when they work — never a token nor a verifier's hash (the page does not read them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from services.registry import views
from services.registry.handlers.citizen_access import CITIZEN_REQUEST, SUPERSEDED
from services.registry.models import ChangeLogEntry, CitizenLink, Complaint, ThreadMessage
from services.registry.public.citizen_access import CitizenPolicy, link_expires_on, link_usable
from services.registry.backoffice.i18n import catalog, translate
from services.registry.screening import ScreeningConfig
from services.registry.screening_config import normalise
from services.registry.views import NONE, TextContext
from services.registry.vocabulary import Status
from services.registry.workflow import TERMINAL_STATUSES, allowed_transitions


def text_context(language: str, policy: Any) -> TextContext:
    return TextContext(language=language, zone=policy.timezone, screening=policy.screening)


@dataclass(frozen=True)
class Attachment:
    filename: str
    object_name: str | None
    content_type: str
    size: int | None


@dataclass(frozen=True)
class Message:
    key: str
    moment: str
    direction: str  # in, out, failed, receipt (the `direction` vocabulary)
    direction_label: str
    who: str
    verdict: str | None
    verdict_class: str
    subject: str
    notice: str | None
    read_receipt_of: str | None
    trust: list[tuple[str, str]]
    message_id: str | None
    attachments: list[Attachment]
    rules: list[str]
    new_text: str
    quoted: str
    has_original: bool


@dataclass(frozen=True)
class Change:
    moment: str
    actor: str
    change: str
    summary: str


@dataclass
class FileView:
    """The file, formatted for the reader (`ctx.lang`)."""

    number: str
    status: str
    status_label: str
    subject: str
    complainant: list[tuple[str, str]]
    case: list[tuple[str, str]]
    screening: list[tuple[str, str]]
    proposal: dict[str, Any] | None
    facts: list[tuple[str, str]]
    sender: list[tuple[str, str]]
    deadlines: list[tuple[str, str]]
    deadline_history: list[Change]
    recommendations: list[str]
    attachments: list[Attachment]
    messages: list[Message]
    changes: list[Change]
    notes: list[dict[str, str]] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)
    merged_into: str | None = None
    merged_from: list[str] = field(default_factory=list)
    merge_history: list[Change] = field(default_factory=list)
    data_protection: bool = False
    ended: bool = False
    targets: list[str] = field(default_factory=list)  # the statuses the workflow allows next


def _attachments(items: Sequence[Mapping[str, Any]]) -> list[Attachment]:
    return [Attachment(filename=str(a.get("filename") or a.get("object_name") or "?"),
                       object_name=a.get("object_name") or None, content_type=str(a.get("content_type") or ""),
                       size=a.get("size") if isinstance(a.get("size"), int) else None)
            for a in items if isinstance(a, Mapping)]


def _message(m: ThreadMessage, ctx: TextContext) -> Message:
    direction = "failed" if m.direction == "out" and m.message_key.startswith("failed:") else m.direction
    if m.disposition_of:
        direction = "receipt"
    who = (m.sender_email or m.sender_name) if m.direction == "in" else m.recipient
    if m.direction == "in" and m.sender_name and m.sender_email:
        who = f"{m.sender_name} <{m.sender_email}>"
    new_text, quoted = views.split_text(m.body, m.new_text)
    trust = [(ctx.text(key), value) for key, value in views.trust_rows(m, ctx)
             if value is not None and key != "sender_check"] if m.direction == "in" else []
    return Message(
        key=m.message_key,
        moment=ctx.moment(m.occurred_at),
        direction=direction,
        direction_label=ctx.term(direction, "direction"),
        who=who or NONE,
        verdict=views.verdict_text(m, ctx) if m.direction == "in" else None,
        verdict_class=m.sender_verdict or "",
        subject=m.subject_line or NONE,
        notice=ctx.term(m.notice_kind, "notice") if m.notice_kind else None,
        read_receipt_of=f"<{m.disposition_of}>" if m.disposition_of else None,
        trust=trust,
        message_id=f"<{m.message_id}>" if m.message_id else None,
        attachments=_attachments(m.attachments or ()),
        rules=[views.rule_hit(hit, ctx) for hit in views.rule_hits(m.rules)],
        new_text=new_text,
        quoted=quoted,
        has_original=bool(m.raw_object),
    )


def _change(entry: ChangeLogEntry, ctx: TextContext) -> Change:
    return Change(moment=ctx.moment(entry.at), actor=ctx.actor(entry.actor), change=entry.change,
                  summary=views.change_summary(entry, ctx))


def _is_deadline_change(entry: ChangeLogEntry) -> bool:
    """Extensions, and the pauses (waiting for the citizen) and resumptions that move the answer deadline."""
    details = entry.details or {}
    pause = Status.WAITING_FOR_CITIZEN.value
    return entry.change == "extension" or (entry.change == "status" and pause in (details.get("from"),
                                                                                 details.get("to")))


def proposal_text(c: Complaint, ctx: TextContext) -> dict[str, Any] | None:
    """Screening's proposal while staff have not decided: the summary `register show` prints, then each reason and
    check with the evidence found in the text, the ombudsmen it would redirect to with the words that matched, the
    DPO flag with its evidence, and the kind, theme and service it suggests."""
    proposal = c.screening_proposal
    if not proposal or c.admissibility != "pending":
        return None

    def finding(code: str) -> str:
        # Inadmissibility reasons are the register's vocabulary; the checks (identity_to_verify...) the page's.
        return translate(f"file.check.{code}", ctx.lang) if f"file.check.{code}" in catalog() else ctx.term(code)

    def findings(key: str) -> list[dict[str, Any]]:
        return [{"label": finding(str(item.get("code"))), "detail": str(item.get("detail") or ""),
                 "evidence": [str(e) for e in item.get("evidence") or ()]}
                for item in proposal.get(key) or () if isinstance(item, Mapping)]

    def match(key: str, name: Any) -> dict[str, Any] | None:
        found = proposal.get(key)
        if not isinstance(found, Mapping) or not found.get("id"):
            return None
        return {"label": name(str(found["id"])), "matched": [str(w) for w in found.get("matched") or ()]}

    return {
        "summary": views.proposal_text(proposal, ctx),
        "admissible": bool(proposal.get("admissible")),
        "reasons": findings("reasons"),
        "checks": findings("checks"),
        "redirect": [{"id": str(r.get("id")), "label": ctx.ombudsman(str(r.get("id"))),
                      "matched": [str(w) for w in r.get("matched") or ()]}
                     for r in proposal.get("redirect") or () if isinstance(r, Mapping)],
        "route_to_dpo": bool(proposal.get("route_to_dpo")),
        "dpo_evidence": [str(e) for e in proposal.get("dpo_evidence") or ()],
        "kind": {"label": ctx.term(str(proposal["kind"])),
                 "matched": [str(w) for w in proposal.get("kind_evidence") or ()]} if proposal.get("kind") else None,
        "theme": match("theme", ctx.theme),
        "service": match("service", ctx.service),
    }


def _notes(extras: Any, ctx: TextContext) -> list[dict[str, str]]:
    return [{"moment": ctx.moment(n.created_at), "actor": ctx.actor(n.author), "text": n.text}
            for n in getattr(extras, "notes", None) or ()]


def _links(extras: Any, ctx: TextContext) -> list[dict[str, str]]:
    return [{"number": link.number, "by": link.linked_by, "moment": ctx.moment(link.linked_at)}
            for link in getattr(extras, "links", None) or ()]


MERGE_CHANGES = frozenset({"merged_into", "merged_from", "merge_undone"})


def file_view(found: Sequence[Any], ctx: TextContext, *, newest_first: bool = True) -> FileView:
    """`found` is what `RegistryStore.complaint_file(number)` returns: the complaint, its thread, its change log and
    its parties, with `.extras` (notes, links, the files merged into it)."""
    c: Complaint = found[0]
    thread: Sequence[ThreadMessage] = found[1]
    changes: Sequence[ChangeLogEntry] = found[2]
    parties: Sequence[str] = found[3]
    extras = getattr(found, "extras", None)
    outcome = " / ".join(ctx.term(v) for v in (c.outcome, c.outcome_category) if v)
    case_rows: list[tuple[str, str | None]] = [
        ("number", c.number),
        ("status", ctx.term(c.status)),
        ("kind", ctx.term(c.kind)),
        ("channel", ctx.term(c.channel, "channel")),
        ("received", ctx.moment(c.received_at)),
        ("legal_start", ctx.date(c.legal_start)),
        ("subject", c.subject_line or NONE),
        ("service", ctx.service(c.service_concerned)),
        ("theme", ctx.theme(c.theme)),
        ("handler", c.handler or NONE),
        ("outcome", outcome or NONE),
        ("redirected_to", ctx.ombudsman(c.redirected_to) if c.redirected_to else None),
        ("data_protection", ctx.text("yes") if c.data_protection else None),
        ("merged_into", c.merged_into),
        ("linked", c.linked_number or None),
        ("parties", ", ".join(parties) or NONE),
        ("ack_suppressed", c.acknowledgment_suppressed),
    ]
    complainant_rows: list[tuple[str, str | None]] = [
        ("complainant", c.complainant_name or NONE),
        ("email", c.complainant_email or NONE),
        ("postal_address", c.complainant_postal_address or NONE),
        ("language", ctx.term(c.complainant_language, "language") if c.complainant_language else NONE),
    ]
    deadline_rows = views.deadline_rows(c, ctx)
    messages = [_message(m, ctx) for m in thread]
    if newest_first:
        messages.reverse()
    return FileView(
        number=c.number,
        status=c.status,
        status_label=ctx.term(c.status),
        subject=c.subject_line,
        complainant=[(_label(ctx, key), value) for key, value in complainant_rows if value is not None],
        case=[(_label(ctx, key), value) for key, value in case_rows if value is not None],
        screening=[(ctx.text("admissibility"), views.admissibility_text(c, ctx))],
        proposal=proposal_text(c, ctx),
        facts=views.facts_rows(c, ctx),
        sender=[(ctx.text(key), value) for key, value in views.trust_rows(c, ctx) if value is not None],
        deadlines=[(ctx.text(key), value) for key, value in deadline_rows if value is not None],
        deadline_history=[_change(e, ctx) for e in changes if _is_deadline_change(e)],
        recommendations=[str(r) for r in c.recommendations or ()],
        attachments=_attachments(c.attachments or ()),
        messages=messages,
        changes=[_change(e, ctx) for e in changes],
        notes=_notes(extras, ctx),
        links=_links(extras, ctx),
        merged_into=c.merged_into,
        merged_from=list(getattr(extras, "merged_from", None) or ()),
        merge_history=[_change(e, ctx) for e in changes if e.change in MERGE_CHANGES],
        data_protection=bool(c.data_protection),
        ended=c.status in TERMINAL_STATUSES,
        targets=[s.value for s in sorted(allowed_transitions(c.status), key=list(Status).index)],
    )


@dataclass(frozen=True)
class CitizenLinkRow:
    issued: str
    issued_by: str
    state: str  # active, revoked, expired, merged (`file.citizen_link.state.<state>`)
    revoked: str | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class CitizenLinks:
    """The citizen's personal links to the file, newest first, and what staff may do about them."""

    rows: list[CitizenLinkRow]
    working: int
    expires_on: str | None  # the last day the file's links work; None while the file is open
    days_after_close: int
    can_revoke: bool  # some link is not revoked yet (an expired one works again if the file is reopened)
    # Why no new link can be sent (`file.citizen_link.unavailable.<key>`), None when one can.
    unavailable: str | None


# The register's own actors of a link (`handlers.citizen_access`), in the reader's words; staff are shown as such.
LINK_ACTORS = {CITIZEN_REQUEST: "file.citizen_link.citizen_request", SUPERSEDED: "file.citizen_link.superseded"}


def _issuer(actor: str, ctx: TextContext) -> str:
    key = LINK_ACTORS.get(actor)
    return translate(key, ctx.lang) if key else ctx.actor(actor)


def citizen_links_view(links: Sequence[CitizenLink], complaint: Complaint, policy: CitizenPolicy, today: date,
                       zone: ZoneInfo, ctx: TextContext) -> CitizenLinks:
    """`links` are the file's `citizen_links` rows (their dates and actors are all this reads)."""
    expires = link_expires_on(complaint, policy, zone)
    merged = complaint.status == Status.MERGED
    rows = []
    for link in links:
        if link.revoked_at is not None:
            state = "revoked"
        elif link_usable(link, complaint, policy, today, zone):
            state = "active"
        else:
            state = "merged" if merged else "expired"
        rows.append(CitizenLinkRow(
            issued=ctx.moment(link.issued_at), issued_by=_issuer(link.issued_by, ctx), state=state,
            revoked=ctx.moment(link.revoked_at) if link.revoked_at else None,
            revoked_by=_issuer(link.revoked_by, ctx) if link.revoked_by else None))
    if not policy.issues_links:
        unavailable: str | None = "off"
    elif merged:
        unavailable = "merged"
    elif complaint.automated or not (complaint.complainant_email or complaint.complainant_postal_address):
        unavailable = "unreachable"
    elif expires is not None and today > expires:
        unavailable = "expired"  # a new link would not open the file either
    else:
        unavailable = None
    return CitizenLinks(rows=rows, working=sum(row.state == "active" for row in rows),
                        expires_on=ctx.date(expires) if expires else None,
                        days_after_close=policy.link_days_after_close,
                        can_revoke=any(row.state != "revoked" for row in rows), unavailable=unavailable)


def _label(ctx: TextContext, key: str) -> str:
    """A field name of `register show` (`views.TEXTS`); the CLI shows the email inside the complainant's line, the
    page on a line of its own (`messages/file.toml`)."""
    return translate("file.email", ctx.lang) if key == "email" else ctx.text(key)


def quoted_history(thread: Sequence[ThreadMessage], message_key: str, ctx: TextContext) -> Message | None:
    """The message of `thread` under `message_key`, formatted as on the page, if it has a quoted history."""
    found = next((m for m in thread if m.message_key == message_key), None)
    if found is None:
        return None
    message = _message(found, ctx)
    return message if message.quoted else None


def directory_matches(screening: ScreeningConfig | None, query: str, language: str, limit: int = 20
                      ) -> list[dict[str, str]]:
    """Ombudsmen of the screening directory whose id, name (in any language), country or keywords contain the words
    of `query` (accents and case ignored); every entry when the query is blank. Our own entry is left out."""
    if screening is None:
        return []
    words = normalise(query).split()
    found = []
    for entry in screening.directory:
        if entry.id == screening.self_id:
            continue
        haystack = normalise(" ".join([entry.id, entry.country, *entry.names.values(),
                                       *(k for ks in entry.keywords.by_language.values() for k in ks)]))
        if all(word in haystack for word in words):
            found.append({"id": entry.id, "name": entry.name(language), "country": entry.country,
                          "contact": ", ".join(entry.contact().values()), "verified": entry.verified,
                          "source": entry.source})
        if len(found) >= limit:
            break
    return found
