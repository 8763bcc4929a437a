"""The administration concerned over a real database (SQLite and PostgreSQL, issue 15): a request for its position,
its reply threaded into the file as its answer and hidden from the citizen, its mail about another file kept out,
the reminder and the "no answer" warning each once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from services.registry.commands import (
    RequestPosition,
    SaveAdministration,
    SendMessage,
    ShareAdministrationMessage,
    SweepPositionRequests,
)
from services.registry.handlers import Conflict, NotFound
from services.registry.models import CaseParty, HeldMessage, PositionRequest, ThreadMessage
from shared.events import (
    ComplaintChanged,
    DeadlineApproaching,
    DeadlineMissed,
    NoticeRequested,
    NotificationSent,
)
from tests.registry.conftest import received

STAFF = "agent@med.be"
FINANCE = "plaintes@finances.example.be"


async def _register(registry, clock, **fields) -> str:
    outcome = await registry.on_message_received(received(at=clock.now, **fields))
    assert outcome.action == "registered"
    return outcome.number


async def _rows(registry, model, *conditions):
    async with registry.store.transaction() as tx:
        return list((await tx.session.execute(select(model).where(*conditions))).scalars())


async def _finance(registry, **fields) -> int:
    return await registry.handle(SaveAdministration(
        "fps-finance", "SPF Finances", STAFF, emails=(FINANCE, "second@finances.example.be"), language="nl",
        contact_person="Mevrouw Peeters", answer_days=30, **fields))


async def test_saving_an_entry_twice_changes_it_in_place_and_bad_input_is_refused(registry_on_db):
    registry, _published, _clock = registry_on_db
    first = await _finance(registry)
    again = await registry.handle(SaveAdministration("FPS-Finance", "SPF Finances (plaintes)", STAFF,
                                                     emails=(FINANCE,), answer_days=20))
    assert again == first
    with pytest.raises(Conflict, match="emails"):
        await registry.handle(SaveAdministration("x", "X", STAFF, emails=("a@b.be\r\nBcc: c@d.be",)))


async def test_a_request_goes_to_the_administration_in_its_language_and_admits_it_to_this_file_only(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _register(registry, clock)
    other = await _register(registry, clock, email="someone.else@example.org")
    administration = await _finance(registry)

    request = await registry.handle(RequestPosition(number, administration, "1. Pourquoi ce retard ?", STAFF,
                                                    reminder_days=7, request_key="form-1"))
    assert (request.requested_on, request.due, request.remind_on) == (
        date(2026, 11, 24), date(2026, 12, 24), date(2026, 12, 17))
    # The same form submitted twice is the same request.
    again = await registry.handle(RequestPosition(number, administration, "1. Pourquoi ce retard ?", STAFF,
                                                  reminder_days=7, request_key="form-1"))
    assert again.id == request.id
    [notice] = [n for n in published.of(NoticeRequested) if n.notice_kind == "position_request"]
    assert notice.complaint_number == number
    assert notice.recipient.email == FINANCE and notice.recipient.language == "nl"
    assert notice.context["questions"] == "1. Pourquoi ce retard ?"
    assert notice.context["due"] == "2026-12-24"
    # Nothing of the citizen's own correspondence goes with it.
    assert notice.references == () and notice.reply_to_message_id is None

    parties = {(p.complaint_id, p.email, p.role) for p in await _rows(registry, CaseParty)}
    complaint, other_complaint = await registry.store.complaint(number), await registry.store.complaint(other)
    assert (complaint.id, FINANCE, "administration") in parties
    assert (complaint.id, "second@finances.example.be", "administration") in parties
    assert not {p for p in parties if p[0] == other_complaint.id and p[2] == "administration"}
    changes = [c for c in published.of(ComplaintChanged) if c.change == "position_requested"]
    assert len(changes) == 1 and changes[0].details["administration"] == "fps-finance"


async def test_a_request_is_refused_without_text_or_a_usable_administration(registry_on_db):
    registry, _published, clock = registry_on_db
    number = await _register(registry, clock)
    administration = await _finance(registry)
    with pytest.raises(Conflict):
        await registry.handle(RequestPosition(number, administration, "   ", STAFF))
    with pytest.raises(NotFound):
        await registry.handle(RequestPosition(number, 999_999, "Questions", STAFF))
    with pytest.raises(NotFound):
        await registry.handle(RequestPosition("MED-2026-99999", administration, "Questions", STAFF))
    await _finance(registry, active=False)
    with pytest.raises(Conflict, match="no longer active"):
        await registry.handle(RequestPosition(number, administration, "Questions", STAFF))


async def _sent(registry, number: str, request: PositionRequest, message_id: str) -> None:
    """The notifier's report that the request left (it files our Message-ID in the thread)."""
    await registry.handle(NotificationSent(
        notification_key=f"notice:position_request:{number}:{request.request_key}", complaint_number=number,
        notice_kind="position_request", recipient=FINANCE, message_id=message_id,
        subject_line=f"[{number}] Verzoek om standpunt"))


