"""Annual indicators read from the register: the database rows turned into `indicators.ComplaintRecord`s (dates in
the service's time zone), then the pure computation of `indicators.py`. Used by the API and the CLI."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.registry.indicators import ComplaintRecord, annual_indicators, indicators_csv
from services.registry.repository import RegistryStore

__all__ = ["annual_report", "annual_report_csv"]


def _local(moment: datetime | None, zone: ZoneInfo) -> date | None:
    return moment.astimezone(zone).date() if moment else None


def _record(row: Any, zone: ZoneInfo) -> ComplaintRecord:
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
    )


async def annual_report(store: RegistryStore, year: int, zone: ZoneInfo, *, as_of: date | None = None
                        ) -> dict[str, Any]:
    rows = await store.report_rows(year)
    return annual_indicators((_record(row, zone) for row in rows), year, as_of=as_of)


async def annual_report_csv(store: RegistryStore, year: int, zone: ZoneInfo, *, as_of: date | None = None) -> str:
    return indicators_csv(await annual_report(store, year, zone, as_of=as_of))
