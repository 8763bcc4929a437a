"""The back office's part of requests for information (issue 15), through ASGI on a real database (SQLite and
PostgreSQL): the file page's placeholder, the part with the checkboxes screening ticked, sending a request (once per
form, audited, the file paused), refusals shown on the page, hostile text escaped, and the deadline dashboard's list
within the reader's scope."""

from __future__ import annotations

import re
from html import unescape

from services.registry import commands
from services.registry.access.roles import Role
from shared.events import NoticeRequested
from tests.backoffice.conftest import TEST_CSRF, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import principal

AGENT = principal("agent@med.example", Role.STAFF, account_id=21)
AGENT_NL = principal("agent@med.example", Role.STAFF, account_id=21, language="nl")
COLLEAGUE = principal("colleague@med.example", Role.STAFF, account_id=22)
DPO = principal("dpo@med.example", Role.DPO, account_id=23)
ADMIN = principal("admin@med.example", Role.ADMIN, account_id=24)
OLD_FACTS = "Mon allocation de 2019 n'a jamais été payée."  # no first-line contact stated, only an old year
HTMX = {"HX-Request": "true"}


def part(number: str) -> str:
    return f"/backoffice/files/{number}/information-requests"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def ticked(html: str) -> list[str]:
    return re.findall(r'name="missing" value="([a-z_]+)" checked', html)


async def _acknowledged(app, **fields) -> str:
    number = await app.file(handler=AGENT.email, **fields)
    await app.registry.handle(commands.Transition(number, "acknowledged", AGENT.email))
    return number


async def test_the_file_page_holds_a_placeholder_the_part_fills(backoffice_app):
    app = backoffice_app
    number = await _acknowledged(app, text=OLD_FACTS)
    async with app.client(AGENT) as client:
        page = await client.get(f"/backoffice/files/{number}")
        fragment = await client.get(part(number), headers=HTMX)
        alone = await client.get(part(number))
    assert page.status_code == 200
    # htmx loads the part when the page is shown; without JavaScript, a link to the same part on its own page.
    assert f'hx-get="{part(number)}" hx-trigger="load"' in page.text and f'href="{part(number)}"' in page.text
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert alone.status_code == 200 and "<html" in alone.text and f'href="/backoffice/files/{number}"' in alone.text
    # Screening could not tell whether the service was contacted first nor when the facts happened: both ticked.
    assert ticked(fragment.text) == ["first_line_contact", "facts_date"]
    text = words(fragment.text)
    assert "Aucune demande d'informations n'a été envoyée." in text
    assert text.count("proposé par le tri") == 2
    assert "Contact préalable avec le service concerné (première ligne)" in text and "Adresse postale" in text
    reads = [(e.action, (e.details or {}).get("part")) for e in await app.app.state.audit.for_file(number, limit=50)]
    assert ("file.read", "information_requests") in reads


async def test_sending_a_request_pauses_the_file_once_per_form(backoffice_app):
    app = backoffice_app
    number = await _acknowledged(app, text=OLD_FACTS)
    form = {"csrf_token": TEST_CSRF, "missing": ["facts_date", "postal_address"], "request_key": "ab" * 16,
            "text": "Merci de joindre <b>la décision</b>.", "reason": "proposition du tri"}
    async with app.client(AGENT) as client:
        sent = await client.post(part(number), data=form)
        again = await client.post(part(number), data=form, headers=HTMX)  # the same form, a second click
        shown = await client.get(part(number), headers=HTMX)
    assert sent.status_code == 303 and sent.headers["location"] == f"/backoffice/files/{number}#information-requests"
    assert again.status_code == 204 and again.headers["HX-Redirect"].endswith("#information-requests")
    complaint = await app.store.complaint(number)
    assert complaint.status == "waiting_for_citizen"
    notices = [e for e in app.publisher.of(NoticeRequested) if e.notice_kind == "information_request"]
    assert len(notices) == 1 and notices[0].context["missing"] == ["facts_date", "postal_address"]
    # The request as the part shows it: waiting, until 24 December 2026 (24 November + 30 days), the text escaped.
    assert "En attente de réponse" in words(shown.text) and "24/12/2026" in words(shown.text)
    assert "&lt;b&gt;la décision&lt;/b&gt;" in shown.text and "<b>la décision" not in shown.text
    # Who sent it is the signed-in person, recorded in the change log and the audit trail.
    _complaint, _thread, changes, _parties = await app.store.complaint_file(number)
    assert [c.actor for c in changes if c.change == "information_requested"] == [AGENT.email]
    audited = [e for e in await app.app.state.audit.for_file(number, limit=50)
               if e.action == "change.request_information"]
    assert len(audited) == 2 and audited[0].reason == "proposition du tri"


