"""The administration concerned (issue 15), pure rules: the directory's entries and its TOML, matching a file's
free-text service, a request's dates, what is due when, what the citizen never learns of, how fast administrations
answer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.registry.mediation import administrations as rules
from services.registry.mediation.administrations import AlertKind, OpenRequest, RequestOutcome

EXAMPLE = Path(__file__).parents[2] / "services" / "registry" / "mediation" / "administrations.example.toml"


def test_an_entry_is_normalised_and_every_problem_is_named():
    entry = rules.checked_entry(key=" FPS-Finance ", name="  SPF   Finances ", emails="Plaintes@Fin.be; x@fin.be",
                                language="NL", answer_days="30", postal_address="Rue 1\n\n1000 Bruxelles  ")
    assert entry.key == "fps-finance"
    assert entry.name == "SPF Finances"
    assert entry.emails == ("plaintes@fin.be", "x@fin.be")
    assert entry.postal_address == "Rue 1\n1000 Bruxelles"
    assert (entry.language, entry.answer_days) == ("nl", 30)

    with pytest.raises(rules.InvalidEntry) as refused:
        rules.checked_entry(key="bad key!", name="", emails="not-an-address", language="es", answer_days=0)
    assert refused.value.problems == {"key": "key", "name": "required", "emails": "emails", "language": "language",
                                      "answer_days": "answer_days"}


@pytest.mark.parametrize("hostile", ["a@b.be\r\nBcc: victim@x.be", "<a@b.be>", "a@b", "a b@c.be", "@b.be"])
def test_an_address_that_could_inject_a_header_or_is_not_one_is_refused(hostile):
    with pytest.raises(rules.InvalidEntry) as refused:
        rules.checked_entry(key="k", name="N", emails=[hostile])
    assert refused.value.problems == {"emails": "emails"}


def test_an_entry_needs_somewhere_to_write_to():
    with pytest.raises(rules.InvalidEntry) as refused:
        rules.checked_entry(key="k", name="N")
    assert refused.value.problems == {"emails": "no_address"}
    letter_only = rules.checked_entry(key="k", name="N", postal_address="Place 1, 5000 Namur")
    assert letter_only.writable and letter_only.emails == ()


def test_the_example_directory_imports():
    entries = rules.parse_directory_toml(EXAMPLE.read_text(encoding="utf-8"))
    assert len(entries) >= 3
    assert len({entry.key for entry in entries}) == len(entries)
    assert {entry.language for entry in entries} <= set(rules.LANGUAGES)
    assert any(not entry.emails and entry.postal_address for entry in entries)  # a letter-only entry is shown


def test_a_directory_with_a_typo_a_duplicate_or_a_bad_entry_is_refused_whole():
    typo = '[[administration]]\nkey = "a"\nname = "A"\nemail = "a@a.be"\n'
    with pytest.raises(rules.InvalidEntry, match="entry 1 \\(a\\)"):
        rules.parse_directory_toml(typo)
    twice = '[[administration]]\nkey = "a"\nname = "A"\nemails = ["a@a.be"]\n' * 2
    with pytest.raises(rules.InvalidEntry, match="entry 2") as refused:
        rules.parse_directory_toml(twice)
    assert refused.value.problems == {"key": "duplicate"}
    with pytest.raises(rules.InvalidEntry):
        rules.parse_directory_toml("not = [toml")
    with pytest.raises(rules.InvalidEntry):
        rules.parse_directory_toml('[[ombudsman]]\nid = "x"\n')


def test_a_files_free_text_service_finds_its_entry_by_key_then_by_name():
    finance = rules.DirectoryEntry(key="fps-finance", name="SPF Finances", emails=("a@fin.be",))
    onem = rules.DirectoryEntry(key="onem", name="Office national de l'Emploi", emails=("b@onem.be",))
    gone = rules.DirectoryEntry(key="old", name="Ancien service", emails=("c@x.be",), active=False)
    entries = [finance, onem, gone]
    assert rules.match_entry("fps-finance", entries) is finance
    assert rules.match_entry("  office NATIONAL de l’emploi ".replace("’", "'"), entries) is onem
    assert rules.match_entry("Office national de l'Emploi", entries) is onem
    assert rules.match_entry("spf finances", entries) is finance
    assert rules.match_entry("Ancien service", entries) is None  # an inactive entry is not proposed
    assert rules.match_entry("Commune de Namur", entries) is None  # free text stays free text
    assert rules.match_entry(None, entries) is None


def test_the_request_is_due_after_the_administrations_days_and_reminded_before():
    dates = rules.request_dates(date(2026, 11, 24), answer_days=30, reminder_days=7)
    assert dates.due == date(2026, 12, 24)
    assert dates.remind_on == date(2026, 12, 17)
    # A reminder that would fall on (or before) the day of the request is no reminder.
    assert rules.request_dates(date(2026, 11, 24), answer_days=5, reminder_days=5).remind_on is None
    assert rules.request_dates(date(2026, 11, 24), answer_days=5, reminder_days=0).remind_on is None


def test_each_alert_is_due_in_its_window_and_only_until_sent():
    request = OpenRequest(due=date(2026, 12, 24), remind_on=date(2026, 12, 17))
    assert rules.alerts_due(request, date(2026, 12, 16)) == ()
    assert rules.alerts_due(request, date(2026, 12, 17)) == (AlertKind.REMINDER,)
    assert rules.alerts_due(request, date(2026, 12, 24)) == (AlertKind.REMINDER,)
    # The watcher was down the whole window: past the deadline, only the warning (a late reminder says nothing).
    assert rules.alerts_due(request, date(2026, 12, 25)) == (AlertKind.NO_ANSWER,)
    reminded = OpenRequest(due=date(2026, 12, 24), remind_on=date(2026, 12, 17), reminded=True)
    assert rules.alerts_due(reminded, date(2026, 12, 20)) == ()
    warned = OpenRequest(due=date(2026, 12, 24), remind_on=None, missed=True)
    assert rules.alerts_due(warned, date(2027, 1, 20)) == ()
    answered = OpenRequest(due=date(2026, 12, 24), remind_on=date(2026, 12, 17), answered=True)
    assert rules.alerts_due(answered, date(2026, 12, 20)) == ()
    assert rules.alerts_due(answered, date(2027, 1, 20)) == ()


def test_the_citizen_never_learns_of_the_administrations_correspondence_unless_staff_share_it():
    assert rules.hidden_from_citizen(party="administration", citizen_visible=False, notice_kind=None)
    assert rules.hidden_from_citizen(party="administration", citizen_visible=None, notice_kind=None)
    assert not rules.hidden_from_citizen(party="administration", citizen_visible=True, notice_kind=None)
    assert rules.hidden_from_citizen(party=None, citizen_visible=None, notice_kind="position_request")
    assert rules.hidden_from_citizen(party=None, citizen_visible=None, notice_kind="position_reminder")
    assert not rules.hidden_from_citizen(party=None, citizen_visible=None, notice_kind="acknowledgment")
    assert not rules.hidden_from_citizen(party=None, citizen_visible=None, notice_kind=None)


def test_a_request_text_is_cleaned_and_bounded():
    assert rules.request_text("  1. Pourquoi ?\r\n2. Quand ?\x1b[31m  ") == "  1. Pourquoi ?\n2. Quand ?[31m"
    for bad in ("", "  \n ", "x" * 20_001):
        with pytest.raises(ValueError):
            rules.request_text(bad)


def test_answer_figures_count_median_p90_and_unanswered_per_administration():
    outcomes = [RequestOutcome("SPF Finances", days) for days in (10, 20, 30, 40)]
    outcomes += [RequestOutcome("SPF Finances", None, overdue=True), RequestOutcome("ONEM", 5),
                 RequestOutcome("ONEM", None)]
    figures = rules.answer_statistics(outcomes)
    assert (figures.requests, figures.answered, figures.unanswered, figures.overdue) == (7, 5, 2, 1)
    # All answered: 5, 10, 20, 30, 40 -> median 20; 90th percentile by nearest rank: ceil(0.9 * 5) = 5th = 40.
    assert (figures.median_days, figures.p90_days) == (20.0, 40)
    assert list(figures.by_administration) == ["ONEM", "SPF Finances"]
    finance = figures.by_administration["SPF Finances"]
    assert (finance.requests, finance.answered, finance.unanswered, finance.overdue) == (5, 4, 1, 1)
    assert (finance.median_days, finance.p90_days) == (25.0, 40)
    onem = figures.by_administration["ONEM"]
    assert (onem.median_days, onem.p90_days, onem.unanswered, onem.overdue) == (5.0, 5, 1, 0)
    empty = rules.answer_statistics([])
    assert (empty.requests, empty.median_days, empty.p90_days) == (0, None, None)
