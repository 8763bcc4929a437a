"""What the published annual report says, from the annual indicators of a year and of the year before (pure, no I/O).

The indicators (`indicators.report`: stable keys, known values always present) become sections for people: a title,
a sentence or two with the year's figures, and tables of counts with the previous year beside them. Every chart of
the rendered report is drawn from one of these tables, and the table is printed next to it (a chart alone says
nothing to a screen reader, and a reader who wants the figures must not measure bars). Labels come from the
register's vocabularies and the screening configuration, in the reader's language; headings and sentences from
`messages.toml` beside this module.

A section whose data the register does not hold (satisfaction before any survey, recommendations before any) is left
out rather than shown with zeros that would read as "measured: none".
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from services.registry.vocabulary import LANGUAGES, label, primary_language

# A table longer than this keeps its largest rows and sums the others into one row (services, themes).
LONGEST_TABLE = 15
OTHERS = "__others__"


@dataclass(frozen=True)
class Row:
    label: str
    value: int | float | None
    previous: int | float | None = None


@dataclass(frozen=True)
class Table:
    """A table of figures: `caption` names it; `unit` is "count", "percent" or "days"."""

    key: str
    caption: str
    rows: tuple[Row, ...]
    unit: str = "count"
    chart: bool = True

    @property
    def has_previous(self) -> bool:
        return any(row.previous is not None for row in self.rows)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    summary: str
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class ReportDocument:
    year: int
    language: str
    title: str
    organisation: str
    introduction: str
    as_of: str
    sections: tuple[Section, ...]
    labels: Mapping[str, str] = field(default_factory=dict)  # column headings, notes: the renderer's words


@cache
def _catalogue() -> dict[str, dict[str, str]]:
    text = resources.files(__package__).joinpath("messages.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def message(key: str, language: str, **values: Any) -> str:
    """A heading or sentence of the report in `language` (French when a translation is missing)."""
    entry = _catalogue()[key]
    text = entry.get(primary_language(language)) or entry["fr"]
    return text.format(**values) if values else text


def _number(value: int | float | None, language: str) -> str:
    if value is None:
        return "–"
    text = f"{value:,.1f}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value):,}"
    # Thin non-breaking space between thousands, comma for decimals: how FR/NL/DE write numbers; EN keeps its own.
    if primary_language(language) != "en":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def format_value(value: int | float | None, unit: str, language: str) -> str:
    if value is None:
        return "–"
    if unit == "percent":
        return f"{_number(round(value * 100, 1), language)} %"
    return _number(value, language)


def _rows(current: Mapping[str, Any], previous: Mapping[str, Any] | None, name: Callable[[str], str],
          *, longest: int = LONGEST_TABLE, others_label: str = "") -> tuple[Row, ...]:
    """One row per key of this year's counts (and of last year's, so a category that disappeared still shows), in
    the order the indicators give known values; beyond `longest` rows, the smallest are summed into one."""
    previous = previous or {}
    keys = list(current) + [key for key in previous if key not in current]
    rows = [Row(name(key), current.get(key, 0), previous.get(key, 0) if previous else None) for key in keys]
    if len(rows) > longest:
        ranked = sorted(rows, key=lambda row: -(row.value or 0))
        kept, rest = ranked[: longest - 1], ranked[longest - 1:]
        others = Row(others_label, sum(row.value or 0 for row in rest),
                     sum(row.previous or 0 for row in rest) if previous else None)
        rows = [row for row in rows if row in kept] + [others]
    return tuple(rows)


def _get(indicators: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = indicators
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True)
class Namers:
    """How identifiers read in the reader's language: vocabularies, and the screening configuration's services,
    themes and ombudsmen (their labels are configured, not fixed)."""

    language: str
    service: Callable[[str], str] = lambda value: value
    theme: Callable[[str], str] = lambda value: value
    ombudsman: Callable[[str], str] = lambda value: value

    def vocabulary(self, name: str | None = None) -> Callable[[str], str]:
        def named(value: str) -> str:
            if value == "unspecified":
                return message("unspecified", self.language)
            return label(value, self.language, name)

        return named

    def configured(self, namer: Callable[[str], str]) -> Callable[[str], str]:
        def named(value: str) -> str:
            return message("unspecified", self.language) if value == "unspecified" else namer(value)

        return named


def build_document(current: Mapping[str, Any], previous: Mapping[str, Any] | None, *, language: str,
                   organisation: str, introduction: str = "", namers: Namers | None = None) -> ReportDocument:
    """The report of `current`'s year; `previous` (the year before's indicators, or None) fills the comparison."""
    language = primary_language(language)
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: one of {', '.join(LANGUAGES)}")
    namers = namers or Namers(language)
    year = int(current["year"])
    say = lambda key, **values: message(key, language, **values)  # noqa: E731 - a short local alias reads best
    others = say("others")

    def table(key: str, path: tuple[str, ...], name: Callable[[str], str], **options: Any) -> Table:
        return Table(key, say(f"table.{key}"), _rows(_get(current, *path) or {}, _get(previous, *path), name,
                                                      others_label=others), **options)

    received = int(_get(current, "received", "total") or 0)
    sections: list[Section] = [
        Section("received", say("section.received"),
                say("summary.received", year=year, total=_number(received, language),
                    previous=format_value(_get(previous, "received", "total"), "count", language))
                if previous else say("summary.received_first_year", year=year, total=_number(received, language)),
                (table("by_channel", ("received", "by_channel"), namers.vocabulary("channel")),
                 table("by_kind", ("received", "by_kind"), namers.vocabulary()))),
    ]
    admissibility = current.get("admissibility", {})
    sections.append(Section(
        "admissibility", say("section.admissibility"),
        say("summary.admissibility", admissible=_number(admissibility.get("admissible", 0), language),
            inadmissible=_number(admissibility.get("inadmissible", 0), language)),
        (Table("admissibility", say("table.admissibility"), _rows(
            {key: admissibility.get(key, 0) for key in ("admissible", "inadmissible", "pending")},
            {key: _get(previous, "admissibility", key) or 0 for key in ("admissible", "inadmissible", "pending")}
            if previous else None, namers.vocabulary("admissibility"))),
         table("inadmissible_by_reason", ("admissibility", "inadmissible_by_reason"), namers.vocabulary()))))
    sections.append(Section(
        "redirected", say("section.redirected"),
        say("summary.redirected", total=_number(_get(current, "redirected", "total") or 0, language)),
        (table("by_ombudsman", ("redirected", "by_ombudsman"), namers.configured(namers.ombudsman)),)))
    sections.append(Section(
        "outcomes", say("section.outcomes"),
        say("summary.outcomes", closed=_number(_get(current, "outcomes", "closed") or 0, language)),
        (table("by_outcome", ("outcomes", "by_outcome"), namers.vocabulary()),
         table("founded_by_category", ("outcomes", "founded_by_category"), namers.vocabulary()))))
    sections.append(_deadlines_section(current, previous, language))
    sections.append(Section(
        "services", say("section.services"), say("summary.services"),
        (table("by_service", ("by_service",), namers.configured(namers.service)),
         table("by_theme", ("by_theme",), namers.configured(namers.theme)))))
    recommendations = _recommendations_section(current, previous, language, namers)
    if recommendations is not None:
        sections.append(recommendations)
    satisfaction = _satisfaction_section(current, previous, language)
    if satisfaction is not None:
        sections.append(satisfaction)
    return ReportDocument(
        year=year, language=language, title=say("title", year=year), organisation=organisation,
        introduction=introduction.strip(), as_of=str(current.get("as_of", "")), sections=tuple(sections),
        labels={key: say(f"label.{key}", year=year) for key in
                ("category", "this_year", "previous_year", "contents", "data_table", "as_of", "chart_of",
                 "no_data")},
    )


def _deadlines_section(current: Mapping[str, Any], previous: Mapping[str, Any] | None, language: str) -> Section:
    say = lambda key, **values: message(key, language, **values)  # noqa: E731

    def share(path: tuple[str, ...]) -> tuple[float | None, float | None]:
        return _get(current, *path), _get(previous, *path) if previous else None

    ack, ack_before = share(("deadlines", "acknowledgment", "share"))
    answer, answer_before = share(("deadlines", "answer", "share"))
    median, median_before = share(("handling_time_days", "median"))
    p90, p90_before = share(("handling_time_days", "p90"))
    return Section(
        "deadlines", say("section.deadlines"),
        say("summary.deadlines", answer=format_value(answer, "percent", language),
            median=format_value(median, "days", language))
        if answer is not None and median is not None else say("summary.deadlines_none"),
        (Table("deadlines_met", say("table.deadlines_met"),
               (Row(say("row.acknowledgment_in_time"), ack, ack_before),
                Row(say("row.answer_in_time"), answer, answer_before)), unit="percent"),
         Table("handling_time", say("table.handling_time"),
               (Row(say("row.median_days"), median, median_before),
                Row(say("row.p90_days"), p90, p90_before)), unit="days")))


def _recommendations_section(current: Mapping[str, Any], previous: Mapping[str, Any] | None, language: str,
                             namers: Namers) -> Section | None:
    """Recommendations by follow-up status and by addressee when the register follows them up, else the count of
    improvement actions drawn from complaints; nothing when there were none."""
    say = lambda key, **values: message(key, language, **values)  # noqa: E731
    followed = current.get("recommendations")
    tables: list[Table] = []
    if isinstance(followed, Mapping) and (followed.get("total") or 0) > 0:
        for key in ("by_status", "by_service"):
            counts = followed.get(key)
            if isinstance(counts, Mapping) and counts:
                name = namers.vocabulary("recommendation_status") if key == "by_status" else \
                    namers.configured(namers.service)
                tables.append(Table(f"recommendations_{key}", say(f"table.recommendations_{key}"),
                                    _rows(_totals(counts), _totals(_get(previous, "recommendations", key)), name,
                                          others_label=say("others"))))
        total = followed.get("total") or 0
    else:
        total = _get(current, "improvement_actions", "total") or 0
        if not total:
            return None
        tables.append(Table("improvement_actions", say("table.improvement_actions"),
                            (Row(say("row.improvement_actions"), total,
                                 _get(previous, "improvement_actions", "total") if previous else None),
                             Row(say("row.complaints_with_actions"),
                                 _get(current, "improvement_actions", "complaints_with_actions") or 0,
                                 _get(previous, "improvement_actions", "complaints_with_actions")
                                 if previous else None)), chart=False))
    return Section("recommendations", say("section.recommendations"),
                   say("summary.recommendations", total=_number(total, language)), tuple(tables))


def _totals(counts: Any) -> dict[str, Any]:
    """A count per row: `recommendations.by_service` holds each addressee's counts by status, and its row (and bar)
    is the addressee's total (no counts, e.g. no previous year: no rows)."""
    if not isinstance(counts, Mapping):
        return {}
    return {key: value.get("total", 0) if isinstance(value, Mapping) else value for key, value in counts.items()}


def _satisfaction_section(current: Mapping[str, Any], previous: Mapping[str, Any] | None,
                          language: str) -> Section | None:
    """Average answers of the satisfaction survey (issue 17) when the register holds any."""
    satisfaction = current.get("satisfaction")
    if not isinstance(satisfaction, Mapping) or not satisfaction.get("responses"):
        return None
    say = lambda key, **values: message(key, language, **values)  # noqa: E731
    averages = satisfaction.get("average_by_question") or {}
    before = _get(previous, "satisfaction", "average_by_question") or {}
    rows = tuple(Row(say(f"question.{key}") if f"question.{key}" in _catalogue() else key, value,
                     before.get(key) if previous else None) for key, value in averages.items())
    return Section("satisfaction", say("section.satisfaction"),
                   say("summary.satisfaction", responses=_number(satisfaction["responses"], language)),
                   (Table("satisfaction", say("table.satisfaction"), rows, unit="score"),))
