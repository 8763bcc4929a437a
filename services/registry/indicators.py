"""Annual indicators of the register for the annual report: a pure computation over plain records.

Interface:

- `ComplaintRecord` — one complaint as the database adapter reads it (frozen dataclass of plain values);
- `annual_indicators(records, year, *, as_of=None) -> dict` — JSON-able; `as_of` (default 31 December of `year`)
  is "today" when computing the current year, so that deadlines not yet due are not counted as missed;
- `indicators_csv(indicators) -> str` — the same figures as CSV rows `section,key,value`; a text cell that a
  spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, CR first) is escaped with a leading quote
  (`shared.untrusted_text.csv_cell`): improvement actions, themes and services are typed by people.

Which complaints each figure covers (the usual conventions of Belgian and French ombudsman annual reports):
- received, by channel / kind / service / theme, admissibility and its reasons, redirected, withdrawn:
  complaints **received** in the year (`received_on`, the legal start date);
- outcomes, founded categories and improvement actions: complaints **closed** in the year (`ended_on` in the year).
  The actions are counted for every file, but listed (text and file number) only for files that are not
  data-protection complaints: those are the DPO's alone (issue 16), and the indicators go to whoever reads them (the
  API, the CLI, the CSV) — a year with such actions says how many were left out (`not_listed_data_protection`);
- handling time (calendar days from receipt to answer; median, and 90th percentile by the nearest-rank method):
  complaints **answered** in the year;
- share acknowledged / answered within the deadline: deadlines that **fell due** in the year (up to `as_of`). A
  complaint that ended otherwise (inadmissible, redirected, withdrawn) on or before its answer deadline counts as
  answered in time; one still unanswered after its deadline counts as late;
- a file merged into another (status "merged", issue 13) was received and counts so; it ended on the day of the
  merge (not open at year end, and like any file ended otherwise, its answer deadline counts as met when merged
  before it: the citizen's request lives on, with its own deadline, in the file it was merged into);
- recommendations (issue 15): those **issued** in the year (`RecommendationRecord.issued_on`), file-tied or general,
  by their follow-up status now and by addressee (the administration's name; `unspecified` when none was named);
- open at year end: every complaint received by 31 December (or `as_of`, if earlier) and not ended by then,
  whatever its year of receipt (so pass the earlier complaints still open at the start of the year too; extra
  records are harmless).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.registry.vocabulary import FoundedCategory, InadmissibilityReason, Kind, Outcome, Status
from shared.events import Channel
from shared.untrusted_text import csv_cell

__all__ = ["ComplaintRecord", "RecommendationRecord", "Tallies", "add_actions", "annual_indicators", "indicators_csv",
           "nearest_rank_percentile", "report"]

UNSPECIFIED = "unspecified"


@dataclass(frozen=True)
class ComplaintRecord:
    number: str
    received_on: date
    channel: str
    kind: str
    status: str
    admissibility: str = "pending"  # "admissible", "inadmissible" or "pending"
    inadmissibility_reasons: tuple[str, ...] = ()
    redirected_to: str | None = None  # directory id of the ombudsman it was sent to
    service: str | None = None
    theme: str | None = None
    outcome: str | None = None
    outcome_category: str | None = None
    acknowledgment_due: date | None = None
    acknowledged_on: date | None = None
    answer_due: date | None = None
    answered_on: date | None = None
    ended_on: date | None = None  # the day it became closed, inadmissible, redirected or withdrawn
    improvement_actions: tuple[str, ...] = ()
    data_protection: bool = False  # a data-protection complaint: its actions are counted, not listed


@dataclass(frozen=True)
class RecommendationRecord:
    """A recommendation as the indicators count it (issue 15): the day it was made, its follow-up status now, its
    addressee's name, and whether it is general (tied to no file)."""

    issued_on: date
    status: str
    addressee: str = ""
    general: bool = False


