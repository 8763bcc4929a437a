"""Bad API input answers 4xx with a JSON message, never a 500, and adding a correspondent goes through the staff
action path with its race retry (review of issue 4). On both databases."""

from __future__ import annotations

import asyncio

import pytest

from services.registry.commands import AddCorrespondent
from services.registry.handlers import Conflict
from tests.registry.access.helpers import api_client
from tests.registry.conftest import LostRace, received


async def test_indicator_years_out_of_range_are_422(registry_on_db):
    registry, _published, _clock = registry_on_db
    async with await api_client(registry) as client:
        for year in (0, 1899, 2201, 10000):
            assert (await client.get(f"/indicators/{year}")).status_code == 422
            assert (await client.get(f"/indicators/{year}", params={"format": "csv"})).status_code == 422
        early = await client.get("/indicators/2026", params={"as_of": "0001-01-01"})
        assert early.status_code == 422 and early.json()["error"] == "invalid_date"
        assert (await client.get("/indicators/2026")).status_code == 200
        assert (await client.get("/indicators/1900", params={"format": "csv"})).status_code == 200


async def test_oversized_correspondent_or_service_is_refused_not_a_500(registry_on_db):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    async with await api_client(registry) as client:
        long_email = await client.post(f"/complaints/{number}/correspondents",
                                       json={"actor": "agent@med.be", "email": "a" * 400 + "@example.org"})
        assert long_email.status_code == 422
        long_service = await client.post(f"/complaints/{number}/classification",
                                         json={"actor": "agent@med.be", "service": "s" * 201})
        assert long_service.status_code == 409 and "200 characters" in long_service.json()["message"]
        blank = await client.post(f"/complaints/{number}/correspondents", json={"actor": "a@med.be", "email": "   "})
        assert blank.status_code == 409


async def test_concurrent_correspondents_add_one_party(registry_on_db):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    added = await asyncio.gather(*(registry.handle(AddCorrespondent(number.lower(), " Avocat@Example.be ", f"agent{i}"))
                                   for i in range(5)))
    assert sorted(added) == [False, False, False, False, True]
    _complaint, _thread, log, parties = await registry.store.complaint_file(number)
    assert parties == ["avocat@example.be", "jeanne.dupont@example.org"]
    assert [e.details for e in log if e.change == "correspondent_added"] == [{"email": "avocat@example.be"}]


async def test_correspondent_race_is_retried(registry_on_db, monkeypatch):
    """Another process inserts the same party between our check and our insert: the unique key refuses ours, the
    staff action runs again and finds the party there."""
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    race = LostRace(monkeypatch)
    assert await registry.handle(AddCorrespondent(number, "avocat@example.be", "agent@med.be")) is True
    assert race.calls == 2
    with pytest.raises(Conflict):
        await registry.handle(AddCorrespondent(number, "", "agent@med.be"))
