"""Annual indicators over a small register whose figures were computed by hand (see the comments)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from services.registry.indicators import (
    ComplaintRecord,
    annual_indicators,
    indicators_csv,
    nearest_rank_percentile,
)

D = date

REGISTER = [
    # Received 5 Jan, answered 10 Feb (36 days, in time), closed founded with one improvement action.
    ComplaintRecord(
        "MED-2026-00001",
        D(2026, 1, 5),
        "email",
        "complaint",
        "closed",
        "admissible",
        service="fps-finance",
        theme="taxation",
        outcome="founded",
        outcome_category="file_processing",
        acknowledgment_due=D(2026, 1, 12),
        acknowledged_on=D(2026, 1, 7),
        answer_due=D(2026, 2, 19),
        answered_on=D(2026, 2, 10),
        ended_on=D(2026, 2, 15),
        improvement_actions=("Publish the refund calendar",),
    ),
    # Acknowledged late, answered late (47 days), partially founded, two actions.
    ComplaintRecord(
        "MED-2026-00002",
        D(2026, 2, 1),
        "letter",
        "complaint",
        "closed",
        "admissible",
        service="fps-finance",
        theme="taxation",
        outcome="partially_founded",
        outcome_category="staff_attitude",
        acknowledgment_due=D(2026, 2, 6),
        acknowledged_on=D(2026, 2, 9),
        answer_due=D(2026, 3, 18),
        answered_on=D(2026, 3, 20),
        ended_on=D(2026, 3, 25),
        improvement_actions=("Train counter staff", "Review letter templates"),
    ),
    # A question answered in 2 days, closed without assessment.
    ComplaintRecord(
        "MED-2026-00003",
        D(2026, 3, 10),
        "web_form",
        "question",
        "closed",
        "admissible",
        outcome="no_assessment",
        acknowledgment_due=D(2026, 3, 17),
        acknowledged_on=D(2026, 3, 10),
        answer_due=D(2026, 4, 24),
        answered_on=D(2026, 3, 12),
        ended_on=D(2026, 3, 12),
    ),
    # Inadmissible for two reasons, decided before the answer deadline (counts as answered in time).
    ComplaintRecord(
        "MED-2026-00004",
        D(2026, 4, 1),
        "email",
        "complaint",
        "inadmissible",
        "inadmissible",
        inadmissibility_reasons=("anonymous", "first_line_not_contacted"),
        acknowledgment_due=D(2026, 4, 9),
        acknowledged_on=D(2026, 4, 2),
        answer_due=D(2026, 5, 18),
        ended_on=D(2026, 4, 3),
    ),
    # Redirected to the energy ombudsman.
    ComplaintRecord(
        "MED-2026-00005",
        D(2026, 5, 4),
        "phone",
        "complaint",
        "redirected",
        "inadmissible",
        inadmissibility_reasons=("out_of_competence",),
        redirected_to="be-energy",
        acknowledgment_due=D(2026, 5, 11),
        acknowledged_on=D(2026, 5, 5),
        answer_due=D(2026, 6, 18),
        ended_on=D(2026, 5, 6),
    ),
    # Withdrawn after its answer deadline, never answered: late.
    ComplaintRecord(
        "MED-2026-00006",
        D(2026, 6, 1),
        "email",
        "complaint",
        "withdrawn",
        "admissible",
        service="fps-justice",
        theme="justice",
        acknowledgment_due=D(2026, 6, 8),
        acknowledged_on=D(2026, 6, 3),
        answer_due=D(2026, 7, 16),
        ended_on=D(2026, 7, 20),
    ),
    # Still in review at year end, answer deadline of 17 Dec missed.
    ComplaintRecord(
        "MED-2026-00007",
        D(2026, 11, 2),
        "email",
        "complaint",
        "in_review",
        "admissible",
        service="fps-finance",
        theme="taxation",
        acknowledgment_due=D(2026, 11, 9),
        acknowledged_on=D(2026, 11, 4),
        answer_due=D(2026, 12, 17),
    ),
    # A suggestion received 20 Dec, not yet acknowledged (due 29 Dec: missed); answer due in 2027.
    ComplaintRecord(
        "MED-2026-00008",
        D(2026, 12, 20),
        "in_person",
        "suggestion",
        "received",
        "pending",
        acknowledgment_due=D(2026, 12, 29),
        answer_due=D(2027, 2, 3),
    ),
    # Received in 2025, answered 5 Jan 2026 on its deadline (46 days), closed unfounded in 2026.
    ComplaintRecord(
        "MED-2025-00120",
        D(2025, 11, 20),
        "email",
        "complaint",
        "closed",
        "admissible",
        service="fps-finance",
        theme="taxation",
        outcome="unfounded",
        acknowledgment_due=D(2025, 11, 27),
        acknowledged_on=D(2025, 11, 21),
        answer_due=D(2026, 1, 5),
        answered_on=D(2026, 1, 5),
        ended_on=D(2026, 1, 10),
    ),
    # Received in 2025, still waiting for the citizen at the end of 2026, answer deadline (with pauses) missed.
    ComplaintRecord(
        "MED-2025-00200",
        D(2025, 12, 15),
        "letter",
        "complaint",
        "waiting_for_citizen",
        "admissible",
        acknowledgment_due=D(2025, 12, 22),
        acknowledged_on=D(2025, 12, 18),
        answer_due=D(2026, 4, 15),
    ),
    # Received in 2027: no part of 2026.
    ComplaintRecord(
        "MED-2027-00001",
        D(2027, 1, 4),
        "email",
        "complaint",
        "received",
        "pending",
        acknowledgment_due=D(2027, 1, 11),
        answer_due=D(2027, 2, 18),
    ),
]


@pytest.fixture(scope="module")
def figures() -> dict:
    return annual_indicators(REGISTER, 2026)


def test_received(figures: dict) -> None:
    assert figures["year"] == 2026 and figures["as_of"] == "2026-12-31"
    assert figures["received"] == {
        "total": 8,
        "by_channel": {"email": 4, "letter": 1, "web_form": 1, "in_person": 1, "phone": 1},
        "by_kind": {"complaint": 6, "suggestion": 1, "compliment": 0, "question": 1},
    }


def test_admissibility_and_redirections(figures: dict) -> None:
    assert figures["admissibility"] == {
        "admissible": 5,
        "inadmissible": 2,
        "pending": 1,
        "inadmissible_by_reason": {
            "anonymous": 1,
            "facts_too_old": 0,
            "first_line_not_contacted": 1,
            "out_of_competence": 1,
        },
    }
    assert figures["redirected"] == {"total": 1, "by_ombudsman": {"be-energy": 1}}
    assert figures["withdrawn"] == 1


def test_by_service_and_theme(figures: dict) -> None:
    assert figures["by_service"] == {"fps-finance": 3, "fps-justice": 1, "unspecified": 4}
    assert figures["by_theme"] == {"justice": 1, "taxation": 3, "unspecified": 4}


def test_outcomes_of_complaints_closed_in_the_year(figures: dict) -> None:
    assert figures["outcomes"] == {
        "closed": 4,  # 00001, 00002, 00003 and the 2025 complaint closed in January 2026
        "by_outcome": {"founded": 1, "partially_founded": 1, "unfounded": 1, "no_assessment": 1},
        "founded_by_category": {
            "staff_attitude": 1,
            "service_quality": 0,
            "file_processing": 1,
            "complaint_handling": 0,
        },
    }


def test_open_at_year_end(figures: dict) -> None:
    assert figures["open_at_year_end"] == {"total": 3, "received_this_year": 2, "received_earlier": 1}


def test_handling_time(figures: dict) -> None:
    # Answered in 2026 after 36, 47, 2 and 46 days: sorted 2, 36, 46, 47; median (36 + 46) / 2; p90 rank ceil(3.6) = 4.
    assert figures["handling_time_days"] == {"answered": 4, "median": 41.0, "p90": 47}


def test_deadline_shares(figures: dict) -> None:
    # Acknowledgments due in 2026: 00001..00008 (8); late: 00002, never: 00008.
    assert figures["deadlines"]["acknowledgment"] == {"due": 8, "within": 6, "share": 0.75}
    # Answers due in 2026: 00001..00007 and both 2025 complaints (9); in time: 00001, 00003, 00004, 00005, 2025-120.
    assert figures["deadlines"]["answer"] == {"due": 9, "within": 5, "share": 0.5556}


def test_as_of_excludes_deadlines_not_yet_due() -> None:
    figures = annual_indicators(REGISTER, 2026, as_of=D(2026, 12, 10))
    assert figures["as_of"] == "2026-12-10"
    # 00008's acknowledgment (29 Dec) and 00007's answer (17 Dec) are not due yet on 10 December.
    assert figures["deadlines"]["acknowledgment"] == {"due": 7, "within": 6, "share": 0.8571}
    assert figures["deadlines"]["answer"] == {"due": 8, "within": 5, "share": 0.625}
    # Open on 10 December: 00007 and the 2025 one; 00008 was not received yet.
    assert figures["open_at_year_end"] == {"total": 2, "received_this_year": 1, "received_earlier": 1}
    # An as_of after the year changes nothing.
    assert annual_indicators(REGISTER, 2026, as_of=D(2027, 6, 1)) == annual_indicators(REGISTER, 2026)


def test_improvement_actions(figures: dict) -> None:
    assert figures["improvement_actions"] == {
        "total": 3,
        "complaints_with_actions": 2,
        "list": [
            {"number": "MED-2026-00001", "action": "Publish the refund calendar"},
            {"number": "MED-2026-00002", "action": "Train counter staff"},
            {"number": "MED-2026-00002", "action": "Review letter templates"},
        ],
    }


def test_json_round_trip(figures: dict) -> None:
    assert json.loads(json.dumps(figures)) == figures


def test_csv(figures: dict) -> None:
    text = indicators_csv(figures)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "key", "value"]
    assert ["year", "", "2026"] in rows
    assert ["received", "total", "8"] in rows
    assert ["received", "by_channel.email", "4"] in rows
    assert ["admissibility", "inadmissible_by_reason.out_of_competence", "1"] in rows
    assert ["outcomes", "founded_by_category.file_processing", "1"] in rows
    assert ["handling_time_days", "median", "41.0"] in rows
    assert ["deadlines", "answer.share", "0.5556"] in rows
    assert ["improvement_actions", "action:MED-2026-00002", "Review letter templates"] in rows
    assert ["improvement_actions", "total", "3"] in rows
    # One row per figure: year, as_of (2) + received 1+5+4 + admissibility 3+4 + redirected 1+1 + withdrawn 1
    # + services 3 + themes 3 + outcomes 1+4+4 + open 3 + handling 3 + deadlines 6 + actions 2+3 = 54.
    assert len(rows) - 1 == 54


def test_csv_quotes_commas_and_quotes() -> None:
    record = ComplaintRecord(
        "MED-2026-00009",
        D(2026, 3, 1),
        "email",
        "complaint",
        "closed",
        "admissible",
        outcome="founded",
        outcome_category="service_quality",
        ended_on=D(2026, 4, 1),
        improvement_actions=('Rewrite the "refund" letter, in plain language',),
    )
    rows = list(csv.reader(io.StringIO(indicators_csv(annual_indicators([record], 2026)))))
    assert ["improvement_actions", "action:MED-2026-00009", 'Rewrite the "refund" letter, in plain language'] in rows


def test_empty_year() -> None:
    figures = annual_indicators([], 2026)
    assert figures["received"]["total"] == 0
    assert figures["handling_time_days"] == {"answered": 0, "median": None, "p90": None}
    assert figures["deadlines"]["answer"] == {"due": 0, "within": 0, "share": None}
    assert ["handling_time_days", "median", ""] in list(csv.reader(io.StringIO(indicators_csv(figures))))


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([], 90, None),
        ([7], 90, 7),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90, 10),
        ([15, 20, 35, 40, 50], 50, 35),
        ([50, 15, 40, 35, 20], 100, 50),
        ([3, 1, 2], 0, 1),
    ],
)
def test_nearest_rank(values: list[int], percent: float, expected: int | None) -> None:
    assert nearest_rank_percentile(values, percent) == expected
