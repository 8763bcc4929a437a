"""The screening configuration: the rules file and the ombudsman directory, as pydantic models (pure, no I/O).

- `ScreeningRules` (`screening.toml`: admissibility, DPO, kinds, themes, services) and `Directory`
  (`directory.toml`: one `[[ombudsman]]` per institution) — each `from_toml(text, source)`, where `source` (the
  file's path) starts every error line;
- `ScreeningConfig.combine(rules, directory)` checks what spans both files and keeps the directory entries of the
  countries we redirect to; `ScreeningConfig.from_toml(rules_text, directory_text)` does all three;
- `KeywordSet` — keywords by language, compiled once, matched by `screening.screen` after `normalise`;
  `KeywordMatcher` — every keyword of many sets found in one pass over a text (`ScreeningConfig.matcher`).

Every problem of a file raises `ScreeningConfigError`, one line per problem naming the file, the entry (an entry of
an array of tables by its id, else its position) and the key:
`screening.toml: themes.energy.keywords.fr[3]: empty keyword '***'`. The shipped examples are
`screening.example.toml` and `directory.example.toml`; reading the files is `screening_files.load_screening_config`.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Self

import ahocorasick
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PrivateAttr,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from services.registry.vocabulary import DEFAULT_LANGUAGE, Kind

__all__ = [
    "Admissibility",
    "Category",
    "Directory",
    "DpoContact",
    "KeywordKey",
    "KeywordMatcher",
    "KeywordSet",
    "KindRule",
    "Ombudsman",
    "ScreeningConfig",
    "ScreeningConfigError",
    "ScreeningRules",
    "normalise",
]

# Ligatures that Unicode decomposition leaves alone but people write both ways ("œuvre" / "oeuvre"). Replaced one by
# one: `str.translate` with a mapping looks every character of the text up in a dict, half of `normalise`'s time.
_LIGATURES = (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae"))
_NON_WORD = re.compile(r"[\W_]+")


class ScreeningConfigError(ValueError):
    """The screening rules or the directory are invalid; each line names the file, the entry and the key."""


def normalise(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: 'Réclamation — SPF!' -> 'reclamation spf'."""
    for ligature, letters in _LIGATURES:
        text = text.replace(ligature, letters)
    decomposed = unicodedata.normalize("NFKD", text)
    # An ASCII text has no combining mark to remove: skip testing it character by character.
    without_marks = decomposed if decomposed.isascii() else \
        "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", without_marks.casefold()).strip()


class _Table(BaseModel):
    # A TOML table: unknown keys are errors (a typo must not pass silently); numbers where a text is expected are
    # taken as text, as the hand-written parser did (`id = 2`, `fr = [2026]`).
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def _keyword(value: str) -> str:
    if not normalise(value.strip().strip("*")):
        raise ValueError(f"empty keyword {value!r}")
    return value


def _labels(value: Any) -> Any:
    """A single text is the French label; a table gives one text per language."""
    return {DEFAULT_LANGUAGE: value} if isinstance(value, str) else value


def _known_kind(value: str) -> str:
    known = sorted(kind.value for kind in Kind)
    if value not in known:
        raise ValueError(f"unknown kind {value!r}; expected one of {known}")
    return value


Labels = Annotated[dict[str, str], BeforeValidator(_labels)]
Id = Annotated[str, Field(min_length=1)]
Keyword = Annotated[str, AfterValidator(_keyword)]


# What a keyword needs to be found: its normalised core, and whether a word boundary must precede it and follow it
# (no `*` at that end). The regular expression it stands for is `(?<!\w)core(?!\w)`, without the lookbehind for a
# leading `*` and without the lookahead for a trailing one.
KeywordKey = tuple[str, bool, bool]
_WORD_CHARACTER = re.compile(r"\w").match  # exactly the `\w` of the expressions above (Unicode, `_` included)


@dataclass(frozen=True)
class _Keyword:
    text: str
    weight: int
    key: KeywordKey

    @classmethod
    def compile(cls, keyword: str) -> _Keyword:
        stripped = keyword.strip()
        core = normalise(stripped.strip("*"))
        return cls(stripped, len(core.split()), (core, not stripped.startswith("*"), not stripped.endswith("*")))


