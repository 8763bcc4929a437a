"""Screening of a new complaint: pure, configurable rules producing a *proposal* that staff confirm or override.

Interface:

- `screen(complaint: ScreeningInput, config) -> ScreeningProposal` — no I/O, no clock (`ScreeningInput.received` is
  the legal start date; `ScreeningInput.facts`, a `ScreeningFacts`, what staff or a letter's metadata stated);
  `ScreeningProposal.to_dict()` is JSON-able for storage and the API.
- `ScreeningConfig` — the rules and the ombudsman directory, validated pydantic models (`screening_config`, re-exported
  here; reading the files is `screening_files.load_screening_config`); see docs/registry-rules.md.
- `normalise(text)` — the accent- and case-insensitive form every keyword and text is compared in.

What a proposal says (the admissibility rules apply to complaints only: a suggestion, a compliment or a question is
never "inadmissible", though it may be redirected):
- inadmissibility `reasons` (stable codes of `vocabulary.InadmissibilityReason`, each with the evidence): anonymous
  (no identifiable sender), facts older than the configured age with no step taken since, first line not contacted
  first, out of competence;
- `checks`: doubts staff should resolve (a name missing but an address present, years in the text suggesting old
  facts, another ombudsman matching as well as we do, no sign that the service was contacted first);
- `redirect`: the competent ombudsmen from the directory, best first, with their contact details;
- `route_to_dpo` when the message is about personal data (GDPR / RGPD / AVG / DSGVO), or was sent to one of the
  DPO's mailboxes (`[dpo] addresses`, evidence `to:<address>`) whatever its words;
- `information_request`: what a request for information to the citizen would ask, from the reasons and checks
  above (issue 15, `information_requests.proposed_missing`): first-line contact, facts date, last step, identity,
  postal address (a check of its own when the rules require one);
- the suggested `kind` (complaint / suggestion / compliment / question), `theme` and `service`, from multilingual
  keyword rules (FR, NL, DE, EN).

Keywords are matched on word boundaries after `normalise` (so "Energie", "énergie" and "ÉNERGIE" are the same);
a `*` at either end matches the rest of the word ("pension*" matches "pensions" and "pensionné"; "*versicherung"
matches the German compound "Krankenversicherung"). A keyword of n words scores n: specific phrases outweigh single
words. The text is scanned once for every keyword of the configuration (`ScreeningConfig.matcher`, Aho-Corasick);
each rule then reads its own keywords among those found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

# The configuration is re-exported: callers import it with `screen` from here.
from services.registry.screening_config import (
    Category,
    DpoContact,
    KeywordKey,
    KeywordSet,
    Ombudsman,
    ScreeningConfig,
    ScreeningConfigError,
    normalise,
)
from services.registry.mediation.information_requests import MissingItem, proposed_missing
from services.registry.vocabulary import InadmissibilityReason, Kind

__all__ = [
    "Category",
    "DpoContact",
    "Finding",
    "KeywordSet",
    "Match",
    "Ombudsman",
    "RedirectProposal",
    "ScreeningConfig",
    "ScreeningConfigError",
    "ScreeningFacts",
    "ScreeningInput",
    "ScreeningProposal",
    "normalise",
    "screen",
]

_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")


@dataclass(frozen=True)
class ScreeningFacts:
    """What a person stated about the complaint, as opposed to what screening reads in the text.

    Staff record them (API, command line) or a scanned letter's metadata carries them; None: not stated, and
    screening then looks in the text and raises a check instead of a reason.
    """

    facts_date: date | None = None  # when the facts complained of happened
    last_step_date: date | None = None  # the citizen's latest step about them (a letter, a first-line complaint)
    first_line_contacted: bool | None = None  # the service concerned was contacted before coming to us


@dataclass(frozen=True)
class ScreeningInput:
    """What screening looks at: the message, its legal start date (`received`) and the `facts` people stated."""

    received: date
    sender_name: str = ""
    sender_email: str | None = None
    postal_address: str | None = None
    subject: str = ""
    text: str = ""
    language: str | None = None
    facts: ScreeningFacts = ScreeningFacts()
    # Where the message was sent (envelope recipients, else To/Cc): mail to a DPO mailbox goes to the DPO.
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A reason or a check: a stable `code`, an English `detail` for staff logs, the `evidence` found."""

    code: str
    detail: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Match:
    id: str
    score: int
    matched: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "matched": list(self.matched)}


