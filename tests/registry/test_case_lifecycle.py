"""Staff actions and follow-ups over a real database (SQLite and PostgreSQL): status machine, pause clock,
extension, screening decisions, closed-case policy, notices requested, change log."""

from __future__ import annotations

from datetime import date

import pytest

from services.registry.commands import Assign, Classify, DecideScreening, Extend, Transition
from services.registry.handlers import Conflict
from shared.events import ComplaintChanged, MessageAppended, NoticeRequested
from tests.registry.conftest import received


async def _register(registry, clock, **fields):
    event = received(at=clock.now, **fields)
    outcome = await registry.on_message_received(event)
    return outcome.number, event


async def test_full_path_with_pause_answer_close_and_reopen(registry_on_db):
    registry, published, clock = registry_on_db
    number, first = await _register(registry, clock)
    complaint = await registry.store.complaint(number)
    assert complaint.answer_due == date(2027, 1, 8)

    with pytest.raises(Conflict, match="cannot go from received to closed"):
        await registry.handle(Transition(number, "closed", "agent@med.be", outcome="unfounded"))
    await registry.handle(Transition(number, "acknowledged", "agent@med.be"))
    await registry.handle(Transition(number, "in_review", "agent@med.be"))
    await registry.handle(Transition(number, "waiting_for_citizen", "agent@med.be", "we asked for the invoice"))
    clock.advance(days=10)
    # The citizen's reply to our thread resumes the review; the ten days waited push the deadline back.
    await registry.on_message_received(received(at=clock.now, subject=f"Re: [{number}] facture",
                                                candidate_case_numbers=(number,)))
    complaint = await registry.store.complaint(number)
    assert (complaint.status, complaint.paused_days) == ("in_review", 10)
    assert complaint.answer_due == date(2027, 1, 18)

    await registry.handle(Transition(number, "answered", "agent@med.be", answer_text="Votre plainte est fondée."))
    with pytest.raises(Conflict, match="requires its founded category"):
        await registry.handle(Transition(number, "closed", "agent@med.be", outcome="founded"))
    await registry.handle(Transition(number, "closed", "agent@med.be", outcome="founded", category="file_processing"))
    notices = [n.notice_kind for n in published.of(NoticeRequested)]
    assert notices == ["follow_up_received", "final_answer"]
    final = published.of(NoticeRequested)[-1]
    assert final.context["answer"] == "Votre plainte est fondée." and final.recipient.email == first.sender.email
    assert final.reply_to_message_id == first.message_id

    clock.advance(days=20)
    await registry.on_message_received(received(at=clock.now, subject=f"Re: [{number}]",
                                                candidate_case_numbers=(number,)))
    complaint = await registry.store.complaint(number)
    assert complaint.status == "in_review" and complaint.closed_at is None  # reopened within the window

    statuses = [(c.details["from"], c.details["to"]) for c in published.of(ComplaintChanged) if c.change == "status"]
    assert statuses == [("received", "acknowledged"), ("acknowledged", "in_review"),
                        ("in_review", "waiting_for_citizen"), ("waiting_for_citizen", "in_review"),
                        ("in_review", "answered"), ("answered", "closed"), ("closed", "in_review")]
    _complaint, _thread, changes, _parties = await registry.store.complaint_file(number)
    assert all(entry.actor and entry.at for entry in changes)
    assert changes[0].change == "registered"


async def test_message_long_after_closing_starts_a_linked_complaint(registry_on_db):
    registry, published, clock = registry_on_db
    number, _ = await _register(registry, clock)
    for status in ("acknowledged", "in_review"):
        await registry.handle(Transition(number, status, "agent@med.be"))
    await registry.handle(Transition(number, "answered", "agent@med.be", answer_text="Votre plainte n'est pas fondée."))
    await registry.handle(Transition(number, "closed", "agent@med.be", outcome="unfounded"))
    clock.advance(days=45)
    outcome = await registry.on_message_received(received(at=clock.now, candidate_case_numbers=(number,)))
    assert outcome.action == "registered" and outcome.number != number
    linked = await registry.store.complaint(outcome.number)
    assert linked.linked_number == number
    assert (await registry.store.complaint(number)).status == "closed"
    assert published.of(MessageAppended) == []