class KeywordMatcher:
    """The keywords of many sets found in one pass over a text: an Aho-Corasick automaton of their cores reports
    every occurrence, overlapping ones included, and each occurrence is checked against the word boundaries around
    it. `scan(text)` is the set of `KeywordKey`s found; `KeywordSet.found_in` reads a set's keywords from it. The
    same answer as searching each keyword's regular expression in turn, in one pass instead of one per keyword."""

    def __init__(self, keyword_sets: Iterable[KeywordSet]) -> None:
        self._automaton: Any = ahocorasick.Automaton()
        for keyword_set in keyword_sets:
            for keyword in keyword_set.compiled:
                core = keyword.key[0]
                self._automaton.add_word(core, core)
        self._empty = len(self._automaton) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def scan(self, normalised_text: str) -> set[KeywordKey]:
        found: set[KeywordKey] = set()
        if self._empty:
            return found
        length = len(normalised_text)
        for last, core in self._automaton.iter(normalised_text):
            if (core, True, True) in found:
                continue  # already found with both boundaries, which satisfies every form of this keyword
            start, after = last - len(core) + 1, last + 1
            bounded_left = start == 0 or not _WORD_CHARACTER(normalised_text, start - 1)
            bounded_right = after == length or not _WORD_CHARACTER(normalised_text, after)
            found.add((core, False, False))
            if bounded_left:
                found.add((core, True, False))
            if bounded_right:
                found.add((core, False, True))
            if bounded_left and bounded_right:
                found.add((core, True, True))
        return found


class KeywordSet(RootModel[dict[str, tuple[Keyword, ...]]]):
    """Keywords by language (`{ fr = ["impôt*"], nl = [...] }`); all languages are searched (citizens mix languages,
    and names are shared)."""

    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)
    root: dict[str, tuple[Keyword, ...]] = {}
    _compiled: tuple[_Keyword, ...] = PrivateAttr(default=())
    _matcher: KeywordMatcher | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        compiled: dict[KeywordKey, _Keyword] = {}
        for words in self.root.values():
            for word in words:
                keyword = _Keyword.compile(word)
                # The same word in several languages ("pension*", "Fedasil") counts once.
                compiled.setdefault(keyword.key, keyword)
        self._compiled = tuple(compiled.values())

    @property
    def by_language(self) -> Mapping[str, tuple[str, ...]]:
        return self.root

    @property
    def compiled(self) -> tuple[_Keyword, ...]:
        return self._compiled

    def found_in(self, found: set[KeywordKey]) -> tuple[tuple[str, ...], int]:
        """(the keywords of this set among `found` — a `KeywordMatcher.scan` of a matcher built with this set —
        as written in the configuration, in its order; their total weight)."""
        words: dict[str, int] = {}
        for keyword in self._compiled:
            if keyword.key in found and keyword.text not in words:
                words[keyword.text] = keyword.weight
        return tuple(words), sum(words.values())

    def matches(self, normalised_text: str) -> tuple[tuple[str, ...], int]:
        """(the keywords found, as written in the configuration; their total weight)."""
        if self._matcher is None:
            self._matcher = KeywordMatcher([self])  # built on first use: most sets are read through the config's
        return self.found_in(self._matcher.scan(normalised_text))


def _pick(labels: Mapping[str, str], language: str | None, fallback: str) -> str:
    primary = (language or DEFAULT_LANGUAGE).split("-")[0].lower()
    return labels.get(primary) or labels.get(DEFAULT_LANGUAGE) or next(iter(labels.values()), fallback)


class Category(_Table):
    """An entry of a taxonomy (kinds, themes, services): an id, labels by language, keywords."""

    id: Id
    labels: Labels = Field(default={}, alias="label")
    keywords: KeywordSet = KeywordSet()

    def label(self, language: str | None = None) -> str:
        return _pick(self.labels, language, self.id)


class KindRule(Category):
    """A kind's keywords; the id is one of `vocabulary.Kind`."""

    id: Annotated[Id, AfterValidator(_known_kind)]


class Ombudsman(_Table):
    """An entry of the directory: who is competent for what, and how the citizen reaches them."""

    id: Id
    names: Labels = Field(alias="name")
    keywords: KeywordSet = KeywordSet()
    country: str = ""
    website: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""
    # Where the contact details were checked (a URL or a document), and whether they were (issue 15): staff see an
    # unverified entry marked so before they send a citizen there.
    source: str = ""
    verified: bool = False

    @model_validator(mode="before")
    @classmethod
    def _id_and_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not (data.get("id") and data.get("name")):
            raise ValueError("id and name are required")
        return data

    def name(self, language: str | None = None) -> str:
        return _pick(self.names, language, self.id)

    def contact(self) -> dict[str, str]:
        pairs = (("website", self.website), ("email", self.email), ("phone", self.phone), ("address", self.address))
        return {key: value for key, value in pairs if value}


