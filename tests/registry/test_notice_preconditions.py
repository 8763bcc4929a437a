"""A transition whose notice to the citizen could only be dead-lettered is refused (review of issue 4): an answer
without its text, a redirection without the ombudsman to turn to."""

from __future__ import annotations

import pytest

from services.registry.commands import Transition
from services.registry.handlers import Conflict
from shared.events import ComplaintChanged, NoticeRequested
from tests.registry.access.helpers import api_client
from tests.registry.conftest import received


async def test_answer_without_text_and_redirection_without_ombudsman_are_refused(registry_on_db):
    registry, published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    for status in ("acknowledged", "in_review"):
        await registry.handle(Transition(number, status, "agent@med.be"))
    changes_before = len(published.of(ComplaintChanged))
    for blank in (None, "", "   "):
        with pytest.raises(Conflict, match="answer needs its text"):
            await registry.handle(Transition(number, "answered", "agent@med.be", answer_text=blank))
        with pytest.raises(Conflict, match="redirection needs the competent ombudsman"):
            await registry.handle(Transition(number, "redirected", "agent@med.be", redirect_to=blank))
    complaint = await registry.store.complaint(number)
    assert complaint.status == "in_review" and complaint.answered_at is None
    assert len(published.of(ComplaintChanged)) == changes_before and published.of(NoticeRequested) == []

    await registry.handle(Transition(number, "answered", "agent@med.be", answer_text="Votre plainte est fondée."))
    [notice] = published.of(NoticeRequested)
    assert notice.notice_kind == "final_answer" and notice.context["answer"] == "Votre plainte est fondée."


async def test_api_reports_the_refusal_as_a_conflict(registry_on_db):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    async with await api_client(registry) as client:
        refused = await client.post(f"/complaints/{number}/transitions",
                                    json={"target": "redirected", "actor": "agent@med.be"})
        assert refused.status_code == 409
        assert refused.json() == {"error": "conflict", "message": refused.json()["message"]}
        assert "ombudsman" in refused.json()["message"]
    assert (await registry.store.complaint(number)).status == "received"