@dataclass(frozen=True)
class RedirectProposal:
    ombudsman: Ombudsman
    score: int
    matched: tuple[str, ...]

    def to_dict(self, language: str | None = None) -> dict[str, Any]:
        return {
            "id": self.ombudsman.id,
            "name": self.ombudsman.name(language),
            "contact": self.ombudsman.contact(),
            "score": self.score,
            "matched": list(self.matched),
        }


@dataclass(frozen=True)
class ScreeningProposal:
    reasons: tuple[Finding, ...]
    checks: tuple[Finding, ...]
    redirect: tuple[RedirectProposal, ...]
    route_to_dpo: bool
    dpo_evidence: tuple[str, ...]
    kind: str
    kind_evidence: tuple[str, ...]
    theme: Match | None
    themes: tuple[Match, ...]
    service: Match | None
    services: tuple[Match, ...]
    language: str | None = None

    @property
    def admissible(self) -> bool:
        return not self.reasons

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def information_request(self) -> tuple[MissingItem, ...]:
        """What to ask the citizen: the facts screening could not decide (`information_requests.FINDINGS`)."""
        return proposed_missing(f.code for f in (*self.reasons, *self.checks))

    @property
    def proposed_status(self) -> str | None:
        """'redirected' when out of competence with somewhere to send it, 'inadmissible' for any other reason,
        None when the complaint looks admissible (it follows the normal path)."""
        if InadmissibilityReason.OUT_OF_COMPETENCE in self.reason_codes and self.redirect:
            return "redirected"
        if self.reasons:
            return "inadmissible"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "admissible": self.admissible,
            "proposed_status": self.proposed_status,
            "reasons": [r.to_dict() for r in self.reasons],
            "checks": [c.to_dict() for c in self.checks],
            "redirect": [r.to_dict(self.language) for r in self.redirect],
            "route_to_dpo": self.route_to_dpo,
            "dpo_evidence": list(self.dpo_evidence),
            "kind": self.kind,
            "kind_evidence": list(self.kind_evidence),
            "theme": self.theme.to_dict() if self.theme else None,
            "themes": [m.to_dict() for m in self.themes],
            "service": self.service.to_dict() if self.service else None,
            "services": [m.to_dict() for m in self.services],
            # What a request for information to the citizen would ask (issue 15): staff confirm it on the file page.
            "information_request": [item.value for item in self.information_request],
        }


def _rank(categories: Iterable[Category], found_keywords: set[KeywordKey]) -> tuple[Match, ...]:
    matches = []
    for category in categories:
        found, score = category.keywords.found_in(found_keywords)
        if score:
            matches.append(Match(category.id, score, found))
    return tuple(sorted(matches, key=lambda m: (-m.score, m.id)))


def _identity(complaint: ScreeningInput, config: ScreeningConfig) -> tuple[list[Finding], list[Finding]]:
    name = complaint.sender_name.strip()
    anonymous_words, _ = config.rules.admissibility.anonymous_names.matches(normalise(name))
    reachable = bool((complaint.sender_email or "").strip() or (complaint.postal_address or "").strip())
    if anonymous_words:
        return [Finding(InadmissibilityReason.ANONYMOUS, "the sender calls themself anonymous", anonymous_words)], []
    if not reachable:
        return [Finding(InadmissibilityReason.ANONYMOUS, "no e-mail nor postal address to identify the sender")], []
    checks = []
    if not name:
        checks.append(Finding("identity_to_verify", "no name given; only an address identifies the sender"))
    if config.rules.admissibility.require_postal_address and not (complaint.postal_address or "").strip():
        checks.append(Finding("postal_address_to_verify", "no postal address given, and the rules require one"))
    return [], checks


def _facts_age(complaint: ScreeningInput, text: str, config: ScreeningConfig) -> tuple[list[Finding], list[Finding]]:
    max_age, facts = config.rules.admissibility.max_fact_age_days, complaint.facts
    limit = complaint.received - timedelta(days=max_age)
    if facts.facts_date is not None:
        step = facts.last_step_date
        if facts.facts_date < limit and (step is None or step < limit):
            detail = (
                f"facts of {facts.facts_date.isoformat()}, "
                + (f"last step {step.isoformat()}" if step else "no step since")
                + f", more than {max_age} days before receipt"
            )
            return [Finding(InadmissibilityReason.FACTS_TOO_OLD, detail)], []
        return [], []
    years = sorted({int(y) for y in _YEAR.findall(text) if int(y) <= complaint.received.year})
    # Only the latest year mentioned matters: an old year next to a recent one is history, not old facts.
    if years and years[-1] < limit.year:
        return [], [
            Finding(
                "facts_date_to_verify",
                "the text only mentions years before the admissible period",
                tuple(str(y) for y in years),
            )
        ]
    return [], []


