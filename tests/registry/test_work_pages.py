"""The holding-pen pages of the back office, over the ASGI app on a real database (SQLite and PostgreSQL), the
person given through `app.dependency_overrides[page_principal]`: the list with its reasons and suggested files,
the message's own page (a read recorded in the audit trail), attach / register / discard, the bulk actions with
their summary, and what a person who may not see a suggested file is shown of it.

`pages_client` and `person` are shared with the other `test_work_pages_*` modules.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from services.registry import commands
from services.registry.access.dependencies import page_principal
from services.registry.access.roles import Principal, Role
from services.registry.api import create_api
from tests.registry.conftest import received

LANGUAGES = ("fr", "nl", "de", "en")


def person(*roles: Role, email: str = "agent@med.be", account_id: int = 7, language: str = "fr",
           services: tuple[str, ...] = ()) -> Principal:
    return Principal(account_id, email, frozenset(roles), display_name="", services=services, language=language)


class Acting:
    """Who the next request comes from (tests switch person between requests)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def __call__(self) -> Principal:
        return self.principal


@asynccontextmanager
async def pages_client(registry, principal: Principal) -> AsyncIterator[tuple[httpx.AsyncClient, Acting]]:
    app = create_api(registry)
    acting = Acting(principal)
    app.dependency_overrides[page_principal] = acting
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client, acting


async def audit_actions(client: httpx.AsyncClient, account_id: int) -> list[tuple[str, str | None, dict]]:
    """The audit trail's entries of one account, oldest first: (action, number, details)."""
    records = await client.app.state.audit.for_account(account_id, limit=500)  # type: ignore[attr-defined]
    return [(r.action, r.number, dict(r.details or {})) for r in sorted(records, key=lambda r: r.sequence)]


def main_text(html: str) -> str:
    """The page's main region, tags dropped, whitespace folded (what a reader sees, not the navigation)."""
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


async def held_ids(registry) -> list[int]:
    return [h.id for h in await registry.store.held_messages("pending")]


async def hold_for(registry, clock, number: str, email: str, subject: str = "Complément") -> int:
    """A message quoting `number` from someone who is not a party of it: held (sender_not_party)."""
    outcome = await registry.on_message_received(received(at=clock.now, email=email, name="Quidam", subject=subject,
                                                          candidate_case_numbers=(number,)))
    assert outcome.action == "held" and outcome.reason == "sender_not_party"
    return (await held_ids(registry))[-1]


TITLES = {"fr": "Messages en attente", "nl": "Wachtende berichten", "de": "Zurückgehaltene Nachrichten",
          "en": "Holding pen"}
REASONS = {"fr": "Expéditeur étranger au dossier", "nl": "Afzender is geen partij",
           "de": "Absender ist nicht beteiligt", "en": "Sender is not a party"}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_list_shows_reason_sender_verdict_and_suggested_files_in_each_language(registry_on_db, language):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now, subject="Facture d'eau"))
    await hold_for(registry, clock, case.number, "cousin@example.be", subject="Au sujet du dossier")
    async with pages_client(registry, person(Role.STAFF, language=language)) as (client, _acting):
        page = await client.get("/backoffice/holding-pen")
    assert page.status_code == 200
    assert f'<html lang="{language}">' in page.text
    text = main_text(page.text)
    assert TITLES[language] in text and REASONS[language] in text
    assert "cousin@example.be" in text and "Au sujet du dossier" in text
    # The suggested file is a link to it, with its subject; the row is reachable by keyboard.
    assert f'href="/backoffice/files/{case.number}"' in page.text and "Facture d&#39;eau" in page.text
    assert re.search(r'<tr data-row tabindex="0" data-held="\d+">', page.text)
    assert 'name="csrf_token"' in page.text


async def test_who_may_not_take_the_holding_pen_is_refused(registry_on_db):
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.ADMIN)) as (client, _acting):
        page = await client.get("/backoffice/holding-pen")
        assert page.status_code == 403
        refused = await client.post("/backoffice/holding-pen/bulk", data={"action": "discard", "held": "1"})
        assert refused.status_code == 403


async def test_opening_a_message_is_an_audited_read_and_attaching_admits_the_sender(registry_on_db):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now))
    held = await hold_for(registry, clock, case.number, "avocat@cabinet.be")
    staff = person(Role.STAFF, account_id=41)
    async with pages_client(registry, staff) as (client, _acting):
        listed = await client.get("/backoffice/holding-pen")
        assert listed.status_code == 200
        assert [a for a, _n, _d in await audit_actions(client, 41)] == []  # the list shows no message's text

        detail = await client.get(f"/backoffice/holding-pen/{held}")
        assert detail.status_code == 200
        assert "je conteste la facture" in detail.text  # the message's text, on its own page only
        assert await audit_actions(client, 41) == [("held.read", None, {"held_id": held})]

        attached = await client.post(f"/backoffice/holding-pen/{held}/attach",
                                     data={"number": case.number, "other_number": "", "add_correspondent": "1",
                                           "csrf_token": "x"})
        assert attached.status_code == 200
        assert case.number in main_text(attached.text)
        assert await held_ids(registry) == []
        complaint, thread, changes, parties = await registry.store.complaint_file(case.number)
        assert len(thread) == 2 and "avocat@cabinet.be" in parties
        attach_change = [c for c in changes if c.change == "follow_up_attached"]
        assert attach_change and attach_change[0].actor == "agent@med.be"  # the account, never a form field
        assert (await audit_actions(client, 41))[-1] == (
            "change.attach_held", case.number, {"held_id": held, "add_correspondent": True})

        # Once resolved, the message is gone from the pen: its page says so, a second attach changes nothing.
        again = await client.post(f"/backoffice/holding-pen/{held}/attach", data={"number": case.number})
        assert again.status_code == 404
        assert len((await registry.store.complaint_file(case.number))[1]) == 2


