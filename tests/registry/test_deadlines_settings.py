"""Every deadline rule is a registry setting (issue 11, "wire it or delete it"): `RegistrySettings.deadline_rules()`
builds `DeadlineRules` from them, and a bad value stops the start naming its variable."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from services.registry.deadlines import DeadlineRules, acknowledgment_due, answer_due, extension_notice_deadline
from services.registry.settings import RegistrySettings
from shared.settings import SettingsError, load_settings

# A value other than the default for every rule, as an operator would type it.
NOT_DEFAULT = {
    "OMBUDSDESK_ACKNOWLEDGMENT_WORKING_DAYS": ("acknowledgment_working_days", "3", 3),
    "OMBUDSDESK_ANSWER_CALENDAR_DAYS": ("answer_calendar_days", "60", 60),
    "OMBUDSDESK_EXTENDED_ANSWER_CALENDAR_DAYS": ("extended_answer_calendar_days", "120", 120),
    "OMBUDSDESK_HOLIDAY_COUNTRY": ("country", "fr", "FR"),
    "OMBUDSDESK_HOLIDAY_SUBDIVISION": ("subdivision", "57", "57"),
    "OMBUDSDESK_HOLIDAY_CATEGORIES": ("categories", "public, school", ("public", "school")),  # known for FR
    "OMBUDSDESK_EXTRA_CLOSED_DAYS": ("extra_closed_days", "11-02,2027-12-24", ("11-02", "2027-12-24")),
    "OMBUDSDESK_WEEKEND_DAYS": ("weekend", "[4, 5, 6]", frozenset({4, 5, 6})),
    "OMBUDSDESK_EXTENSION_NOTICE_DAYS": ("extension_notice_days", "10", 10),
}


def test_defaults_are_the_rules_defaults() -> None:
    assert load_settings(RegistrySettings).deadline_rules() == DeadlineRules()


def test_every_rule_has_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {rule for rule, _, _ in NOT_DEFAULT.values()} == {f.name for f in dataclasses.fields(DeadlineRules)}
    for variable, (_, typed, _) in NOT_DEFAULT.items():
        monkeypatch.setenv(variable, typed)
    rules = load_settings(RegistrySettings).deadline_rules()
    for rule, _, expected in NOT_DEFAULT.values():
        assert getattr(rules, rule) == expected, rule


def test_the_settings_move_the_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belgian federal services close on 2 and 15 November: received Fri 30 Oct 2026, the 5 working days are
    # 3, 4, 5, 6, 9 Nov (2 closed; 1 Nov All Saints is a Sunday) instead of 2..6 Nov.
    monkeypatch.setenv("OMBUDSDESK_EXTRA_CLOSED_DAYS", "11-02,11-15")
    assert acknowledgment_due(date(2026, 10, 30), load_settings(RegistrySettings).deadline_rules()) == date(2026, 11, 9)
    # A service also closed on Fridays: received Tue 10 Nov 2026 + 45 = Fri 25 Dec -> Mon 28 Dec as before, but
    # received Mon 9 Nov + 45 = Thu 24 Dec is a working day under both.
    monkeypatch.setenv("OMBUDSDESK_WEEKEND_DAYS", "4,5,6")
    rules = load_settings(RegistrySettings).deadline_rules()
    assert answer_due(date(2026, 11, 9), rules) == date(2026, 12, 24)
    # 45 days after Wed 4 Nov 2026 is Sat 19 Dec: Fri 18 Dec is closed too, so Mon 21 Dec.
    assert answer_due(date(2026, 11, 4), rules) == date(2026, 12, 21)
    # The extension must be announced 10 days before the original deadline (Mon 28 Dec 2026 -> Fri 18 Dec).
    monkeypatch.delenv("OMBUDSDESK_WEEKEND_DAYS")
    monkeypatch.setenv("OMBUDSDESK_EXTENSION_NOTICE_DAYS", "10")
    rules = load_settings(RegistrySettings).deadline_rules()
    assert extension_notice_deadline(date(2026, 11, 10), rules) == date(2026, 12, 18)


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("OMBUDSDESK_HOLIDAY_CATEGORIES", "nonsense", "no public holidays"),
    ("OMBUDSDESK_HOLIDAY_CATEGORIES", "", "at least 1 item"),
    ("OMBUDSDESK_EXTRA_CLOSED_DAYS", "11-15,13-01", "neither MM-DD nor YYYY-MM-DD"),
    ("OMBUDSDESK_WEEKEND_DAYS", "0,1,2,3,4,5,6", "proper subset"),
    ("OMBUDSDESK_WEEKEND_DAYS", "7", "less than or equal to 6"),
    ("OMBUDSDESK_WEEKEND_DAYS", "saturday", "integer"),
    ("OMBUDSDESK_EXTENSION_NOTICE_DAYS", "-1", "greater than or equal to 0"),
])
def test_bad_deadline_settings_name_their_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
                                                   says: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as stopped:
        load_settings(RegistrySettings)
    message = str(stopped.value)
    assert variable in message and says in message and "Traceback" not in message


def test_the_registry_is_given_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.registry.wiring import policy_from_settings

    for variable, (_, typed, _) in NOT_DEFAULT.items():
        monkeypatch.setenv(variable, typed)
    settings = load_settings(RegistrySettings)
    assert policy_from_settings(settings).rules == settings.deadline_rules()
