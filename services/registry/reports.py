"""Annual indicators read from the register. Used by the API and the CLI.

`annual_report` lets the database count and group (`RegistryStore.indicator_groups`) and turns the groups into
exactly the figures of `indicators.annual_indicators`, the pure definition: reading every complaint of a year of
100,000 into Python records took about 5 s (issue 4 asks < 2 s). `complaint_record` is how a row reads as the pure
definition's record (dates local to the service's time zone); `tests/registry/test_indicators_sql.py` checks, on
both databases, that the counts equal the pure definition over every row.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from services.registry.mediation import recommendation_store
from services.registry.public import survey
from services.registry.mediation.administrations import answer_statistics
from services.registry.handlers import administrations
from services.registry.indicators import UNSPECIFIED, ComplaintRecord, Tallies, add_actions, indicators_csv, report
from services.registry.repository import IndicatorGroups, RegistryStore, UtcOffsets
from services.registry.vocabulary import Status

__all__ = ["annual_report", "annual_report_csv", "complaint_record", "utc_offsets"]


def _local(moment: datetime | None, zone: ZoneInfo) -> date | None:
    return moment.astimezone(zone).date() if moment else None


def complaint_record(row: Any, zone: ZoneInfo) -> ComplaintRecord:
    return ComplaintRecord(
        number=row.number,
        received_on=row.legal_start,
        channel=row.channel,
        kind=row.kind,
        status=row.status,
        admissibility=row.admissibility,
        inadmissibility_reasons=tuple(row.admissibility_reasons or ()),
        redirected_to=row.redirected_to,
        service=row.service_concerned,
        theme=row.theme,
        outcome=row.outcome,
        outcome_category=row.outcome_category,
        acknowledgment_due=row.acknowledgment_due,
        acknowledged_on=_local(row.acknowledged_at, zone),
        answer_due=row.answer_due,
        answered_on=_local(row.answered_at, zone),
        ended_on=_local(row.closed_at, zone),
        improvement_actions=tuple(row.recommendations or ()),
        data_protection=bool(row.data_protection),
    )


def utc_offsets(zone: ZoneInfo, since: datetime, until: datetime) -> UtcOffsets:
    """The offsets of `zone` from `since` to `until` (aware), to the second, as `zoneinfo` gives them."""

    def offset(second: int) -> int:
        delta = datetime.fromtimestamp(second, zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    first = current = offset(int(since.timestamp()))
    changes: list[tuple[datetime, int]] = []
    hour, last = int(since.timestamp()), int(until.timestamp())
    while hour < last:  # zones change their offset hours apart at the very least
        following = min(hour + 3600, last)
        if offset(following) != current:
            low, high = hour, following  # offset(low) == current != offset(high): the change is in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            current = offset(high)
            changes.append((datetime.fromtimestamp(high, timezone.utc), current))
        hour = following
    return UtcOffsets(first, tuple(changes))


def _json_tuple(text: str | None) -> tuple[Any, ...]:
    """A JSON list column as `complaint_record` reads it (SQL NULL and JSON null are no items)."""
    return tuple(json.loads(text) or ()) if text is not None else ()


def _tallies(groups: IndicatorGroups) -> Tallies:
    """The tallies of `indicators.annual_indicators`, same rules, from the database's groups."""
    t = Tallies()
    for channel, kind, service, theme, admitted, reasons_json, status, redirected_to, count in groups.received:
        t.received += count
        t.by_channel[channel] += count
        t.by_kind[kind] += count
        t.by_service[service or UNSPECIFIED] += count
        t.by_theme[theme or UNSPECIFIED] += count
        t.admissibility[admitted] += count
        if admitted == "inadmissible":
            for reason in _json_tuple(reasons_json):
                t.reasons[reason] += count
        if status == Status.REDIRECTED or redirected_to:
            t.redirected[redirected_to or UNSPECIFIED] += count
        if status == Status.WITHDRAWN:
            t.withdrawn += count
    for outcome, category, count in groups.outcomes:
        t.closed += count
        t.outcomes[outcome] += count
        if category:
            t.categories[category] += count
    for number, text, data_protection in groups.actions:
        add_actions(t, number, _json_tuple(text), data_protection=bool(data_protection))
    t.handling = sorted(days for days, count in groups.handling_days for _ in range(count))
    t.open_this_year = sum(count for this_year, count in groups.open_at_end if this_year)
    t.open_earlier = sum(count for this_year, count in groups.open_at_end if not this_year)
    t.ack_due, t.ack_within = (int(value) for value in groups.acknowledgment)
    t.answer_due, t.answer_within = (int(value) for value in groups.answer)
    return t


async def annual_report(store: RegistryStore, year: int, zone: ZoneInfo, *, as_of: date | None = None
                        ) -> dict[str, Any]:
    year_end = date(year, 12, 31)
    period_end = min(as_of, year_end) if as_of is not None else year_end
    # The window `indicator_groups` needs exact offsets for, with an hour of margin on each side.
    since = datetime.combine(min(date(year, 1, 1), period_end), datetime.min.time(), timezone.utc) - timedelta(days=3)
    until = datetime.combine(year_end, datetime.min.time(), timezone.utc) + timedelta(days=4)
    groups = await store.indicator_groups(year, period_end, utc_offsets(zone, since, until))
    tallies = _tallies(groups)
    # Recommendations issued in the year (issue 15), counted by the database too.
    for addressee, status, general, count in await recommendation_store.indicator_groups(store, year):
        tallies.recommendations[(addressee, status, general)] += count
    indicators = report(tallies, year, period_end)
    # How fast administrations answer requests for their position (issue 15): count, answered, unanswered (overdue),
    # median and 90th percentile of the days taken, in all and by administration. Only in a year with requests: a
    # year without any reads exactly as before (as the recommendations section).
    positions = await administrations.position_outcomes(store, year, period_end, zone)
    if positions:
        indicators["administrations"] = answer_statistics(positions).as_dict()
    # The satisfaction survey's answers of the year (issue 17, pseudonymised), only in a year that has some.
    satisfaction = await survey.indicators(store, year)
    if satisfaction is not None:
        indicators["satisfaction"] = satisfaction
    return indicators


async def annual_report_csv(store: RegistryStore, year: int, zone: ZoneInfo, *, as_of: date | None = None) -> str:
    return indicators_csv(await annual_report(store, year, zone, as_of=as_of))