class DpoContact(_Table):
    """The Data Protection Officer complaints about personal data go to (GDPR art. 38(4)).

    `email` is the DPO's own address: files routed to the DPO are assigned to it, and it is told of each one at
    registration (issue 15). `addresses` are our intake mailboxes that receive mail for the DPO: a new message sent
    to one of them is routed to the DPO whatever its words. They must differ from `email`: the notifier never writes
    to our own mailboxes, so the DPO would never hear of the file."""

    name: str = ""
    email: str = ""
    addresses: tuple[str, ...] = ()
    keywords: KeywordSet = KeywordSet()

    @field_validator("email")
    @classmethod
    def _email_lowercase(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(address.strip().lower() for address in value))
        odd = [address for address in cleaned if address.count("@") != 1 or " " in address]
        if odd:
            raise ValueError(f"not a mail address: {', '.join(repr(address) for address in odd)}")
        return cleaned

    @model_validator(mode="after")
    def _not_the_dpos_own(self) -> Self:
        if self.email and self.email in self.addresses:
            raise ValueError(f"addresses: {self.email!r} is the DPO's own address (email); list the intake "
                             "mailboxes that receive mail for the DPO, not the DPO's")
        return self

    def addressed_to(self, recipients: Iterable[str]) -> tuple[str, ...]:
        """Which of `recipients` (a message's envelope or To/Cc addresses) are DPO mailboxes, as configured."""
        ours = set(self.addresses)
        found = (recipient.strip().strip("<>").strip().lower() for recipient in recipients)
        return tuple(dict.fromkeys(address for address in found if address in ours))


class Admissibility(_Table):
    """The `[admissibility]` table: what makes a complaint inadmissible (complaints only)."""

    # Facts older than this (back from the receipt date) with no step taken since make a complaint inadmissible.
    max_fact_age_days: NonNegativeInt = 365
    # The citizen must first have contacted the service concerned (the "first line").
    require_first_line: bool = True
    # The citizen must give a postal address (some offices identify a complainant by it, or answer by post only):
    # without one, screening raises a check and proposes to ask for it (issue 15).
    require_postal_address: bool = False
    anonymous_names: KeywordSet = KeywordSet()
    first_line_contacted: KeywordSet = KeywordSet()
    first_line_not_contacted: KeywordSet = KeywordSet()


class _File(_Table):
    """A whole configuration file; `source` (its path) starts every error line."""

    @classmethod
    def from_toml(cls, text: str, source: str) -> Self:
        """The validated file, or `ScreeningConfigError`, one line per problem: `source: location: what is wrong`."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScreeningConfigError(f"{source}: invalid TOML: {exc}") from exc
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            lines = (_describe(problem, data, source) for problem in error.errors())
            raise ScreeningConfigError("\n".join(lines)) from None


class ScreeningRules(_File):
    """The rules file (`screening.toml`); see `screening.example.toml`."""

    self_id: str | None = Field(default=None, alias="self")
    countries: tuple[str, ...] = ()
    # The directory file, relative to the rules file (`screening_files` reads it); None: the shipped example.
    directory: str | None = None
    redirect_limit: NonNegativeInt = 3
    default_kind: Annotated[str, AfterValidator(_known_kind)] = Kind.COMPLAINT.value
    admissibility: Admissibility = Admissibility()
    dpo: DpoContact | None = None
    kinds: tuple[KindRule, ...] = ()
    themes: tuple[Category, ...] = ()
    services: tuple[Category, ...] = ()


class Directory(_File):
    """The directory file (`directory.toml`): one `[[ombudsman]]` table per institution; ids are unique."""

    ombudsman: tuple[Ombudsman, ...] = ()

    @field_validator("ombudsman")
    @classmethod
    def _unique_ids(cls, entries: tuple[Ombudsman, ...]) -> tuple[Ombudsman, ...]:
        ids = [entry.id for entry in entries]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate id(s) {', '.join(duplicates)}")
        return entries


# TOML words for pydantic's error types; the others keep pydantic's own message.
_MESSAGES = {
    "extra_forbidden": "unknown key",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "string_type": "expected a text",
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _location(loc: Iterable[int | str], data: Any) -> str:
    """`themes.taxation.keywords.fr[3]`: an entry of an array of tables is named by its id when it has a plain one."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            entry = data[part] if isinstance(data, list) and part < len(data) else None
            entry_id = entry.get("id") if isinstance(entry, Mapping) else None
            ids = [e.get("id") for e in data if isinstance(e, Mapping)] if isinstance(data, list) else []
            named = isinstance(entry_id, str) and _BARE_KEY.fullmatch(entry_id) and ids.count(entry_id) == 1
            text += f".{entry_id}" if named else f"[{part}]"
            data = entry
        else:
            text += f".{part}" if _BARE_KEY.fullmatch(part) else f'."{part}"'
            data = data.get(part) if isinstance(data, Mapping) else None
    return text.lstrip(".")


