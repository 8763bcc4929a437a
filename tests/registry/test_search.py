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