async def test_one_extension_with_its_notice_before_the_deadline(registry_on_db):
    registry, published, clock = registry_on_db
    number, _ = await _register(registry, clock)
    await registry.handle(Extend(number, "agent@med.be", "expertise technique nécessaire"))
    complaint = await registry.store.complaint(number)
    assert complaint.answer_extended and complaint.answer_due == date(2027, 2, 22)
    [notice] = published.of(NoticeRequested)
    assert notice.notice_kind == "extension"
    assert (notice.context["previous_due"], notice.context["answer_due"]) == ("2027-01-08", "2027-02-22")
    with pytest.raises(Conflict, match="already been extended"):
        await registry.handle(Extend(number, "agent@med.be"))


async def test_extension_after_the_original_deadline_is_refused(registry_on_db):
    registry, _published, clock = registry_on_db
    number, _ = await _register(registry, clock)
    clock.advance(days=60)
    with pytest.raises(Conflict, match="too late|after the last day"):
        await registry.handle(Extend(number, "agent@med.be"))


async def test_screening_proposal_is_stored_then_confirmed_as_inadmissible(registry_on_db):
    registry, published, clock = registry_on_db
    number, _ = await _register(registry, clock, name="", email=None, subject="Plainte anonyme")
    complaint = await registry.store.complaint(number)
    assert complaint.screening_proposal is not None
    assert "anonymous" in [r["code"] for r in complaint.screening_proposal["reasons"]]
    assert complaint.admissibility == "pending"  # a proposal only, until staff decide
    await registry.handle(DecideScreening(number, "agent@med.be", "pas d'expéditeur identifiable"))
    complaint = await registry.store.complaint(number)
    assert complaint.status == "inadmissible" and "anonymous" in complaint.admissibility_reasons
    # No address at all: no notice can be sent, none is requested.
    assert published.of(NoticeRequested) == []


async def test_staff_override_keeps_a_complaint_admissible_and_reclassifies_it(registry_on_db):
    registry, published, clock = registry_on_db
    number, _ = await _register(registry, clock)
    await registry.handle(DecideScreening(number, "agent@med.be", admissible=True))
    await registry.handle(Classify(number, "agent@med.be", "c'est une question", kind="question", theme="taxes"))
    await registry.handle(Assign(number, "handler@med.be", "chef@med.be"))
    complaint = await registry.store.complaint(number)
    assert (complaint.admissibility, complaint.kind, complaint.theme, complaint.handler) == (
        "admissible", "question", "taxes", "handler@med.be")
    with pytest.raises(Conflict, match="unknown kind"):
        await registry.handle(Classify(number, "agent@med.be", kind="rant"))
    changes = [c.change for c in published.of(ComplaintChanged)]
    assert changes == ["registered", "screening", "classification", "assignment"]


async def test_redirect_names_the_competent_ombudsman_from_the_directory(registry_on_db):
    registry, published, clock = registry_on_db
    number, _ = await _register(registry, clock)
    ombudsman = registry.policy.screening.directory[0]
    await registry.handle(Transition(number, "redirected", "agent@med.be", "hors compétence", redirect_to=ombudsman.id))
    [notice] = published.of(NoticeRequested)
    assert notice.notice_kind == "redirected" and notice.context["ombudsman"]["id"] == ombudsman.id
    number2, _ = await _register(registry, clock)
    with pytest.raises(Conflict, match="unknown ombudsman"):
        await registry.handle(Transition(number2, "redirected", "agent@med.be", redirect_to="nobody"))
    assert (await registry.store.complaint(number2)).status == "received"  # refused change left nothing behind
