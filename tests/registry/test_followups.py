"""Routing of incoming messages: new complaint, follow-up, or holding pen (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from services.registry.followups import (
    Attach,
    CaseFacts,
    Hold,
    HoldReason,
    MatchedBy,
    RegisterNew,
    decide,
)
from services.registry.workflow import ReopenPolicy

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 24)
POLICY = ReopenPolicy(window_days=30)
JEANNE = "jeanne@example.org"


def case(number: str, matched_by: MatchedBy = MatchedBy.HEADER, parties=(JEANNE,), **kw) -> CaseFacts:
    return CaseFacts(number=number, matched_by=matched_by, parties=frozenset(parties), **kw)


def test_message_referring_to_nothing_is_a_new_complaint():
    assert decide(sender_email=JEANNE, referenced=[], today=TODAY, policy=POLICY) == RegisterNew()


def test_party_follow_up_is_attached_whatever_the_case_of_the_address():
    decision = decide(sender_email="Jeanne@Example.ORG", referenced=[case("MED-2026-00001")], today=TODAY,
                      policy=POLICY)
    assert isinstance(decision, Attach) and decision.number == "MED-2026-00001"


def test_a_stranger_knowing_the_number_is_held_with_the_case_suggested():
    decision = decide(sender_email="mallory@example.net", referenced=[case("MED-2026-00001", MatchedBy.NUMBER)],
                      today=TODAY, policy=POLICY)
    assert isinstance(decision, Hold) and decision.reason is HoldReason.SENDER_NOT_PARTY
    assert [s.number for s in decision.suggestions] == ["MED-2026-00001"]


def test_no_sender_address_is_never_a_party():
    decision = decide(sender_email=None, referenced=[case("MED-2026-00001")], today=TODAY, policy=POLICY)
    assert isinstance(decision, Hold) and decision.reason is HoldReason.SENDER_NOT_PARTY


def test_header_match_wins_over_a_number_quoted_in_the_text():
    decision = decide(sender_email=JEANNE, today=TODAY, policy=POLICY,
                      referenced=[case("MED-2026-00002", MatchedBy.NUMBER), case("MED-2026-00001")])
    assert isinstance(decision, Attach) and decision.number == "MED-2026-00001"


def test_two_equally_strong_cases_of_the_sender_are_ambiguous():
    decision = decide(sender_email=JEANNE, today=TODAY, policy=POLICY,
                      referenced=[case("MED-2026-00002", MatchedBy.NUMBER), case("MED-2026-00001", MatchedBy.NUMBER)])
    assert isinstance(decision, Hold) and decision.reason is HoldReason.AMBIGUOUS_REFERENCE
    assert {s.number for s in decision.suggestions} == {"MED-2026-00001", "MED-2026-00002"}


def test_unknown_number_is_held_with_the_senders_own_cases_suggested():
    own = case("MED-2026-00005", MatchedBy.SENDER, received_at=NOW - timedelta(days=3))
    older = case("MED-2026-00004", MatchedBy.SENDER, received_at=NOW - timedelta(days=30))
    decision = decide(sender_email=JEANNE, referenced=[], unknown_numbers=["MED-2026-09999"],
                      sender_cases=[older, own], today=TODAY, policy=POLICY)
    assert isinstance(decision, Hold) and decision.reason is HoldReason.UNKNOWN_CASE_NUMBER
    assert [(s.number, s.why) for s in decision.suggestions] == [("MED-2026-00005", "sender"),
                                                                  ("MED-2026-00004", "sender")]


def test_closed_case_reopens_within_the_window_and_links_a_new_complaint_after_it():
    recent = case("MED-2026-00001", status="closed", ended_on=TODAY - timedelta(days=30))
    decision = decide(sender_email=JEANNE, referenced=[recent], today=TODAY, policy=POLICY)
    assert isinstance(decision, Attach) and (decision.number, decision.new_status) == ("MED-2026-00001", "in_review")
    old = case("MED-2026-00001", status="closed", ended_on=TODAY - timedelta(days=31))
    assert decide(sender_email=JEANNE, referenced=[old], today=TODAY, policy=POLICY) == RegisterNew(
        linked_number="MED-2026-00001")


def test_reply_while_waiting_for_the_citizen_resumes_the_review():
    waiting = case("MED-2026-00001", status="waiting_for_citizen")
    decision = decide(sender_email=JEANNE, referenced=[waiting], today=TODAY, policy=POLICY)
    assert isinstance(decision, Attach) and decision.new_status == "in_review"


def test_automated_messages_never_open_or_reopen_a_case():
    closed = case("MED-2026-00001", status="closed", ended_on=TODAY - timedelta(days=300))
    decision = decide(sender_email=JEANNE, referenced=[closed], automated=True, today=TODAY, policy=POLICY)
    assert isinstance(decision, Attach) and decision.new_status is None
    unmatched = decide(sender_email="mailer-daemon@example.org", referenced=[], automated=True, today=TODAY,
                       policy=POLICY)
    assert isinstance(unmatched, Hold) and unmatched.reason is HoldReason.AUTOMATED_UNMATCHED