async def test_a_typed_number_wins_and_an_unknown_one_is_a_message_next_to_the_field(registry_on_db):
    registry, _published, clock = registry_on_db
    first = await registry.on_message_received(received(at=clock.now))
    second = await registry.on_message_received(received(at=clock.now, email="autre@example.be", name="Autre"))
    held = await hold_for(registry, clock, first.number, "tiers@example.be")
    async with pages_client(registry, person(Role.STAFF, language="en")) as (client, _acting):
        unknown = await client.post(f"/backoffice/holding-pen/{held}/attach",
                                    data={"number": first.number, "other_number": "MED-2026-09999"})
        assert unknown.status_code == 403  # the answer given for a file one may not see, too (same words)
        assert "No file you may see has that number." in main_text(unknown.text)
        assert 'value="MED-2026-09999"' in unknown.text and 'aria-invalid="true"' in unknown.text
        assert await held_ids(registry) == [held]

        hostile = await client.post(f"/backoffice/holding-pen/{held}/attach",
                                    data={"other_number": "<script>alert(1)</script>" * 3})
        assert hostile.status_code == 422 and "<script>alert(1)" not in hostile.text

        typed = await client.post(f"/backoffice/holding-pen/{held}/attach",
                                  data={"number": first.number, "other_number": f"  {second.number.lower()} "})
        assert typed.status_code == 200
        assert len((await registry.store.complaint_file(second.number))[1]) == 2
        assert len((await registry.store.complaint_file(first.number))[1]) == 1


async def test_register_and_discard_one_message(registry_on_db):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now))
    to_register = await hold_for(registry, clock, case.number, "nouveau@example.be")
    to_discard = await hold_for(registry, clock, case.number, "spam@example.be")
    async with pages_client(registry, person(Role.STAFF, account_id=3)) as (client, _acting):
        registered = await client.post(f"/backoffice/holding-pen/{to_register}/register")
        assert registered.status_code == 200
        number = re.search(r"MED-2026-\d{5}", main_text(registered.text)).group(0)
        assert number != case.number and (await registry.store.complaint(number)).complainant_email == \
            "nouveau@example.be"

        asked = await client.post(f"/backoffice/holding-pen/{to_discard}/discard")
        assert asked.status_code == 200 and 'name="confirmed" value="1"' in asked.text
        assert await held_ids(registry) == [to_discard]  # nothing discarded before the confirmation
        done = await client.post(f"/backoffice/holding-pen/{to_discard}/discard", data={"confirmed": "1"})
        assert done.status_code == 200 and await held_ids(registry) == []
        assert [a for a, _n, _d in await audit_actions(client, 3)] == ["change.register_held", "change.discard_held"]


async def test_bulk_actions_report_what_became_of_each_message(registry_on_db):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now))
    other = await registry.on_message_received(received(at=clock.now, email="b@example.be", name="B"))
    ids = [await hold_for(registry, clock, case.number, f"p{i}@example.be", subject=f"Message {i}")
           for i in range(5)]
    async with pages_client(registry, person(Role.SUPERVISOR, language="en")) as (client, _acting):
        every = await client.get("/backoffice/holding-pen", params={"select": "all"})
        assert len(re.findall(r'name="held" value="\d+"\s+id="held-\d+"\s+checked', every.text)) == 5

        # Register two, and a third id that another person resolved meanwhile: two numbers, one refusal.
        await registry.handle(commands.DiscardHeld(ids[2], "colleague@med.be"))
        registered = await client.post("/backoffice/holding-pen/bulk",
                                       data={"action": "register", "held": [str(ids[0]), str(ids[1]), str(ids[2])]})
        assert registered.status_code == 200
        summary = registered.text.split('id="summary-title"', 1)[1].split("</section>", 1)[0]
        assert "2 of 3 message(s) handled" in summary
        numbers = re.findall(r"Registered as (MED-2026-\d{5})", summary)
        # Numbering continues the register's own: the two after the existing files, in the order selected.
        last = max(int(case.number[-5:]), int(other.number[-5:]))
        assert numbers == [f"MED-2026-{last + 1:05d}", f"MED-2026-{last + 2:05d}"]
        assert "This message was already handled." in summary and "Message 2" in summary

        # Attach all to one number (typed in lower case), then discard what is left after confirming.
        attached = await client.post("/backoffice/holding-pen/bulk",
                                     data={"action": "attach", "number": other.number.lower(), "held": [str(ids[3])]})
        assert f"Attached to file {other.number}" in attached.text
        assert len((await registry.store.complaint_file(other.number))[1]) == 2

        no_number = await client.post("/backoffice/holding-pen/bulk", data={"action": "attach", "held": [str(ids[4])]})
        assert no_number.status_code == 422 and "Give the file number." in no_number.text
        nothing = await client.post("/backoffice/holding-pen/bulk", data={"action": "register"})
        assert nothing.status_code == 422 and "Select at least one message." in nothing.text
        no_action = await client.post("/backoffice/holding-pen/bulk", data={"held": [str(ids[4])]})
        assert no_action.status_code == 422 and "Choose an action." in no_action.text
        junk = await client.post("/backoffice/holding-pen/bulk",
                                 data={"action": "register", "held": ["x", "-1", "1e3"]})
        assert junk.status_code == 422

        confirm = await client.post("/backoffice/holding-pen/bulk", data={"action": "discard", "held": [str(ids[4])]})
        assert "Discard 1 message(s)" in confirm.text and await held_ids(registry) == [ids[4]]
        discarded = await client.post("/backoffice/holding-pen/bulk",
                                      data={"action": "discard", "held": [str(ids[4])], "confirmed": "1"})
        assert "1 of 1 message(s) handled" in discarded.text and await held_ids(registry) == []
        assert "No message is waiting." in discarded.text