def _first_line(complaint: ScreeningInput, found_keywords: set[KeywordKey], config: ScreeningConfig
                ) -> tuple[list[Finding], list[Finding]]:
    rules = config.rules.admissibility
    if not rules.require_first_line or complaint.facts.first_line_contacted is True:
        return [], []
    if complaint.facts.first_line_contacted is False:
        return [Finding(InadmissibilityReason.FIRST_LINE_NOT_CONTACTED, "stated when the complaint was recorded")], []
    negative, _ = rules.first_line_not_contacted.found_in(found_keywords)
    if negative:
        return [Finding(InadmissibilityReason.FIRST_LINE_NOT_CONTACTED, "the citizen says so", negative)], []
    positive, _ = rules.first_line_contacted.found_in(found_keywords)
    if positive:
        return [], []
    return [], [Finding("first_line_to_verify", "no sign that the service concerned was contacted first")]


def _competence(
    found_keywords: set[KeywordKey], config: ScreeningConfig
) -> tuple[list[Finding], list[Finding], tuple[RedirectProposal, ...]]:
    own_score = 0
    others: list[RedirectProposal] = []
    for entry in config.directory:
        found, score = entry.keywords.found_in(found_keywords)
        if entry.id == config.self_id:
            own_score = score
        elif score:
            others.append(RedirectProposal(entry, score, found))
    others.sort(key=lambda r: (-r.score, r.ombudsman.id))
    better = tuple(r for r in others if r.score > own_score)[: config.redirect_limit]
    if not better:
        return [], [], ()
    evidence = tuple(f"{r.ombudsman.id}: {', '.join(r.matched)}" for r in better)
    if config.self_id is not None and own_score == 0:
        return (
            [
                Finding(
                    InadmissibilityReason.OUT_OF_COMPETENCE,
                    f"nothing in the text is within our competence; it matches {better[0].ombudsman.id}",
                    evidence,
                )
            ],
            [],
            better,
        )
    return [], [Finding("competence_to_verify", "another ombudsman matches better than we do", evidence)], better


def _kind(found_keywords: set[KeywordKey], config: ScreeningConfig) -> tuple[str, tuple[str, ...]]:
    ranked, default_kind = _rank(config.rules.kinds, found_keywords), config.rules.default_kind
    default_score = next((m.score for m in ranked if m.id == default_kind), 0)
    # Another kind must beat the default strictly: "merci d'avance" in a complaint does not make it a compliment.
    for match in ranked:
        if match.id == default_kind or match.score > default_score:
            return match.id, match.matched
    return default_kind, ()


def screen(complaint: ScreeningInput, config: ScreeningConfig) -> ScreeningProposal:
    """Apply the rules to one complaint; never raises on odd input (empty text, no sender): it reports it."""
    text = normalise(f"{complaint.subject}\n{complaint.text}")
    found_keywords = config.matcher.scan(text)
    kind, kind_evidence = _kind(found_keywords, config)
    reasons: list[Finding] = []
    checks: list[Finding] = []
    # Admissibility is a question for complaints only: a suggestion, compliment or question is never "inadmissible".
    if kind == Kind.COMPLAINT:
        for rule in (
            _identity(complaint, config),
            _facts_age(complaint, text, config),
            _first_line(complaint, found_keywords, config),
        ):
            reasons.extend(rule[0])
            checks.extend(rule[1])
    competence_reasons, competence_checks, redirect = _competence(found_keywords, config)
    reasons.extend(competence_reasons)
    checks.extend(competence_checks)
    dpo_evidence: tuple[str, ...] = ()
    if config.dpo is not None:
        dpo_evidence, _ = config.dpo.keywords.found_in(found_keywords)
        # Mail addressed to a DPO mailbox is the DPO's whatever its words (issue 15).
        dpo_evidence = (*(f"to:{address}" for address in config.dpo.addressed_to(complaint.recipients)),
                        *dpo_evidence)
    themes = _rank(config.themes, found_keywords)
    services = _rank(config.services, found_keywords)
    return ScreeningProposal(
        reasons=tuple(reasons),
        checks=tuple(checks),
        redirect=redirect,
        route_to_dpo=bool(dpo_evidence),
        dpo_evidence=dpo_evidence,
        kind=kind,
        kind_evidence=kind_evidence,
        theme=themes[0] if themes else None,
        themes=themes[:3],
        service=services[0] if services else None,
        services=services[:3],
        language=complaint.language,
    )
