"""The annual report of a year read from the register: this year's and the previous year's indicators (the same
`reports.annual_report` as the JSON and CSV indicators, so the published figures are the register's), labels from
the screening configuration, and the introduction; for `ombudsdesk report` and the back office."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from services.registry.annual_report.content import Namers, ReportDocument, build_document
from services.registry.reports import annual_report
from services.registry.repository import RegistryStore
from services.registry.screening import ScreeningConfig


def namers_for(screening: ScreeningConfig | None, language: str) -> Namers:
    if screening is None:
        return Namers(language)

    def ombudsman(ombudsman_id: str) -> str:
        try:
            return screening.ombudsman(ombudsman_id).name(language)
        except KeyError:
            return ombudsman_id

    return Namers(language,
                  service=lambda value: screening.service_label(value, language),
                  theme=lambda value: screening.theme_label(value, language),
                  ombudsman=ombudsman)


async def annual_report_document(store: RegistryStore, year: int, zone: ZoneInfo, *, language: str,
                                 organisation: str, introduction: str = "", screening: ScreeningConfig | None = None,
                                 today: date | None = None) -> ReportDocument:
    """The report of `year`; a year not over yet counts open files as of `today` (as the indicators do)."""
    as_of = today if today is not None and year == today.year else None
    current = await annual_report(store, year, zone, as_of=as_of)
    previous = await annual_report(store, year - 1, zone)
    # A previous year with nothing received and nothing closed was not a year of this register: no comparison.
    if not (previous["received"]["total"] or previous["outcomes"]["closed"]):
        previous = None
    return build_document(current, previous, language=language, organisation=organisation,
                          introduction=introduction, namers=namers_for(screening, language))
