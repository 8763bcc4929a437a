"""Staff list search on a real database: newest first, exact whichever path (newest window or full search) answers."""

from __future__ import annotations

import pytest

from services.registry import repository
from services.registry.repository import ComplaintFilter
from tests.registry.conftest import received


@pytest.mark.parametrize("window", [2, 5000])
async def test_text_search_returns_the_newest_matches_exactly(registry_on_db, monkeypatch, window):
    registry, _published, clock = registry_on_db
    monkeypatch.setattr(repository, "SEARCH_WINDOW", window)
    subjects = ["eau", "pension", "eau", "pension", "PENSION de retraite", "eau"]
    numbers = [(await registry.on_message_received(received(at=clock.now, subject=s))).number for s in subjects]
    store = registry.store

    async def search(text: str, limit: int, offset: int = 0) -> list[str]:
        return [c.number for c in await store.list_complaints(ComplaintFilter(text=text, limit=limit, offset=offset))]

    pension_newest_first = [numbers[4], numbers[3], numbers[1]]
    assert await search("pension", 1) == pension_newest_first[:1]
    assert await search("pension", 2) == pension_newest_first[:2]
    assert await search("pension", 1, offset=1) == pension_newest_first[1:2]
    assert await search("pension", 10) == pension_newest_first
    assert await search("retraite", 10) == [numbers[4]]
    assert await search("introuvable", 10) == []


SEARCHES = ["c12345@", "c12345", "C12345@EXAMPLE", "dupont", "DUPONT", "énergie", "ÉNERGIE", "Énergie", "100%", "a_b",
            'dit "non"', "ab", "x", "  ", "plainte", "Müller", "zzz-absent", "\\x"]


async def test_indexed_text_search_returns_exactly_what_the_scan_returns(registry_on_db, monkeypatch):
    registry, _published, clock = registry_on_db
    monkeypatch.setattr(repository, "SEARCH_WINDOW", 0)  # always the whole-register search
    people = [("Jeanne Dupont", "c12345@example.org", "Plainte: facture d'énergie"),
              ("JEAN DUPONT", "jd@example.org", "ÉNERGIE: relevé contesté"),
              ("Anna Müller", "c123456@example.org", "Remboursement de 100% refusé"),
              ("Bob", "a_b@example.org", 'Il a dit "non" au guichet'),
              ("Carla", "carla@example.org", "Chemin C:\\x de l'école"),
              ("Dan", None, "Énergie renouvelable, plainte")]
    for name, email, subject in people:
        await registry.on_message_received(received(at=clock.now, name=name, email=email, subject=subject))
    store = registry.store

    async def search(text: str) -> list[str]:
        return [c.number for c in await store.list_complaints(ComplaintFilter(text=text, limit=50))]

    expected = {}
    monkeypatch.setattr(store, "_has_fts", False)  # the scan: LIKE over every row
    for text in SEARCHES:
        expected[text] = await search(text)
    monkeypatch.setattr(store, "_has_fts", None)
    sqlite = store.engine.dialect.name == "sqlite"
    async with store._sessions() as session:
        assert await store._fts_available(session) is sqlite  # the FTS5 path is the one under test on SQLite
    for text in SEARCHES:
        assert await search(text) == expected[text], text
    # Too many candidates: the scan answers, still the same.
    monkeypatch.setattr(repository, "FTS_CANDIDATES_MAX", 1)
    for text in SEARCHES:
        assert await search(text) == expected[text], text
    # The figures the comparison rests on (so that it cannot pass by finding nothing).
    assert [len(expected[text]) for text in ("c12345@", "c12345", "dupont", "plainte")] == [1, 2, 2, 2]
    assert expected["100%"] and expected["a_b"] and expected['dit "non"'] and expected["\\x"]
    assert expected["zzz-absent"] == []


async def test_index_follows_changes_of_the_searched_columns(registry_on_db):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now, email="old.address@example.org",
                                                          subject="Première version"))).number
    store = registry.store

    async def search(text: str) -> list[str]:
        return [c.number for c in await store.list_complaints(ComplaintFilter(text=text, limit=50))]

    assert await search("old.address") == [number]
    async with store.engine.begin() as connection:
        await connection.exec_driver_sql(
            "UPDATE complaints SET complainant_email = 'new.address@example.org', subject_line = 'Seconde version', "
            "status = 'in_review'")
    assert await search("old.address") == []
    assert await search("new.address") == [number]
    assert await search("première") == [] and await search("seconde") == [number]
