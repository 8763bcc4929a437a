"""Screening of a new complaint: pure, configurable rules producing a *proposal* that staff confirm or override.

Interface:

- `ScreeningConfig.from_toml(rules_text, directory_text)` / `ScreeningConfig.from_mappings(rules, directory)` — the
  rules (admissibility, DPO, kinds, themes, services) and the ombudsman directory; see `screening.example.toml`,
  `directory.example.toml` and docs/registry-rules.md. Reading the files is `screening_files.load_screening_config`.
- `screen(complaint: ScreeningInput, config) -> ScreeningProposal` — no I/O, no clock (`ScreeningInput.received` is
  the legal start date); `ScreeningProposal.to_dict()` is JSON-able for storage and the API.
- `normalise(text)` — the accent- and case-insensitive form every keyword and text is compared in.

What a proposal says (the admissibility rules apply to complaints only: a suggestion, a compliment or a question is
never "inadmissible", though it may be redirected):
- inadmissibility `reasons` (stable codes of `vocabulary.InadmissibilityReason`, each with the evidence): anonymous
  (no identifiable sender), facts older than the configured age with no step taken since, first line not contacted
  first, out of competence;
- `checks`: doubts staff should resolve (a name missing but an address present, years in the text suggesting old
  facts, another ombudsman matching as well as we do, no sign that the service was contacted first);
- `redirect`: the competent ombudsmen from the directory, best first, with their contact details;
- `route_to_dpo` when the message is about personal data (GDPR / RGPD / AVG / DSGVO);
- the suggested `kind` (complaint / suggestion / compliment / question), `theme` and `service`, from multilingual
  keyword rules (FR, NL, DE, EN).

Keywords are matched on word boundaries after `normalise` (so "Energie", "énergie" and "ÉNERGIE" are the same);
a `*` at either end matches the rest of the word ("pension*" matches "pensions" and "pensionné"; "*versicherung"
matches the German compound "Krankenversicherung"). A keyword of n words scores n: specific phrases outweigh single
words.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from services.registry.vocabulary import DEFAULT_LANGUAGE, InadmissibilityReason, Kind

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
    "ScreeningInput",
    "ScreeningProposal",
    "normalise",
    "screen",
]

# Ligatures that Unicode decomposition leaves alone but people write both ways ("œuvre" / "oeuvre").
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"})
_NON_WORD = re.compile(r"[\W_]+")
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")


class ScreeningConfigError(ValueError):
    """The screening rules or the directory are invalid; the message names the offending entry."""


def normalise(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: 'Réclamation — SPF!' -> 'reclamation spf'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", without_marks.casefold()).strip()


@dataclass(frozen=True)
class _Keyword:
    text: str
    weight: int
    pattern: re.Pattern[str]

    @classmethod
    def compile(cls, keyword: str, where: str) -> _Keyword:
        stripped = keyword.strip()
        core = normalise(stripped.strip("*"))
        if not core:
            raise ScreeningConfigError(f"{where}: empty keyword {keyword!r}")
        left = "" if stripped.startswith("*") else r"(?<!\w)"
        right = "" if stripped.endswith("*") else r"(?!\w)"
        return cls(stripped, len(core.split()), re.compile(left + re.escape(core) + right))


@dataclass(frozen=True)
class KeywordSet:
    """Keywords by language; all languages are searched (citizens mix languages, and names are shared)."""

    by_language: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _compiled: tuple[_Keyword, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any, where: str) -> KeywordSet:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ScreeningConfigError(f"{where}: keywords must be a table of language = [keywords]")
        by_language: dict[str, tuple[str, ...]] = {}
        compiled: dict[str, _Keyword] = {}
        for language, words in data.items():
            if isinstance(words, str) or not isinstance(words, Iterable):
                raise ScreeningConfigError(f"{where}.{language}: expected a list of keywords")
            by_language[language] = tuple(str(w) for w in words)
            for word in words:
                keyword = _Keyword.compile(str(word), f"{where}.{language}")
                # The same word in several languages ("pension*", "Fedasil") counts once.
                compiled.setdefault(keyword.pattern.pattern, keyword)
        return cls(by_language, tuple(compiled.values()))

    def matches(self, normalised_text: str) -> tuple[tuple[str, ...], int]:
        """(the keywords found, as written in the configuration; their total weight)."""
        found: dict[str, int] = {}
        for keyword in self._compiled:
            if keyword.text not in found and keyword.pattern.search(normalised_text):
                found[keyword.text] = keyword.weight
        return tuple(found), sum(found.values())


def _labels(data: Any, where: str) -> Mapping[str, str]:
    if data is None:
        return {}
    if isinstance(data, str):
        return {DEFAULT_LANGUAGE: data}
    if not isinstance(data, Mapping):
        raise ScreeningConfigError(f"{where}: expected a text or a table of language = text")
    return {str(k): str(v) for k, v in data.items()}


def _pick(labels: Mapping[str, str], language: str | None, fallback: str) -> str:
    primary = (language or DEFAULT_LANGUAGE).split("-")[0].lower()
    return labels.get(primary) or labels.get(DEFAULT_LANGUAGE) or next(iter(labels.values()), fallback)


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ScreeningConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")


@dataclass(frozen=True)
class Category:
    """An entry of a taxonomy (kinds, themes, services): an id, labels by language, keywords."""

    id: str
    labels: Mapping[str, str]
    keywords: KeywordSet

    @classmethod
    def parse(cls, data: Mapping[str, Any], where: str) -> Category:
        _check_keys(data, {"id", "label", "keywords"}, where)
        if not data.get("id"):
            raise ScreeningConfigError(f"{where}: missing id")
        return cls(str(data["id"]), _labels(data.get("label"), where), KeywordSet.parse(data.get("keywords"), where))

    def label(self, language: str | None = None) -> str:
        return _pick(self.labels, language, self.id)


@dataclass(frozen=True)
class Ombudsman:
    """An entry of the directory: who is competent for what, and how the citizen reaches them."""

    id: str
    names: Mapping[str, str]
    keywords: KeywordSet
    country: str = ""
    website: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, Any], where: str) -> Ombudsman:
        _check_keys(data, {"id", "name", "keywords", "country", "website", "email", "phone", "address"}, where)
        if not data.get("id") or not data.get("name"):
            raise ScreeningConfigError(f"{where}: id and name are required")
        return cls(
            id=str(data["id"]),
            names=_labels(data["name"], where),
            keywords=KeywordSet.parse(data.get("keywords"), where),
            country=str(data.get("country", "")),
            website=str(data.get("website", "")),
            email=str(data.get("email", "")),
            phone=str(data.get("phone", "")),
            address=str(data.get("address", "")),
        )

    def name(self, language: str | None = None) -> str:
        return _pick(self.names, language, self.id)

    def contact(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("website", self.website),
                ("email", self.email),
                ("phone", self.phone),
                ("address", self.address),
            )
            if v
        }


@dataclass(frozen=True)
class DpoContact:
    name: str
    email: str
    keywords: KeywordSet


@dataclass(frozen=True)
class ScreeningConfig:
    """Everything `screen` needs; build it with `from_toml` or `from_mappings` (validated, errors name the entry)."""

    directory: tuple[Ombudsman, ...] = ()
    self_id: str | None = None
    max_fact_age_days: int = 365
    require_first_line: bool = True
    anonymous_names: KeywordSet = KeywordSet()
    first_line_contacted: KeywordSet = KeywordSet()
    first_line_not_contacted: KeywordSet = KeywordSet()
    dpo: DpoContact | None = None
    kinds: tuple[Category, ...] = ()
    default_kind: str = Kind.COMPLAINT.value
    themes: tuple[Category, ...] = ()
    services: tuple[Category, ...] = ()
    redirect_limit: int = 3

    @classmethod
    def from_toml(cls, rules_text: str, directory_text: str = "") -> ScreeningConfig:
        try:
            rules = tomllib.loads(rules_text)
            directory = tomllib.loads(directory_text) if directory_text else {}
        except tomllib.TOMLDecodeError as exc:
            raise ScreeningConfigError(f"invalid TOML: {exc}") from exc
        return cls.from_mappings(rules, directory)

    @classmethod
    def from_mappings(cls, rules: Mapping[str, Any], directory: Mapping[str, Any]) -> ScreeningConfig:
        _check_keys(
            rules,
            {
                "self",
                "countries",
                "admissibility",
                "dpo",
                "kinds",
                "default_kind",
                "themes",
                "services",
                "redirect_limit",
                "directory",
            },
            "rules",
        )
        _check_keys(directory, {"ombudsman"}, "directory")
        countries = set(rules.get("countries", ()))
        entries = tuple(
            Ombudsman.parse(entry, f"directory.ombudsman[{i}]")
            for i, entry in enumerate(directory.get("ombudsman", ()))
        )
        ids = [entry.id for entry in entries]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ScreeningConfigError(f"directory: duplicate id(s) {', '.join(duplicates)}")
        self_id = rules.get("self")
        if self_id is not None and self_id not in ids:
            raise ScreeningConfigError(f"rules.self: {self_id!r} is not in the directory")
        # Our own entry stays whatever its country; the others are kept only for the countries we redirect to.
        kept = tuple(e for e in entries if not countries or e.country in countries or e.id == self_id)
        admissibility = rules.get("admissibility", {})
        _check_keys(
            admissibility,
            {
                "max_fact_age_days",
                "require_first_line",
                "anonymous_names",
                "first_line_contacted",
                "first_line_not_contacted",
            },
            "rules.admissibility",
        )
        dpo_data = rules.get("dpo")
        dpo = None
        if dpo_data is not None:
            _check_keys(dpo_data, {"name", "email", "keywords"}, "rules.dpo")
            dpo = DpoContact(
                str(dpo_data.get("name", "")),
                str(dpo_data.get("email", "")),
                KeywordSet.parse(dpo_data.get("keywords"), "rules.dpo.keywords"),
            )
        kinds = tuple(Category.parse(k, f"rules.kinds[{i}]") for i, k in enumerate(rules.get("kinds", ())))
        known_kinds = {k.value for k in Kind}
        for kind in kinds:
            if kind.id not in known_kinds:
                raise ScreeningConfigError(
                    f"rules.kinds: unknown kind {kind.id!r}; expected one of {sorted(known_kinds)}"
                )
        default_kind = str(rules.get("default_kind", Kind.COMPLAINT.value))
        if default_kind not in known_kinds:
            raise ScreeningConfigError(f"rules.default_kind: unknown kind {default_kind!r}")
        max_age = int(admissibility.get("max_fact_age_days", 365))
        if max_age < 0:
            raise ScreeningConfigError("rules.admissibility.max_fact_age_days must not be negative")
        return cls(
            directory=kept,
            self_id=self_id,
            max_fact_age_days=max_age,
            require_first_line=bool(admissibility.get("require_first_line", True)),
            anonymous_names=KeywordSet.parse(
                admissibility.get("anonymous_names"), "rules.admissibility.anonymous_names"
            ),
            first_line_contacted=KeywordSet.parse(
                admissibility.get("first_line_contacted"), "rules.admissibility.first_line_contacted"
            ),
            first_line_not_contacted=KeywordSet.parse(
                admissibility.get("first_line_not_contacted"), "rules.admissibility.first_line_not_contacted"
            ),
            dpo=dpo,
            kinds=kinds,
            default_kind=default_kind,
            themes=tuple(Category.parse(t, f"rules.themes[{i}]") for i, t in enumerate(rules.get("themes", ()))),
            services=tuple(Category.parse(s, f"rules.services[{i}]") for i, s in enumerate(rules.get("services", ()))),
            redirect_limit=int(rules.get("redirect_limit", 3)),
        )

    def ombudsman(self, ombudsman_id: str) -> Ombudsman:
        for entry in self.directory:
            if entry.id == ombudsman_id:
                return entry
        raise KeyError(ombudsman_id)

    def theme_label(self, theme_id: str, language: str | None = None) -> str:
        return next((t.label(language) for t in self.themes if t.id == theme_id), theme_id)

    def service_label(self, service_id: str, language: str | None = None) -> str:
        return next((s.label(language) for s in self.services if s.id == service_id), service_id)


@dataclass(frozen=True)
class ScreeningInput:
    """What screening looks at. Dates the citizen or staff stated are optional; unknown ones produce checks."""

    received: date
    sender_name: str = ""
    sender_email: str | None = None
    postal_address: str | None = None
    subject: str = ""
    text: str = ""
    language: str | None = None
    facts_date: date | None = None
    last_step_date: date | None = None
    first_line_contacted: bool | None = None


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
        }


def _rank(categories: Iterable[Category], text: str) -> tuple[Match, ...]:
    matches = []
    for category in categories:
        found, score = category.keywords.matches(text)
        if score:
            matches.append(Match(category.id, score, found))
    return tuple(sorted(matches, key=lambda m: (-m.score, m.id)))


def _identity(complaint: ScreeningInput, config: ScreeningConfig) -> tuple[list[Finding], list[Finding]]:
    name = complaint.sender_name.strip()
    anonymous_words, _ = config.anonymous_names.matches(normalise(name))
    reachable = bool((complaint.sender_email or "").strip() or (complaint.postal_address or "").strip())
    if anonymous_words:
        return [Finding(InadmissibilityReason.ANONYMOUS, "the sender calls themself anonymous", anonymous_words)], []
    if not reachable:
        return [Finding(InadmissibilityReason.ANONYMOUS, "no e-mail nor postal address to identify the sender")], []
    if not name:
        return [], [Finding("identity_to_verify", "no name given; only an address identifies the sender")]
    return [], []


def _facts_age(complaint: ScreeningInput, text: str, config: ScreeningConfig) -> tuple[list[Finding], list[Finding]]:
    limit = complaint.received - timedelta(days=config.max_fact_age_days)
    if complaint.facts_date is not None:
        step = complaint.last_step_date
        if complaint.facts_date < limit and (step is None or step < limit):
            detail = (
                f"facts of {complaint.facts_date.isoformat()}, "
                + (f"last step {step.isoformat()}" if step else "no step since")
                + f", more than {config.max_fact_age_days} days before receipt"
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


def _first_line(complaint: ScreeningInput, text: str, config: ScreeningConfig) -> tuple[list[Finding], list[Finding]]:
    if not config.require_first_line or complaint.first_line_contacted is True:
        return [], []
    if complaint.first_line_contacted is False:
        return [Finding(InadmissibilityReason.FIRST_LINE_NOT_CONTACTED, "stated when the complaint was recorded")], []
    negative, _ = config.first_line_not_contacted.matches(text)
    if negative:
        return [Finding(InadmissibilityReason.FIRST_LINE_NOT_CONTACTED, "the citizen says so", negative)], []
    positive, _ = config.first_line_contacted.matches(text)
    if positive:
        return [], []
    return [], [Finding("first_line_to_verify", "no sign that the service concerned was contacted first")]


def _competence(
    text: str, config: ScreeningConfig
) -> tuple[list[Finding], list[Finding], tuple[RedirectProposal, ...]]:
    own_score = 0
    others: list[RedirectProposal] = []
    for entry in config.directory:
        found, score = entry.keywords.matches(text)
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


def _kind(text: str, config: ScreeningConfig) -> tuple[str, tuple[str, ...]]:
    ranked = _rank(config.kinds, text)
    default_score = next((m.score for m in ranked if m.id == config.default_kind), 0)
    # Another kind must beat the default strictly: "merci d'avance" in a complaint does not make it a compliment.
    for match in ranked:
        if match.id == config.default_kind or match.score > default_score:
            return match.id, match.matched
    return config.default_kind, ()


def screen(complaint: ScreeningInput, config: ScreeningConfig) -> ScreeningProposal:
    """Apply the rules to one complaint; never raises on odd input (empty text, no sender): it reports it."""
    text = normalise(f"{complaint.subject}\n{complaint.text}")
    kind, kind_evidence = _kind(text, config)
    reasons: list[Finding] = []
    checks: list[Finding] = []
    # Admissibility is a question for complaints only: a suggestion, compliment or question is never "inadmissible".
    if kind == Kind.COMPLAINT:
        for rule in (
            _identity(complaint, config),
            _facts_age(complaint, text, config),
            _first_line(complaint, text, config),
        ):
            reasons.extend(rule[0])
            checks.extend(rule[1])
    competence_reasons, competence_checks, redirect = _competence(text, config)
    reasons.extend(competence_reasons)
    checks.extend(competence_checks)
    dpo_evidence: tuple[str, ...] = ()
    if config.dpo is not None:
        dpo_evidence, _ = config.dpo.keywords.matches(text)
    themes = _rank(config.themes, text)
    services = _rank(config.services, text)
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
