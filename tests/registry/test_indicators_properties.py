"""Property-based tests of the annual indicators: the breakdowns add up, whatever the register."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.registry.indicators import ComplaintRecord, annual_indicators

YEAR = 2026
day = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
offset = st.one_of(st.none(), st.integers(min_value=0, max_value=120))


@st.composite
def records(draw: st.DrawFn) -> ComplaintRecord:
    received = draw(day)

    def after() -> date | None:
        days = draw(offset)
        return None if days is None else received + timedelta(days=days)

    admissibility = draw(st.sampled_from(["admissible", "inadmissible", "pending"]))
    return ComplaintRecord(
        number=f"MED-{received.year}-{draw(st.integers(1, 99999)):05d}",
        received_on=received,
        channel=draw(st.sampled_from(["email", "letter", "web_form", "in_person", "phone"])),
        kind=draw(st.sampled_from(["complaint", "suggestion", "compliment", "question"])),
        status=draw(st.sampled_from(["received", "in_review", "closed", "redirected", "withdrawn"])),
        admissibility=admissibility,
        inadmissibility_reasons=tuple(draw(st.lists(st.sampled_from(["anonymous", "facts_too_old"]), max_size=2)))
        if admissibility == "inadmissible"
        else (),
        service=draw(st.sampled_from([None, "fps-finance", "onem"])),
        theme=draw(st.sampled_from([None, "taxation"])),
        outcome=draw(st.sampled_from([None, "founded", "unfounded"])),
        acknowledgment_due=received + timedelta(days=7),
        acknowledged_on=after(),
        answer_due=received + timedelta(days=45),
        answered_on=after(),
        ended_on=after(),
        improvement_actions=tuple(draw(st.lists(st.sampled_from(["a", "b"]), max_size=2))),
    )


@given(st.lists(records(), max_size=60), st.one_of(st.none(), day))
def test_breakdowns_add_up(register: list[ComplaintRecord], as_of: date | None) -> None:
    figures = annual_indicators(register, YEAR, as_of=as_of)
    in_year = [r for r in register if r.received_on.year == YEAR]
    total = figures["received"]["total"]
    assert total == len(in_year)
    assert sum(figures["received"]["by_channel"].values()) == total
    assert sum(figures["received"]["by_kind"].values()) == total
    assert sum(figures["by_service"].values()) == total
    assert sum(figures["by_theme"].values()) == total
    adm = figures["admissibility"]
    assert adm["admissible"] + adm["inadmissible"] + adm["pending"] == total
    assert sum(figures["outcomes"]["by_outcome"].values()) == figures["outcomes"]["closed"]
    opened = figures["open_at_year_end"]
    assert opened["total"] == opened["received_this_year"] + opened["received_earlier"]
    assert opened["received_this_year"] <= total
    for deadline in figures["deadlines"].values():
        assert 0 <= deadline["within"] <= deadline["due"]
        assert deadline["share"] is None or 0.0 <= deadline["share"] <= 1.0
    handling = figures["handling_time_days"]
    if handling["answered"]:
        assert 0 <= handling["median"] <= handling["p90"] <= 120
    actions = figures["improvement_actions"]
    assert actions["total"] == len(actions["list"])
    assert actions["complaints_with_actions"] <= figures["outcomes"]["closed"]
