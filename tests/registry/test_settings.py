"""Bad registry settings stop the start with a message naming the variable, never a traceback later (review of
issue 4): lead days, time zone, holiday country and subdivision, deadline periods."""

from __future__ import annotations

import pytest

from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.settings import SettingsError, load_settings


@pytest.mark.parametrize(("raw", "expected"), [("5,1", (5, 1)), (" 10 , 3,0 ", (10, 3, 0)), ("[7, 2]", (7, 2)),
                                               ("7", (7,)), ("", ())])
def test_lead_days_from_comma_separated_or_json(monkeypatch, raw, expected):
    monkeypatch.setenv("OMBUDSDESK_DEADLINE_LEAD_DAYS", raw)
    assert load_settings(RegistrySettings).deadline_lead_days == expected


def test_valid_holiday_rules_are_normalised_and_wired(monkeypatch):
    monkeypatch.setenv("OMBUDSDESK_HOLIDAY_COUNTRY", "fr")
    monkeypatch.setenv("OMBUDSDESK_HOLIDAY_SUBDIVISION", "57")
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_TIMEZONE", "Europe/Paris")
    settings = load_settings(RegistrySettings)
    policy = policy_from_settings(settings)
    assert (policy.rules.country, policy.rules.subdivision, policy.timezone.key) == ("FR", "57", "Europe/Paris")


@pytest.mark.parametrize(("variables", "named", "says"), [
    ({"OMBUDSDESK_DEADLINE_LEAD_DAYS": "5,soon"}, "OMBUDSDESK_DEADLINE_LEAD_DAYS", "integer"),
    ({"OMBUDSDESK_DEADLINE_LEAD_DAYS": "[5, 1"}, "OMBUDSDESK_DEADLINE_LEAD_DAYS", "JSON"),
    ({"OMBUDSDESK_DEADLINE_LEAD_DAYS": "5,-1"}, "OMBUDSDESK_DEADLINE_LEAD_DAYS", "greater than or equal to 0"),
    ({"OMBUDSDESK_REGISTRY_TIMEZONE": "Europe/Atlantis"}, "OMBUDSDESK_REGISTRY_TIMEZONE", "unknown time zone"),
    ({"OMBUDSDESK_REGISTRY_TIMEZONE": "../etc/passwd"}, "OMBUDSDESK_REGISTRY_TIMEZONE", "unknown time zone"),
    ({"OMBUDSDESK_HOLIDAY_COUNTRY": "XX"}, "OMBUDSDESK_HOLIDAY_COUNTRY", "no public holidays"),
    ({"OMBUDSDESK_HOLIDAY_SUBDIVISION": "Atlantis"}, "OMBUDSDESK_HOLIDAY_SUBDIVISION", "does not have subdivision"),
    ({"OMBUDSDESK_ANSWER_CALENDAR_DAYS": "60", "OMBUDSDESK_EXTENDED_ANSWER_CALENDAR_DAYS": "50"},
     "OMBUDSDESK_EXTENDED_ANSWER_CALENDAR_DAYS", "at least OMBUDSDESK_ANSWER_CALENDAR_DAYS"),
])
def test_bad_settings_name_their_variable(monkeypatch, variables, named, says):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as stopped:
        load_settings(RegistrySettings)
    message = str(stopped.value)
    assert named in message and says in message and "Traceback" not in message