def nearest_rank_percentile(values: list[int], percent: float) -> int | None:
    """The smallest value such that at least `percent` % of the values are <= it (no interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _counts(counter: Counter[str], known: Iterable[str] = ()) -> dict[str, int]:
    """Known keys always present (stable report columns), then the others, sorted."""
    result = {key: counter.get(key, 0) for key in known}
    for key in sorted(counter):
        result.setdefault(key, counter[key])
    return result


def _share(within: int, due: int) -> dict[str, Any]:
    return {"due": due, "within": within, "share": round(within / due, 4) if due else None}


@dataclass
class Tallies:
    """What the annual report counts, filled either from plain records (`annual_indicators`, the definition) or from
    the database's groups (`reports.annual_report`); `report` lays both out the same way."""

    received: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_service: Counter[str] = field(default_factory=Counter)
    by_theme: Counter[str] = field(default_factory=Counter)
    admissibility: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    redirected: Counter[str] = field(default_factory=Counter)
    withdrawn: int = 0
    closed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    actions: list[dict[str, str]] = field(default_factory=list)  # listed: those of files other than DP ones
    unlisted_actions: int = 0  # the actions of data-protection files: counted in the total, never listed
    with_actions: int = 0
    handling: list[int] = field(default_factory=list)
    open_this_year: int = 0
    open_earlier: int = 0
    ack_due: int = 0
    ack_within: int = 0
    answer_due: int = 0
    answer_within: int = 0
    # Recommendations issued in the year (issue 15), by (addressee, follow-up status, general).
    recommendations: Counter[tuple[str, str, bool]] = field(default_factory=Counter)


def annual_indicators(records: Iterable[ComplaintRecord], year: int, *, as_of: date | None = None,
                      recommendations: Iterable[RecommendationRecord] = ()) -> dict[str, Any]:
    start, year_end = date(year, 1, 1), date(year, 12, 31)
    period_end = min(as_of, year_end) if as_of is not None else year_end
    t = Tallies()
    for recommendation in recommendations:
        if start <= recommendation.issued_on <= year_end:
            t.recommendations[(recommendation.addressee, recommendation.status, recommendation.general)] += 1
    for record in records:
        in_year = start <= record.received_on <= year_end
        if in_year:
            t.received += 1
            t.by_channel[record.channel] += 1
            t.by_kind[record.kind] += 1
            t.by_service[record.service or UNSPECIFIED] += 1
            t.by_theme[record.theme or UNSPECIFIED] += 1
            t.admissibility[record.admissibility] += 1
            if record.admissibility == "inadmissible":
                t.reasons.update(record.inadmissibility_reasons)
            if record.status == Status.REDIRECTED or record.redirected_to:
                t.redirected[record.redirected_to or UNSPECIFIED] += 1
            if record.status == Status.WITHDRAWN:
                t.withdrawn += 1

        ended_in_year = record.ended_on is not None and start <= record.ended_on <= year_end
        if ended_in_year and record.outcome is not None:
            t.closed += 1
            t.outcomes[record.outcome] += 1
            if record.outcome_category:
                t.categories[record.outcome_category] += 1
            add_actions(t, record.number, record.improvement_actions, data_protection=record.data_protection)

        if record.answered_on is not None and start <= record.answered_on <= year_end:
            t.handling.append((record.answered_on - record.received_on).days)

        if record.received_on <= period_end and (record.ended_on is None or record.ended_on > period_end):
            if in_year:
                t.open_this_year += 1
            else:
                t.open_earlier += 1

        if record.acknowledgment_due is not None and start <= record.acknowledgment_due <= period_end:
            t.ack_due += 1
            if record.acknowledged_on is not None and record.acknowledged_on <= record.acknowledgment_due:
                t.ack_within += 1
        if record.answer_due is not None and start <= record.answer_due <= period_end:
            t.answer_due += 1
            responded = record.answered_on or record.ended_on
            if responded is not None and responded <= record.answer_due:
                t.answer_within += 1
    return report(t, year, period_end)


def add_actions(t: Tallies, number: str, actions: Sequence[str], *, data_protection: bool) -> None:
    """Tally one closed file's improvement actions: counted always; listed with the file's number only when it is no
    data-protection file (its texts and number are the DPO's alone, and the list reaches every indicators reader)."""
    if not actions:
        return
    t.with_actions += 1
    if data_protection:
        t.unlisted_actions += len(actions)
    else:
        t.actions.extend({"number": number, "action": action} for action in actions)


def _improvement_actions(t: Tallies) -> dict[str, Any]:
    section: dict[str, Any] = {"total": len(t.actions) + t.unlisted_actions, "complaints_with_actions": t.with_actions}
    if t.unlisted_actions:  # only then: a year without any reads exactly as before
        section["not_listed_data_protection"] = t.unlisted_actions
    section["list"] = t.actions
    return section


