"""The manual-entry page on a real database (SQLite and PostgreSQL): a complaint received by phone, at the counter
or by post gets the next number of the mail's numbering and opens as its file; bad input is refused field by field,
what was typed kept."""

from __future__ import annotations

import re
from datetime import date

import pytest

from services.registry.access.roles import Role
from services.registry.repository import ComplaintFilter
from tests.registry.conftest import received
from tests.registry.test_work_pages import LANGUAGES, audit_actions, main_text, pages_client, person

TODAY = date(2026, 11, 24)  # the registry_on_db clock's day


def entry(**changes: str) -> dict[str, str]:
    form = {"channel": "phone", "received_on": "2026-11-20", "name": "Marie Lambert", "email": "marie@example.be",
            "postal_address": "Rue Haute 1\n1000 Bruxelles", "language": "nl", "kind": "complaint",
            "subject": "Appel : allocations suspendues", "text": "Elle explique que ses allocations sont suspendues.",
            "csrf_token": "t"}
    form.update(changes)
    return form


def request_key_of(html: str) -> str:
    return re.search(r'name="request_key" value="([0-9a-f]{32})"', html).group(1)


async def test_a_phone_complaint_continues_the_mail_numbering_and_opens_its_file(registry_on_db):
    registry, _published, clock = registry_on_db
    mailed = await registry.on_message_received(received(at=clock.now))
    year, sequence = mailed.number.rsplit("-", 1)
    async with pages_client(registry, person(Role.STAFF, account_id=12)) as (client, _acting):
        form = await client.get("/backoffice/new")
        assert form.status_code == 200
        assert 'name="received_on" id="field-received_on" value="2026-11-24" max="2026-11-24"' in form.text
        key = request_key_of(form.text)

        created = await client.post("/backoffice/new", data=entry(request_key=key))
        assert created.status_code == 303
        number = f"{year}-{int(sequence) + 1:0{len(sequence)}d}"
        assert created.headers["location"] == f"/backoffice/files/{number}"

        complaint = await registry.store.complaint(number)
        assert complaint.channel == "phone" and complaint.legal_start == date(2026, 11, 20)
        assert complaint.complainant_name == "Marie Lambert" and complaint.complainant_email == "marie@example.be"
        assert complaint.complainant_language == "nl" and complaint.body.startswith("Elle explique")
        assert complaint.complainant_postal_address.startswith("Rue Haute 1")
        _complaint, _thread, changes, _parties = await registry.store.complaint_file(number)
        assert changes[0].change == "registered" and changes[0].actor == "agent@med.be"
        assert (await audit_actions(client, 12))[-1][:2] == ("change.register_manual", number)

        # The same form sent twice (a double click, a reload): one complaint.
        again = await client.post("/backoffice/new", data=entry(request_key=key))
        assert again.headers["location"] == f"/backoffice/files/{number}"
        letter = await client.post("/backoffice/new", data=entry(channel="letter", email="", request_key="0" * 31))
        assert letter.status_code == 303
        assert letter.headers["location"] == f"/backoffice/files/{year}-{int(sequence) + 2:0{len(sequence)}d}"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("received_on", "2026-11-25", "The date received cannot be in the future."),
    ("received_on", "24/11/2026", "Give a valid date (YYYY-MM-DD)."),
    ("email", "marie at example.be", "This email address is not valid"),
    ("email", "marie@example.be, boss@example.be", "This email address is not valid"),
    ("email", "marie@example.be\r\nBcc: x@example.be", "This email address is not valid"),
    ("text", "   ", "The text of the complaint is required."),
    ("channel", "email", "Choose how the complaint was received."),
    ("kind", "lawsuit", "Choose a kind from the list."),
    ("language", "xx", "Choose a language from the list."),
    ("subject", "x" * 501, "This field is too long."),
])
async def test_bad_input_is_refused_next_to_its_field_and_the_input_kept(registry_on_db, field, value, message):
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.STAFF, language="en")) as (client, _acting):
        refused = await client.post("/backoffice/new",
                                    data=entry(**{field: value, "name": "<b>Marie</b> & \"Lambert\""}))
    assert refused.status_code == 422
    assert await registry.store.count_complaints(ComplaintFilter()) == 0
    html = refused.text
    error = re.search(rf'<p class="field-error" id="error-{field}">([^<]*)</p>', html)
    assert error is not None and message in error.group(1)
    assert re.search(rf'aria-describedby="[^"]*error-{field}[^"]*"', html)
    # What was typed stays, escaped.
    assert 'value="&lt;b&gt;Marie&lt;/b&gt; &amp; &#34;Lambert&#34;"' in html
    assert "The complaint was not registered" in main_text(html)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_form_speaks_each_language_and_needs_the_manual_entry_permission(registry_on_db, language):
    registry, _published, _clock = registry_on_db
    channel = {"fr": "Téléphone", "nl": "Telefoon", "de": "Telefon", "en": "Phone"}[language]
    async with pages_client(registry, person(Role.STAFF, language=language)) as (client, acting):
        page = await client.get("/backoffice/new")
        assert page.status_code == 200 and f'<html lang="{language}">' in page.text
        assert channel in main_text(page.text) and 'name="csrf_token"' in page.text
        acting.principal = person(Role.DPO, language=language)  # a DPO reads, does not take calls
        assert (await client.get("/backoffice/new")).status_code == 403
        assert (await client.post("/backoffice/new", data=entry())).status_code == 403
    assert await registry.store.count_complaints(ComplaintFilter()) == 0