async def test_the_reply_is_the_administrations_answer_hidden_from_the_citizen(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _register(registry, clock, message_id="<citizen-1@example.org>")
    administration = await _finance(registry)
    request = await registry.handle(RequestPosition(number, administration, "Votre position ?", STAFF))
    await _sent(registry, number, request, "<request-1@ombudsdesk.localhost>")
    status_before = (await registry.store.complaint(number)).status
    notices_before = len(published.of(NoticeRequested))

    clock.advance(days=12)
    reply = received(at=clock.now, email=FINANCE.upper(), name="SPF Finances", subject="Re: Verzoek om standpunt",
                     in_reply_to="<request-1@ombudsdesk.localhost>", message_id="<answer-1@finances.example.be>")
    outcome = await registry.on_message_received(reply)
    assert (outcome.action, outcome.number) == ("appended", number)
    assert (await registry.on_message_received(reply)).replay  # redelivered: nothing more

    [entry] = await _rows(registry, ThreadMessage, ThreadMessage.message_key == reply.message_key)
    assert (entry.party, entry.citizen_visible, entry.direction) == ("administration", False, "in")
    [stored] = await _rows(registry, PositionRequest, PositionRequest.id == request.id)
    assert stored.answered_at == clock.now and stored.answer_message_key == reply.message_key
    assert (await registry.store.complaint(number)).status == status_before
    # No receipt to anyone: the administration does not get the citizen's "we received your message" either.
    assert len(published.of(NoticeRequested)) == notices_before

    # A message of staff to the citizen afterwards names neither our request nor the administration's answer.
    await registry.handle(SendMessage(number, "Nous avons interrogé l'administration.", STAFF))
    [to_citizen] = [n for n in published.of(NoticeRequested) if n.notice_kind == "staff_message"]
    assert to_citizen.reply_to_message_id == "<citizen-1@example.org>"
    assert to_citizen.references == ("<citizen-1@example.org>",)

    # Staff decide the citizen may see it: from then on it is part of the citizen's thread.
    assert await registry.handle(ShareAdministrationMessage(number, reply.message_key, True, STAFF, "transmis"))
    assert not await registry.handle(ShareAdministrationMessage(number, reply.message_key, True, STAFF))
    await registry.handle(SendMessage(number, "Voici la réponse de l'administration.", STAFF))
    latest = [n for n in published.of(NoticeRequested) if n.notice_kind == "staff_message"][-1]
    assert "<answer-1@finances.example.be>" in latest.references
    assert "<request-1@ombudsdesk.localhost>" not in latest.references
    with pytest.raises(NotFound):  # only an administration's message takes the flag
        await registry.handle(ShareAdministrationMessage(number, "msg-does-not-exist", True, STAFF))


async def test_the_number_in_the_subject_threads_the_reply_too(registry_on_db):
    registry, _published, clock = registry_on_db
    number = await _register(registry, clock)
    administration = await _finance(registry)
    request = await registry.handle(RequestPosition(number, administration, "Votre position ?", STAFF))
    reply = received(at=clock.now, email="second@finances.example.be", subject=f"Antwoord {number}",
                     message_id="<answer-2@finances.example.be>")
    assert (await registry.on_message_received(reply)).number == number
    [stored] = await _rows(registry, PositionRequest, PositionRequest.id == request.id)
    assert stored.answered_at is not None


async def test_the_administrations_mail_about_another_file_does_not_attach_to_this_one(registry_on_db):
    registry, _published, clock = registry_on_db
    number = await _register(registry, clock)
    other = await _register(registry, clock, email="someone.else@example.org")
    administration = await _finance(registry)
    await registry.handle(RequestPosition(number, administration, "Votre position ?", STAFF))

    # About the other file, by its number: the administration is no party of it.
    about_other = received(at=clock.now, email=FINANCE, subject=f"Concerne {other}")
    assert (await registry.on_message_received(about_other)).reason == "sender_not_party"
    # About something else, no number, no header: held, never a complaint of its own nor part of this file.
    unreferenced = received(at=clock.now, email=FINANCE, subject="Nouveau dossier de M. Dupont")
    outcome = await registry.on_message_received(unreferenced)
    assert (outcome.action, outcome.reason) == ("held", "administration_unreferenced")
    [held] = await _rows(registry, HeldMessage, HeldMessage.message_key == unreferenced.message_key)
    assert [s["number"] for s in held.suggestions] == [number]
    complaint = await registry.store.complaint(number)
    keys = {m.message_key for m in await _rows(registry, ThreadMessage, ThreadMessage.complaint_id == complaint.id)}
    assert not keys & {about_other.message_key, unreferenced.message_key}


async def test_the_reminder_and_the_no_answer_warning_go_out_once_each(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _register(registry, clock)
    administration = await _finance(registry)
    request = await registry.handle(RequestPosition(number, administration, "Votre position ?", STAFF,
                                                    reminder_days=7))
    await _sent(registry, number, request, "<request-9@ombudsdesk.localhost>")

    assert await registry.handle(SweepPositionRequests(date(2026, 12, 16))) == 0
    assert await registry.handle(SweepPositionRequests(date(2026, 12, 17))) == 1
    assert await registry.handle(SweepPositionRequests(date(2026, 12, 18))) == 0  # once
    [reminder] = [n for n in published.of(NoticeRequested) if n.notice_kind == "position_reminder"]
    assert reminder.recipient.email == FINANCE
    assert reminder.reply_to_message_id == "<request-9@ombudsdesk.localhost>"
    [approaching] = published.of(DeadlineApproaching)
    assert (approaching.deadline_kind, approaching.due, approaching.lead_days) == (
        "position_request", date(2026, 12, 24), 7)
    assert approaching.service_concerned == "SPF Finances"

    assert await registry.handle(SweepPositionRequests(date(2026, 12, 24))) == 0  # due today: not missed yet
    assert await registry.handle(SweepPositionRequests(date(2026, 12, 25))) == 1
    assert await registry.handle(SweepPositionRequests(date(2027, 1, 30))) == 0
    [missed] = published.of(DeadlineMissed)
    assert (missed.deadline_kind, missed.due, missed.complaint_number) == ("position_request", date(2026, 12, 24),
                                                                            number)


async def test_an_answered_request_raises_nothing_and_pages_cover_every_request(registry_on_db):
    registry, published, clock = registry_on_db
    administration = await _finance(registry)
    numbers = [await _register(registry, clock, email=f"citizen{i}@example.org") for i in range(5)]
    for number in numbers:
        await registry.handle(RequestPosition(number, administration, "Votre position ?", STAFF))
    answered = received(at=clock.now, email=FINANCE, subject=f"Re: {numbers[0]}")
    assert (await registry.on_message_received(answered)).number == numbers[0]

    # Pages of two: every unanswered request is warned, the answered one is not.
    assert await registry.handle(SweepPositionRequests(date(2027, 1, 30), page=2)) == 4
    assert {m.complaint_number for m in published.of(DeadlineMissed)} == set(numbers[1:])


async def test_the_annual_indicators_say_how_fast_administrations_answer(registry_on_db):
    from zoneinfo import ZoneInfo

    from services.registry.indicators import indicators_csv
    from services.registry.reports import annual_report

    registry, _published, clock = registry_on_db
    brussels = ZoneInfo("Europe/Brussels")
    assert "administrations" not in await annual_report(registry.store, 2026, brussels)  # no request: as before
    finance = await _finance(registry)
    onem = await registry.handle(SaveAdministration("onem", "ONEM", STAFF, emails=("a@onem.example.be",)))
    numbers = [await _register(registry, clock, email=f"c{i}@example.org") for i in range(3)]
    for number in numbers:
        await registry.handle(RequestPosition(number, finance, "Votre position ?", STAFF))
    await registry.handle(RequestPosition(numbers[0], onem, "Et la vôtre ?", STAFF))
    for days, number in ((4, numbers[0]), (10, numbers[1])):  # requested on 24 November
        clock.advance(days=days - (clock.now.date() - date(2026, 11, 24)).days)
        await registry.on_message_received(received(at=clock.now, email=FINANCE, subject=f"Re: {number}"))

    figures = (await annual_report(registry.store, 2026, brussels))["administrations"]
    assert (figures["requests"], figures["answered"], figures["unanswered"]) == (4, 2, 2)
    assert (figures["median_days"], figures["p90_days"]) == (7.0, 10)
    assert figures["overdue"] == 2  # 30 days from 24 November: overdue at 31 December
    finance_figures = figures["by_administration"]["SPF Finances"]
    assert (finance_figures["requests"], finance_figures["answered"], finance_figures["median_days"]) == (3, 2, 7.0)
    assert figures["by_administration"]["ONEM"]["unanswered"] == 1
    # Up to 30 November only: nothing overdue yet, the answer of 4 December not yet given.
    early = (await annual_report(registry.store, 2026, brussels, as_of=date(2026, 11, 30)))["administrations"]
    assert (early["answered"], early["overdue"], early["median_days"]) == (1, 0, 4.0)
    rows = indicators_csv(await annual_report(registry.store, 2026, brussels)).splitlines()
    assert "administrations,by_administration.SPF Finances.median_days,7.0" in rows