def _describe(problem: ErrorDetails, data: Any, source: str) -> str:
    loc = list(problem["loc"])
    if problem["type"] == "missing":
        message = f"missing {loc.pop()}"
    else:
        message = _MESSAGES.get(problem["type"]) or str(problem["msg"]).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
    where = _location(loc, data)
    return f"{source}: {where}: {message}" if where else f"{source}: {message}"


@dataclass(frozen=True)
class ScreeningConfig:
    """Everything `screen` needs: the rules and the directory entries kept for redirection (ours included)."""

    rules: ScreeningRules = ScreeningRules()
    directory: tuple[Ombudsman, ...] = ()

    @property
    def keyword_sets(self) -> tuple[KeywordSet, ...]:
        """Every keyword set `screen` searches the complaint's text for (the anonymous names are read in the
        sender's name instead)."""
        rules = self.rules
        return (
            rules.admissibility.first_line_contacted,
            rules.admissibility.first_line_not_contacted,
            *((rules.dpo.keywords,) if rules.dpo is not None else ()),
            *(kind.keywords for kind in rules.kinds),
            *(theme.keywords for theme in rules.themes),
            *(service.keywords for service in rules.services),
            *(entry.keywords for entry in self.directory),
        )

    @cached_property
    def matcher(self) -> KeywordMatcher:
        """One matcher of every keyword of `keyword_sets`, built once: a text is scanned once for all of them."""
        return KeywordMatcher(self.keyword_sets)

    @classmethod
    def from_toml(
        cls, rules_text: str, directory_text: str = "", *, rules_name: str = "rules", directory_name: str = "directory"
    ) -> ScreeningConfig:
        """Validate both files' text; `rules_name` / `directory_name` (their paths) start each error line."""
        return cls.combine(
            ScreeningRules.from_toml(rules_text, rules_name),
            Directory.from_toml(directory_text, directory_name),
            rules_name=rules_name,
            directory_name=directory_name,
        )

    @classmethod
    def combine(
        cls,
        rules: ScreeningRules,
        directory: Directory,
        *,
        rules_name: str = "rules",
        directory_name: str = "directory",
    ) -> ScreeningConfig:
        """Check what spans both files (our own entry is in the directory) and keep the countries we redirect to."""
        entries = directory.ombudsman
        if rules.self_id is not None and rules.self_id not in {e.id for e in entries}:
            where = f"{rules_name}: self: {rules.self_id!r}"
            raise ScreeningConfigError(f"{where} is not in the directory ({directory_name})")
        # Our own entry stays whatever its country; the others are kept only for the countries we redirect to.
        countries = set(rules.countries)
        kept = tuple(e for e in entries if not countries or e.country in countries or e.id == rules.self_id)
        return cls(rules, kept)

    # What the registry's handlers, views and command line read.
    @property
    def self_id(self) -> str | None:
        return self.rules.self_id

    @property
    def dpo(self) -> DpoContact | None:
        return self.rules.dpo

    @property
    def themes(self) -> tuple[Category, ...]:
        return self.rules.themes

    @property
    def services(self) -> tuple[Category, ...]:
        return self.rules.services

    @property
    def redirect_limit(self) -> int:
        return self.rules.redirect_limit

    def ombudsman(self, ombudsman_id: str) -> Ombudsman:
        for entry in self.directory:
            if entry.id == ombudsman_id:
                return entry
        raise KeyError(ombudsman_id)

    def theme_label(self, theme_id: str, language: str | None = None) -> str:
        return next((t.label(language) for t in self.themes if t.id == theme_id), theme_id)

    def service_label(self, service_id: str, language: str | None = None) -> str:
        return next((s.label(language) for s in self.services if s.id == service_id), service_id)
