"""Possible duplicates (issue 15): the rules (pure), the check at registration on SQLite and PostgreSQL (email, name
and postal address, the window, the setting), and a duplicate flagged over real NATS registration."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from services.registry.mediation.duplicates import Citizen, citizen_key, is_possible_duplicate, normal_name
from services.registry.handlers import Registry
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared import streams
from shared.events import ComplaintRegistered, Party
from tests.registry.conftest import next_events, publish, received

DAY = date(2026, 11, 24)


def _citizen(**overrides) -> Citizen:
    values = {"email": "jeanne@example.org", "name": "Jeanne Dupont", "postal_address": "Rue de la Loi 16, 1000 Bruxelles",
              "service": "finances", "received_on": DAY}
    return Citizen(**{**values, **overrides})


def test_the_same_citizen_is_recognised_by_email_or_by_name_and_address():
    new = _citizen()
    assert is_possible_duplicate(new, _citizen(email=" Jeanne@Example.ORG ", name="", postal_address=None), 90)
    by_letter = _citizen(email=None, name="DUPONT,  Jeanne", postal_address="rue de la loi 16 - 1000 BRUXELLES",
                         received_on=DAY - timedelta(days=90))
    assert is_possible_duplicate(new, by_letter, 90)
    assert not is_possible_duplicate(new, _citizen(service="pensions"), 90)  # another service
    assert not is_possible_duplicate(new, _citizen(received_on=DAY - timedelta(days=91)), 90)  # before the window
    assert not is_possible_duplicate(new, _citizen(), 0)  # disabled
    stranger = _citizen(email="other@example.org", name="Jeanne Dupont", postal_address="Rue Haute 2, 1000 Bruxelles")
    assert not is_possible_duplicate(new, stranger, 90)  # a namesake elsewhere
    # Both about no identified service: the same (a citizen who writes twice deserves a look).
    assert is_possible_duplicate(_citizen(service=None), _citizen(service=None), 90)


def test_the_citizen_key_needs_both_a_name_and_an_address():
    assert normal_name("Dupont Jeanne") == normal_name("JEANNE dupont") == "dupont jeanne"
    assert citizen_key("Jeanne Dupont", None) is None and citizen_key("", "Rue de la Loi 16") is None
    assert citizen_key("Jeanne Dupont", "Rue de la Loi 16") == citizen_key("dupont jeanne", "RUE DE LA LOI 16")
    assert len(citizen_key("Jeanne Dupont", "Rue de la Loi 16") or "") == 64


async def test_registration_flags_the_earlier_files_of_the_same_citizen(registry_on_db):
    registry, _published, clock = registry_on_db  # 24 November 2026, a 90-day window by default
    letter_sender = Party(name="Jeanne DUPONT", postal_address="Rue de la Loi 16\n1000 Bruxelles")
    first = await registry.on_message_received(received(at=clock.now))
    by_letter = await registry.on_message_received(received(at=clock.now).model_copy(
        update={"sender": letter_sender, "message_key": "letter-1"}))
    other = await registry.on_message_received(received(email="someone.else@example.org", name="Paul Martin",
                                                        at=clock.now))
    clock.advance(days=10)
    second = await registry.on_message_received(received(at=clock.now).model_copy(update={
        "sender": Party(name="Dupont Jeanne", email="Jeanne.Dupont@example.org",
                        postal_address="rue de la loi 16, 1000 BRUXELLES")}))
    flagged = await registry.store.complaint(second.number)
    assert flagged.possible_duplicates == [by_letter.number, first.number]  # most recent first
    assert (await registry.store.complaint(first.number)).possible_duplicates is None
    assert (await registry.store.complaint(other.number)).possible_duplicates is None

    clock.advance(days=200)  # long after: outside the window
    late = await registry.on_message_received(received(at=clock.now))
    assert (await registry.store.complaint(late.number)).possible_duplicates is None


async def test_the_window_is_a_setting_and_zero_disables_the_check(registry_on_db):
    registry, published, clock = registry_on_db
    off = Registry(registry.store, policy_from_settings(RegistrySettings(duplicate_window_days=0)), published,
                   clock=clock)
    await off.on_message_received(received(at=clock.now))
    again = await off.on_message_received(received(at=clock.now))
    assert (await registry.store.complaint(again.number)).possible_duplicates is None


async def test_a_duplicate_is_flagged_over_nats(running_registry, js):
    await publish(js, received(at=datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)))
    [first] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-dup-first")
    await publish(js, received(email="JEANNE.DUPONT@example.org", subject="Encore la facture",
                               at=datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc)))
    payloads = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 2, "t-dup-both")
    numbers = [ComplaintRegistered.model_validate_json(p).complaint_number for p in payloads]
    earlier = ComplaintRegistered.model_validate_json(first).complaint_number
    later = next(n for n in numbers if n != earlier)
    assert (await running_registry.store.complaint(later)).possible_duplicates == [earlier]
    assert (await running_registry.store.complaint(earlier)).possible_duplicates is None