async def test_a_refused_request_is_said_on_the_page_and_changes_nothing(backoffice_app):
    app = backoffice_app
    number = await _acknowledged(app)
    async with app.client(AGENT) as client:
        nothing = await client.post(part(number), data={"csrf_token": TEST_CSRF, "text": "   "})
        unknown = await client.post(part(number), data={"csrf_token": TEST_CSRF, "missing": "shoe_size"},
                                    headers=HTMX)
        too_long = await client.post(part(number), data={"csrf_token": TEST_CSRF, "missing": "facts_date",
                                                         "text": "x" * 20_001})
    assert nothing.status_code == 409 and "La demande n'a pas été envoyée." in words(nothing.text)
    assert unknown.status_code == 200 and "unknown missing item" in unknown.text
    assert too_long.status_code == 422
    assert (await app.store.complaint(number)).status == "acknowledged"
    assert [e for e in app.publisher.of(NoticeRequested) if e.notice_kind == "information_request"] == []


async def test_no_form_where_no_request_can_go(backoffice_app):
    app = backoffice_app
    received = await app.file(handler=AGENT.email)  # not acknowledged yet
    async with app.client(AGENT_NL) as client:
        shown = await client.get(part(received), headers=HTMX)
    assert 'name="missing"' not in shown.text
    assert "kan niet worden verstuurd voor een dossier met status „Ontvangen”" in words(shown.text)


async def test_reading_the_part_follows_the_files_rules(backoffice_app):
    app = backoffice_app
    number = await _acknowledged(app)
    hidden = await _acknowledged(app, data_protection=True)
    async with app.client(COLLEAGUE) as client:
        asked = await client.get(part(number))  # not the handler: the file asks why first
        posted = await client.post(part(number), data={"csrf_token": TEST_CSRF, "missing": "facts_date"})
        refused = await client.get(part(hidden))
    assert asked.status_code == 303 and asked.headers["location"] == f"/backoffice/files/{number}"
    assert posted.status_code == 303 and posted.headers["location"] == f"/backoffice/files/{number}"
    assert refused.status_code == 403
    assert (await app.store.complaint(number)).status == "acknowledged"
    async with app.client(ADMIN) as client:
        assert (await client.get(part(number))).status_code == 403


async def test_the_deadline_dashboard_lists_waiting_files_within_the_scope(backoffice_app):
    app = backoffice_app
    ordinary = await _acknowledged(app, subject="Allocations en retard")
    private = await _acknowledged(app, subject="Mes données", data_protection=True)
    for number in (ordinary, private):
        await app.registry.handle(commands.RequestInformation(number, ("facts_date",), "", AGENT.email))
    async with app.client(AGENT) as client:
        dashboard = await client.get("/backoffice/deadlines")
        staff_part = await client.get("/backoffice/deadlines/information-requests", headers=HTMX)
        alone = await client.get("/backoffice/deadlines/information-requests?mine=1")
    async with app.client(DPO) as client:
        dpo_part = await client.get("/backoffice/deadlines/information-requests", headers=HTMX)
    assert 'hx-get="/backoffice/deadlines/information-requests"' in dashboard.text
    rows = re.findall(r'data-number="([^"]+)"', staff_part.text)
    assert rows == [ordinary]  # a data-protection file is a DPO's alone
    assert "Allocations en retard" in staff_part.text and "24/12/2026" in words(staff_part.text)
    assert re.findall(r'data-number="([^"]+)"', alone.text) == [ordinary] and "<html" in alone.text
    assert private in re.findall(r'data-number="([^"]+)"', dpo_part.text)