def report(t: Tallies, year: int, period_end: date) -> dict[str, Any]:
    """The annual indicators as a JSON-able dictionary: stable keys and order, known values always present. The
    recommendations section (issue 15) is there when the year has recommendations: a year without any reads exactly
    as it did before they were recorded (reports already published, scripts reading them)."""
    figures = {
        "year": year,
        "as_of": period_end.isoformat(),
        "received": {
            "total": t.received,
            "by_channel": _counts(t.by_channel, (c.value for c in Channel)),
            "by_kind": _counts(t.by_kind, (k.value for k in Kind)),
        },
        "admissibility": {
            "admissible": t.admissibility.get("admissible", 0),
            "inadmissible": t.admissibility.get("inadmissible", 0),
            "pending": t.admissibility.get("pending", 0),
            "inadmissible_by_reason": _counts(t.reasons, (r.value for r in InadmissibilityReason)),
        },
        "redirected": {"total": sum(t.redirected.values()), "by_ombudsman": _counts(t.redirected)},
        "withdrawn": t.withdrawn,
        "by_service": _counts(t.by_service),
        "by_theme": _counts(t.by_theme),
        "outcomes": {
            "closed": t.closed,
            "by_outcome": _counts(t.outcomes, (o.value for o in Outcome)),
            "founded_by_category": _counts(t.categories, (c.value for c in FoundedCategory)),
        },
        "open_at_year_end": {
            "total": t.open_this_year + t.open_earlier,
            "received_this_year": t.open_this_year,
            "received_earlier": t.open_earlier,
        },
        "handling_time_days": {
            "answered": len(t.handling),
            "median": round(float(statistics.median(t.handling)), 1) if t.handling else None,
            "p90": nearest_rank_percentile(t.handling, 90),
        },
        "deadlines": {
            "acknowledgment": _share(t.ack_within, t.ack_due),
            "answer": _share(t.answer_within, t.answer_due),
        },
        "improvement_actions": _improvement_actions(t),
    }
    if t.recommendations:
        figures["recommendations"] = _recommendations(t.recommendations)
    return figures


# The follow-up statuses, in the report's order (`recommendations.FollowUp`; not imported: this module stays free of
# the register's other rules).
FOLLOW_UP_STATUSES = ("pending", "accepted", "implemented", "refused")


def _recommendations(counted: Counter[tuple[str, str, bool]]) -> dict[str, Any]:
    """Recommendations issued in the year: how many, how many general, by status, and by addressee and status."""
    by_status: Counter[str] = Counter()
    by_service: dict[str, Counter[str]] = {}
    for (addressee, status, _general), count in counted.items():
        by_status[status] += count
        by_service.setdefault(addressee or UNSPECIFIED, Counter())[status] += count
    return {
        "total": sum(counted.values()),
        "general": sum(count for (_a, _s, general), count in counted.items() if general),
        "by_status": _counts(by_status, FOLLOW_UP_STATUSES),
        "by_service": {service: {"total": sum(statuses.values()), **_counts(statuses, FOLLOW_UP_STATUSES)}
                       for service, statuses in sorted(by_service.items())},
    }


def _rows(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _rows(f"{prefix}.{key}" if prefix else str(key), item)
    else:
        yield prefix, "" if value is None else value


def indicators_csv(indicators: Mapping[str, Any]) -> str:
    """CSV (RFC 4180, CRLF line ends) with a header `section,key,value`; nested figures get dotted keys, and each
    improvement action is a row `improvement_actions,action:<number>,<text>`."""
    out = io.StringIO()
    csv_writer = csv.writer(out)

    def writerow(cells: Iterable[Any]) -> None:
        csv_writer.writerow([csv_cell(cell) for cell in cells])

    writerow(["section", "key", "value"])
    for section, value in indicators.items():
        if section == "improvement_actions":
            for key, item in value.items():
                if key != "list":
                    writerow([section, key, item])
            for action in value.get("list", ()):
                writerow([section, f"action:{action['number']}", action["action"]])
        elif isinstance(value, Mapping):
            for key, item in _rows("", value):
                writerow([section, key, item])
        else:
            writerow([section, "", "" if value is None else value])
    return out.getvalue()