async def test_a_data_protection_file_is_suggested_by_its_number_only_to_whoever_may_not_see_it(registry_on_db):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now, subject="Fuite de mes données médicales"))
    await registry.handle(commands.Classify(case.number, "dpo@med.be", data_protection=True))
    held = await hold_for(registry, clock, case.number, "proche@example.be")
    async with pages_client(registry, person(Role.STAFF)) as (client, acting):
        for path in ("/backoffice/holding-pen", f"/backoffice/holding-pen/{held}"):
            page = await client.get(path)
            assert page.status_code == 200 and case.number in page.text
            assert "données médicales" not in page.text
            assert f"/backoffice/files/{case.number}" not in page.text

        acting.principal = person(Role.DPO, email="dpo@med.be")
        page = await client.get("/backoffice/holding-pen")
        assert "données médicales" in page.text and f'href="/backoffice/files/{case.number}"' in page.text


async def test_attaching_to_a_file_one_may_not_see_answers_as_for_an_unknown_number(registry_on_db):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now, subject="Fuite de mes données médicales"))
    await registry.handle(commands.Classify(case.number, "dpo@med.be", data_protection=True))
    held = await hold_for(registry, clock, case.number, "intrus@example.be")
    other = await hold_for(registry, clock, case.number, "curieux@example.be")
    unknown_number = "MED-2026-09999"
    async with pages_client(registry, person(Role.STAFF, account_id=21, language="en")) as (client, acting):
        detail = await client.get(f"/backoffice/holding-pen/{held}")
        # Named, not offered: the suggestion the person may not see cannot be chosen.
        assert re.search(rf'value="{case.number}" id="suggested-1"\s+disabled>', detail.text)

        hidden = await client.post(f"/backoffice/holding-pen/{held}/attach",
                                   data={"number": case.number, "add_correspondent": "1"})
        unknown = await client.post(f"/backoffice/holding-pen/{held}/attach",
                                    data={"other_number": unknown_number, "add_correspondent": "1"})
        assert hidden.status_code == unknown.status_code == 403
        assert "No file you may see has that number." in main_text(hidden.text)
        assert main_text(hidden.text) == main_text(unknown.text)

        bulk_hidden = await client.post("/backoffice/holding-pen/bulk", data={
            "action": "attach", "number": case.number.lower(), "held": [str(held), str(other)]})
        bulk_unknown = await client.post("/backoffice/holding-pen/bulk", data={
            "action": "attach", "number": unknown_number, "held": [str(held), str(other)]})
        assert bulk_hidden.status_code == bulk_unknown.status_code == 403
        summary = bulk_hidden.text.split('id="summary-title"', 1)[1].split("</section>", 1)[0]
        assert "0 of 2 message(s) handled" in summary and summary.count("No file you may see has that number.") == 2
        assert main_text(bulk_hidden.text) == main_text(bulk_unknown.text)

        assert await held_ids(registry) == [held, other]
        _complaint, thread, _changes, parties = await registry.store.complaint_file(case.number)
        assert len(thread) == 1 and "intrus@example.be" not in parties
        trail = [(action, number) for action, number, _details in await audit_actions(client, 21)]
        # One refused access per attempt on the hidden file (the bulk one checks the target once); none for the
        # number no file has; no change.
        assert [entry for entry in trail if entry[0] != "held.read"] == [("file.denied", case.number)] * 2

        acting.principal = person(Role.DPO, email="dpo@med.be", account_id=22)
        done = await client.post(f"/backoffice/holding-pen/{held}/attach", data={"number": case.number})
        assert done.status_code == 200 and await held_ids(registry) == [other]
        assert len((await registry.store.complaint_file(case.number))[1]) == 2
