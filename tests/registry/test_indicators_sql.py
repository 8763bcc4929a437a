"""The annual indicators counted by the database (`reports.annual_report`) equal, figure for figure, the pure
definition (`indicators.annual_indicators`) over every row of a varied generated register, on SQLite and
PostgreSQL: timestamps around local midnight, the changes to and from summer time and the turn of the year, in
zones east and west of UTC, empty and odd values, and several `as_of` days."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from services.registry.indicators import annual_indicators
from services.registry.models import Complaint
from services.registry.reports import annual_report, complaint_record, utc_offsets
from services.registry.repository import RegistryStore, migrate
from shared.database import create_engine

UTC = timezone.utc
# Instants where a local date is easy to get wrong: DST changes in Brussels and New York, the turn of the year.
TRICKY = [datetime(2026, 3, 29, 0, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
          datetime(2026, 10, 24, 22, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC),
          datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
          datetime(2025, 12, 31, 23, 30, tzinfo=UTC), datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC),
          datetime(2026, 12, 31, 23, 0, tzinfo=UTC), datetime(2027, 1, 1, 4, 59, tzinfo=UTC),
          datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 6, 30, 21, 59, 59, 999999, tzinfo=UTC)]


def _moment(rng: random.Random, near: date) -> datetime | None:
    if rng.random() < 0.2:
        return None
    if rng.random() < 0.25:
        return rng.choice(TRICKY)
    day = near + timedelta(days=rng.randrange(-3, 90))
    # Half of them within two hours of UTC midnight: the local date then differs from the UTC date in most zones.
    minutes = rng.choice([rng.randrange(0, 120), rng.randrange(22 * 60, 24 * 60), rng.randrange(24 * 60)])
    return datetime.combine(day, time(), UTC) + timedelta(minutes=minutes, microseconds=rng.randrange(10**6))


def _register(rng: random.Random, count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    sequences: dict[int, int] = {}
    for _ in range(count):
        legal_start = rng.choice([date(2025, 12, 31), date(2026, 1, 1), date(2026, 12, 31), date(2027, 1, 1)]) \
            if rng.random() < 0.1 else date(2025, 9, 1) + timedelta(days=rng.randrange(520))
        year = legal_start.year
        sequences[year] = sequences.get(year, 0) + 1
        status = rng.choice(["received", "acknowledged", "in_review", "waiting_for_citizen", "answered", "closed",
                             "inadmissible", "redirected", "withdrawn"])
        admissibility = rng.choice(["admissible", "inadmissible", "pending"])
        created = datetime(2026, 11, 24, tzinfo=UTC)
        rows.append({
            "number": f"MED-{year}-{sequences[year]:05d}", "year": year, "sequence": sequences[year],
            "message_key": f"gen-{year}-{sequences[year]}", "kind": rng.choice(["complaint", "question", "idea"]),
            "channel": rng.choice(["email", "letter", "phone", "fax"]),
            "received_at": datetime.combine(legal_start, time(9), UTC), "legal_start": legal_start,
            "complainant_name": "N", "complainant_email": None, "subject_line": "s", "body": "b", "attachments": [],
            "admissibility": admissibility,
            "admissibility_reasons": rng.choice([[], ["anonymous"], ["out_of_competence", "facts_too_old"],
                                                 ["custom_reason"], None]),
            "status": status,
            "acknowledgment_due": rng.choice([legal_start + timedelta(days=rng.randrange(0, 10)), legal_start]),
            "answer_due": legal_start + timedelta(days=rng.choice([0, 1, 30, 45, 90, 120])),
            "answer_extended": False, "paused_days": 0,
            "acknowledged_at": _moment(rng, legal_start), "answered_at": _moment(rng, legal_start),
            "closed_at": _moment(rng, legal_start),
            "outcome": rng.choice([None, None, "founded", "unfounded", "partially_founded", "no_assessment", "x"]),
            "outcome_category": rng.choice([None, "", "staff_attitude", "service_quality", "other"]),
            "service_concerned": rng.choice(["finances", "pensions", "", None]),
            "theme": rng.choice(["billing", "delay", "", None]),
            "redirected_to": rng.choice([None, None, "", "be-energy", "be-federal"]),
            "recommendations": rng.choice([[], [], ["Train staff"], ["Publish dates", "Review letters"], None]),
            "automated": False, "created_at": created, "updated_at": created,
        })
    return rows


@pytest.fixture
async def generated_store(database_url):
    engine = create_engine(database_url)
    await migrate(engine)
    rows = _register(random.Random(4), 700)
    async with engine.begin() as connection:
        await connection.execute(insert(Complaint.__table__), rows)
        # JSON null and an empty list written with a space: the reading must not depend on the spelling.
        await connection.exec_driver_sql("UPDATE complaints SET recommendations = 'null' WHERE sequence = 3")
        await connection.exec_driver_sql("UPDATE complaints SET recommendations = '[ ]' WHERE sequence = 4")
    try:
        yield RegistryStore(engine)
    finally:
        await engine.dispose()


async def _pure(store: RegistryStore, year: int, zone: ZoneInfo, as_of: date | None) -> dict:
    query = select(*(column for column in Complaint.__table__.c)).order_by(Complaint.year, Complaint.sequence)
    async with store.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return annual_indicators((complaint_record(row, zone) for row in rows), year, as_of=as_of)


@pytest.mark.parametrize("zone", ["Europe/Brussels", "America/New_York", "Asia/Kathmandu"])
async def test_sql_counts_equal_the_pure_definition(generated_store, zone):
    tz = ZoneInfo(zone)
    for year, as_of in [(2026, None), (2026, date(2026, 10, 25)), (2026, date(2026, 3, 29)),
                        (2026, date(2025, 12, 31)), (2026, date(2027, 3, 1)), (2025, None), (2027, None)]:
        expected = await _pure(generated_store, year, tz, as_of)
        assert await annual_report(generated_store, year, tz, as_of=as_of) == expected, (year, as_of)
    # The generated register exercises every part of the report (else the comparison would prove little).
    figures = await annual_report(generated_store, 2026, tz)
    assert figures["received"]["total"] > 300 and figures["outcomes"]["closed"] > 50
    assert figures["improvement_actions"]["complaints_with_actions"] > 10
    assert figures["redirected"]["total"] > 10 and figures["admissibility"]["inadmissible_by_reason"]["custom_reason"]
    assert figures["handling_time_days"]["answered"] > 50
    assert figures["open_at_year_end"]["received_earlier"] > 0
    assert 0 < figures["deadlines"]["answer"]["within"] < figures["deadlines"]["answer"]["due"]
    assert json.dumps(figures)


def test_utc_offsets_follow_zoneinfo():
    zone = ZoneInfo("Europe/Brussels")
    offsets = utc_offsets(zone, datetime(2025, 12, 29, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))
    assert offsets.first == 3600
    assert offsets.changes == ((datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 7200),
                               (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 3600))
    assert utc_offsets(ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)) == \
        utc_offsets(ZoneInfo("Etc/UTC"), datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC))
