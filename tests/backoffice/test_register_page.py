"""The register page through ASGI (no browser): the query string and what it selects, the person's scope, the CSV
export, saved searches and bulk actions with their refusals. SQLite and PostgreSQL (`database_url`)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from services.registry import commands
from services.registry.access.roles import Role
from services.registry.backoffice.pages.register import EXPORT_LIMIT, PAGE_SIZE, RegisterQuery
from tests.backoffice.conftest import TEST_CSRF
from tests.backoffice.helpers import listed, principal
from tests.registry.test_file_page import accounts_for

SUPERVISOR = principal("superviseur@ombudsdesk.example", Role.SUPERVISOR, account_id=10)
STAFF = principal("agent@ombudsdesk.example", Role.STAFF, account_id=11)
OTHER_STAFF = principal("collegue@ombudsdesk.example", Role.STAFF, account_id=12)
DPO = principal("dpo@ombudsdesk.example", Role.DPO, account_id=13)
ADMIN = principal("admin@ombudsdesk.example", Role.ADMIN, account_id=14)
NOV = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


# --- the query string (pure) -----------------------------------------------------------------------------------------
def test_hostile_or_malformed_values_are_dropped_not_errors():
    query = RegisterQuery.parse({"status": "'; DROP TABLE complaints; --", "kind": "suggestion", "page": "-3",
                                 "sort": "id desc", "order": "sideways", "due_before": "2026-13-45",
                                 "handler": "-", "q": "  facture \t  impayée ", "overdue": "1",
                                 "screening": "yes", "sender": "trusted", "channel": "pigeon"})
    assert query == RegisterQuery(text="facture impayée", kind="suggestion", handler="", overdue=True)
    assert RegisterQuery.parse({"page": "many"}).page == 1
    assert RegisterQuery.parse({"page": "9" * 40}).page == 1_000_000
    assert len(RegisterQuery.parse({"q": "x" * 5000}).text or "") == 200


def test_a_query_string_survives_printing_and_reading_back():
    query = RegisterQuery(text="100% remboursé & co", status="in_review", channel="letter", service="fps-finance",
                          theme="taxation", handler="a.b@example.org", due_before=date(2027, 1, 31), overdue=True,
                          screening_pending=True, sender="verified", sort="answer_due", descending=False, page=3)
    assert RegisterQuery.from_string(query.query_string()) == query
    assert RegisterQuery.from_string("?" + RegisterQuery(handler="").query_string()).handler == ""
    assert RegisterQuery().query_string() == ""  # the default list is the bare page


def test_sorting_a_column_twice_turns_its_order_and_goes_back_to_page_one():
    query = RegisterQuery(page=4)
    by_due = RegisterQuery.from_string(query.sorted_by("answer_due").split("?", 1)[1])
    assert (by_due.sort, by_due.descending, by_due.page) == ("answer_due", False, 1)  # soonest deadline first
    again = RegisterQuery.from_string(by_due.sorted_by("answer_due").split("?", 1)[1])
    assert (again.sort, again.descending) == ("answer_due", True)


# --- what the page lists ---------------------------------------------------------------------------------------------
async def test_each_filter_selects_its_files(backoffice_app):
    app = backoffice_app
    verified = await app.file(name="Amélie Verte", verdict="verified", service="fps-finance", theme="taxation",
                              handler=STAFF.email, at=NOV)
    letter = await app.file(name="Bruno Lettre", channel="web_form", service="onem", kind="suggestion",
                            at=NOV + timedelta(days=1))
    reviewed = await app.file(name="Chloé Revue", service="onem", at=datetime(2026, 9, 1, 9, tzinfo=timezone.utc))
    await app.registry.handle(commands.DecideScreening(reviewed, "tests", admissible=True))  # no longer pending
    await app.registry.handle(commands.Transition(reviewed, "acknowledged", "tests"))
    await app.registry.handle(commands.Transition(reviewed, "in_review", "tests"))
    reviewed_due = (await app.store.complaint(reviewed)).answer_due
    assert reviewed_due < app.registry.today()  # received in September: its answer is late on 24 November

    async with app.client(SUPERVISOR) as client:
        async def numbers(query: str) -> set[str]:
            response = await client.get(f"/backoffice/register?{query}")
            assert response.status_code == 200, response.text
            return set(listed(response.text))

        assert await numbers("") == {verified, letter, reviewed}
        assert await numbers("status=in_review") == {reviewed}
        assert await numbers("kind=suggestion") == {letter}
        assert await numbers("channel=web_form") == {letter}
        assert await numbers("service=onem") == {letter, reviewed}
        assert await numbers("theme=taxation") == {verified}
        assert await numbers(f"handler={STAFF.email}") == {verified}
        assert await numbers("handler=-") == {letter, reviewed}
        assert await numbers("sender=verified") == {verified}
        assert await numbers("screening=pending") == {verified, letter}
        assert await numbers("overdue=1") == {reviewed}
        assert await numbers(f"due_before={reviewed_due.isoformat()}") == {reviewed}
        assert await numbers("service=onem&kind=suggestion") == {letter}
        assert await numbers("q=bruno") == {letter}
        assert await numbers(f"q={reviewed.lower()}") == {reviewed}  # a case number finds its file
        # Hostile values are ignored rather than failing the page.
        assert await numbers("status=%27%20OR%201%3D1&page=-1&sort=%3Bdrop") == {verified, letter, reviewed}


async def test_staff_search_text_is_matched_literally(backoffice_app):
    app = backoffice_app
    percent = await app.file(subject="Remise de 100% refusée", service="onem")
    await app.file(subject="Remise de 1000 euros refusée", service="onem")
    underscore = await app.file(subject="Dossier a_b", service="onem")
    await app.file(subject="Dossier axb", service="onem")
    async with app.client(SUPERVISOR) as client:
        assert listed((await client.get("/backoffice/register", params={"q": "100%"})).text) == [percent]
        assert listed((await client.get("/backoffice/register", params={"q": "a_b"})).text) == [underscore]


async def test_sorted_by_answer_due_and_paged_by_fifty(backoffice_app):
    app = backoffice_app
    start = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
    # Received on different days: their answer deadlines differ and follow the receipt dates.
    numbers = [await app.file(name=f"Personne {i}", service="onem", at=start + timedelta(days=i % 40, minutes=i))
               for i in range(PAGE_SIZE + 3)]
    due = {n: (await app.store.complaint(n)).answer_due for n in numbers}
    async with app.client(SUPERVISOR) as client:
        first = await client.get("/backoffice/register", params={"sort": "answer_due", "order": "asc"})
        second = await client.get("/backoffice/register", params={"sort": "answer_due", "order": "asc", "page": 2})
        beyond = await client.get("/backoffice/register", params={"page": 99})
        last = await client.get("/backoffice/register", params={"page": 2})
    page_one, page_two = listed(first.text), listed(second.text)
    assert len(page_one) == PAGE_SIZE and len(page_two) == 3
    assert set(page_one) | set(page_two) == set(numbers)
    dues = [due[n] for n in page_one + page_two]
    assert dues == sorted(dues)
    assert f"Dossiers trouvés\u00a0: {PAGE_SIZE + 3}" in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    assert listed(beyond.text) == listed(last.text)  # a page past the end shows the last one


async def test_a_long_list_is_counted_to_a_bound_and_the_pager_still_walks_it_to_the_end(backoffice_app,
                                                                                         monkeypatch):
    """Counted only to COUNT_MARGIN files past the current page: beyond, "more than N" and a next page; near the end
    the exact count, the last page, and a page past the end shows the last one."""
    from services.registry.backoffice.pages import register

    app = backoffice_app
    # Pages of two, counted to one page past the current one: seven files make the bound matter.
    monkeypatch.setattr(register, "PAGE_SIZE", 2)
    monkeypatch.setattr(register, "COUNT_MARGIN", 2)
    numbers = [await app.file(name=f"Personne {i}", service="onem", at=NOV + timedelta(hours=i)) for i in range(7)]
    seen: list[str] = []
    heads = []
    async with app.client(SUPERVISOR) as client:
        url: str | None = "/backoffice/register"
        while url:
            response = await client.get(url)
            assert response.status_code == 200
            seen += listed(response.text)
            head = response.text.split('class="result-count">')[1].split("</p>")[0]
            heads.append(re.sub(r"[ \t\n]+", " ", head).strip())  # the no-break space stays
            found = re.search(r'href="([^"]+)"[^>]*rel="next"', response.text)
            url = found.group(1).replace("&amp;", "&") if found else None
            assert len(heads) < 10
        beyond = await client.get("/backoffice/register", params={"page": 99})
    assert seen == list(reversed(numbers))  # every file once, newest first
    assert heads == ["Dossiers trouvés\u00a0: plus de 4 · page 1 sur plus de 2",
                     "Dossiers trouvés\u00a0: plus de 6 · page 2 sur plus de 3",
                     "Dossiers trouvés\u00a0: 7 · page 3 sur 4",
                     "Dossiers trouvés\u00a0: 7 · page 4 sur 4"]
    assert listed(beyond.text) == [numbers[0]] and "page 4 sur 4" in beyond.text


async def test_htmx_gets_the_table_alone(backoffice_app):
    app = backoffice_app
    number = await app.file(service="onem")
    async with app.client(SUPERVISOR) as client:
        fragment = await client.get("/backoffice/register",
                                    headers={"HX-Request": "true", "HX-Target": "register-results"})
        page = await client.get("/backoffice/register")
    assert listed(fragment.text) == [number] == listed(page.text)
    assert "<html" not in fragment.text and "<html" in page.text


# --- who sees what ---------------------------------------------------------------------------------------------------
async def test_nobody_lists_a_file_outside_their_scope(backoffice_app):
    app = backoffice_app
    secret = await app.file(name="Denise Secrète", subject="Mes données personnelles", data_protection=True)
    finance = await app.file(service="fps-finance")
    onem = await app.file(service="onem")
    unrouted = await app.file()  # whatever service screening found for it, if any
    unrouted_service = (await app.store.complaint(unrouted)).service_concerned
    finance_staff = principal("fin@ombudsdesk.example", Role.STAFF, account_id=20, services=["fps-finance"])

    async def seen(person, query: str = "") -> set[str]:
        async with app.client(person) as client:
            response = await client.get(f"/backoffice/register?{query}")
        assert response.status_code == 200
        return set(listed(response.text))

    expected_finance = {finance} | ({unrouted} if unrouted_service in (None, "fps-finance") else set())
    assert await seen(finance_staff) == expected_finance
    assert await seen(STAFF) == {finance, onem, unrouted}
    assert await seen(SUPERVISOR) == {finance, onem, unrouted}
    assert await seen(DPO) == {secret}
    # Not by its number, its name nor its subject either; the count does not give it away.
    for query in (f"q={secret}", "q=Denise", "q=personnelles"):
        async with app.client(STAFF) as client:
            response = await client.get(f"/backoffice/register?{query}")
        assert listed(response.text) == [] and "Denise Secrète" not in response.text
        assert "Dossiers trouvés\u00a0: 0" in response.text
    async with app.client(STAFF) as client:
        export = await client.get("/backoffice/register/export.csv")
    assert secret not in export.text and "Denise" not in export.text
    async with app.client(ADMIN) as client:
        assert (await client.get("/backoffice/register")).status_code == 403  # an admin alone reads no file


# --- the export ------------------------------------------------------------------------------------------------------
def rows_of(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


async def test_export_writes_every_page_escapes_formulas_and_is_audited(backoffice_app):
    app = backoffice_app
    hostile = await app.file(name="=HYPERLINK(\"http://evil.example\",\"clic\")", subject="+SUM(A1:A9)",
                             service="onem")
    for i in range(PAGE_SIZE + 1):
        await app.file(name=f"Personne {i}", subject="@cmd" if i == 0 else f"Objet {i}", service="onem")
    async with app.client(SUPERVISOR) as client:
        response = await client.get("/backoffice/register/export.csv", params={"service": "onem"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = rows_of(response.text)
    assert len(rows) == 1 + PAGE_SIZE + 2  # the header and every file, not only the first page
    assert rows[0][0] == "Numéro"  # in the reader's language (French)
    by_number = {row[0]: row for row in rows[1:]}
    assert by_number[hostile][2] == "'=HYPERLINK(\"http://evil.example\",\"clic\")"
    assert by_number[hostile][4] == "'+SUM(A1:A9)"
    assert "'@cmd" in [row[4] for row in rows[1:]]
    entries = await app.app.state.audit.for_account(SUPERVISOR.account_id)
    exports = [e for e in entries if e.action == "export"]
    assert len(exports) == 1
    assert exports[0].details == {"query": "service=onem", "rows": PAGE_SIZE + 2}


async def test_export_needs_the_export_permission(backoffice_app):
    async with backoffice_app.client(ADMIN) as client:
        response = await client.get("/backoffice/register/export.csv")
    assert response.status_code == 403


async def test_an_export_beyond_the_limit_is_refused_with_a_message(backoffice_app, monkeypatch):
    from services.registry.backoffice.pages import register

    app = backoffice_app
    monkeypatch.setattr(register, "EXPORT_LIMIT", 2)  # the bound, not 10,000 registrations
    for _ in range(3):
        await app.file(service="onem")
    async with app.client(SUPERVISOR) as client:
        refused = await client.get("/backoffice/register/export.csv")
        allowed = await client.get("/backoffice/register/export.csv", params={"q": "xyz-none"})
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]
    assert "affinez les filtres" in refused.text
    assert allowed.status_code == 200 and len(rows_of(allowed.text)) == 1
    assert EXPORT_LIMIT == 10_000


# --- saved searches --------------------------------------------------------------------------------------------------
async def test_saved_searches_own_and_shared(backoffice_app):
    app = backoffice_app
    form = {"csrf_token": TEST_CSRF}
    async with app.client(STAFF) as mine:
        saved = await mine.post("/backoffice/register/searches", data={
            **form, "name": "Mes retards", "query": "overdue=1&status=bogus&evil=<script>&page=4"})
        assert saved.status_code == 303
        assert saved.headers["location"] == "/backoffice/register?overdue=1"  # canonical, page and junk dropped
        await mine.post("/backoffice/register/searches", data={**form, "name": "Suggestions ONEM",
                                                               "query": "kind=suggestion&service=onem",
                                                               "shared": "1"})
        unnamed = await mine.post("/backoffice/register/searches", data={**form, "name": "  ", "query": ""})
        assert unnamed.status_code == 422
        page = (await mine.get("/backoffice/register")).text
        assert 'href="/backoffice/register?overdue=1">Mes retards</a>' in page
        assert 'href="/backoffice/register?kind=suggestion&amp;service=onem">Suggestions ONEM</a>' in page
    searches = {s.name: s for s in await app.store.saved_searches(STAFF.account_id)}
    async with app.client(OTHER_STAFF) as theirs:
        page = (await theirs.get("/backoffice/register")).text
        assert "Suggestions ONEM" in page and "Mes retards" not in page
        # Someone else's shared search cannot be deleted by them (no button, and the store refuses).
        assert f"/searches/{searches['Suggestions ONEM'].id}/delete" not in page
        await theirs.post(f"/backoffice/register/searches/{searches['Suggestions ONEM'].id}/delete", data=form)
    assert {s.name for s in await app.store.saved_searches(OTHER_STAFF.account_id)} == {"Suggestions ONEM"}
    async with app.client(STAFF) as mine:
        gone = await mine.post(f"/backoffice/register/searches/{searches['Mes retards'].id}/delete",
                               data={**form, "back": "overdue=1"})
        assert gone.status_code == 303 and gone.headers["location"] == "/backoffice/register?overdue=1"
    assert {s.name for s in await app.store.saved_searches(STAFF.account_id)} == {"Suggestions ONEM"}


# --- bulk actions ----------------------------------------------------------------------------------------------------
async def bulk(app, person, numbers, **fields):
    async with app.client(person) as client:
        return await client.post("/backoffice/register/bulk",
                                 data={"csrf_token": TEST_CSRF, "numbers": list(numbers), **fields})


async def test_bulk_assign_by_a_supervisor_changes_every_file_with_their_name(backoffice_app):
    app = backoffice_app
    numbers = [await app.file(service="onem") for _ in range(3)]
    await accounts_for(app, STAFF)
    response = await bulk(app, SUPERVISOR, numbers[:2], action="assign", handler=STAFF.email, reason="congés")
    assert response.status_code == 200
    for number in numbers[:2]:
        assert (await app.store.complaint(number)).handler == STAFF.email
        _complaint, _thread, changes, *_ = await app.store.complaint_file(number)
        assert changes[-1].actor == SUPERVISOR.email and changes[-1].reason == "congés"
    assert (await app.store.complaint(numbers[2])).handler is None
    audited = [e for e in await app.app.state.audit.for_account(SUPERVISOR.account_id) if e.action == "change.assign"]
    assert {e.number for e in audited} == set(numbers[:2])


async def test_staff_may_take_unassigned_files_only_for_themselves(backoffice_app):
    app = backoffice_app
    free = await app.file(service="onem")
    taken = await app.file(service="onem", handler=OTHER_STAFF.email)
    await accounts_for(app, STAFF, OTHER_STAFF)
    # For someone else: refused, file by file, and nothing changes.
    response = await bulk(app, STAFF, [free, taken], action="assign", handler=OTHER_STAFF.email)
    assert response.status_code == 409
    assert "réattribution est réservée" in response.text
    assert response.text.count("réattribution est réservée") == 2
    assert (await app.store.complaint(free)).handler is None
    # For themselves: the unassigned one is taken, the other's stays theirs.
    response = await bulk(app, STAFF, [free, taken], action="assign", handler=STAFF.email)
    assert response.status_code == 200
    assert (await app.store.complaint(free)).handler == STAFF.email
    assert (await app.store.complaint(taken)).handler == OTHER_STAFF.email
    assert response.text.count("réattribution est réservée") == 1


async def test_bulk_assign_only_to_an_active_account_that_handles_files(backoffice_app):
    app = backoffice_app
    numbers = [await app.file(service="onem") for _ in range(2)]
    accounts = app.app.state.accounts
    await accounts_for(app, SUPERVISOR, STAFF)
    await accounts.disable(await accounts.create_account(OTHER_STAFF.email, roles=["staff"]))
    await accounts.create_account(ADMIN.email, roles=["admin"])
    async with app.client(SUPERVISOR) as client:
        page = await client.get("/backoffice/register")
    options = page.text.split('id="bulk-handler"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([^"]*)"', options) == [SUPERVISOR.email, STAFF.email, "-"]
    for handler in ("outsider@evil.example", OTHER_STAFF.email, ADMIN.email):
        refused = await bulk(app, SUPERVISOR, numbers, action="assign", handler=handler)
        assert refused.status_code == 422 and "compte actif qui traite des dossiers" in refused.text, handler
    assert [(await app.store.complaint(number)).handler for number in numbers] == [None, None]
    assert (await bulk(app, SUPERVISOR, numbers, action="assign", handler=STAFF.email)).status_code == 200
    assert (await bulk(app, SUPERVISOR, numbers[:1], action="assign", handler="-")).status_code == 200
    assert [(await app.store.complaint(number)).handler for number in numbers] == [None, STAFF.email]


async def test_bulk_status_change_is_confirmed_then_refusals_are_listed(backoffice_app):
    app = backoffice_app
    fresh = await app.file(service="onem")
    acknowledged = await app.file(service="onem")
    await app.registry.handle(commands.Transition(acknowledged, "acknowledged", "tests"))
    asked = await bulk(app, STAFF, [fresh, acknowledged], action="transition", target="in_review")
    assert asked.status_code == 200 and 'name="confirmed" value="1"' in asked.text
    assert (await app.store.complaint(acknowledged)).status == "acknowledged"  # nothing yet
    done = await bulk(app, STAFF, [fresh, acknowledged], action="transition", target="in_review", confirmed="1")
    assert (await app.store.complaint(acknowledged)).status == "in_review"
    assert (await app.store.complaint(fresh)).status == "received"  # received cannot go straight to in_review
    refused = done.text.split("data-bulk-refused", 1)[1]
    assert fresh in refused and acknowledged not in refused


async def test_bulk_classify_and_files_outside_the_scope(backoffice_app):
    app = backoffice_app
    mine = await app.file(service="onem")
    secret = await app.file(data_protection=True)
    response = await bulk(app, STAFF, [mine, secret, "MED-1999-99999", "not a number"], action="classify",
                          kind="question", theme="pensions")
    complaint = await app.store.complaint(mine)
    assert (complaint.kind, complaint.theme, complaint.service_concerned) == ("question", "pensions", "onem")
    assert (await app.store.complaint(secret)).kind == "complaint"  # a DPO's file: refused as unknown
    refused = response.text.split("data-bulk-refused", 1)[1]
    assert secret in refused and "Dossier inconnu" in refused


async def test_bulk_note_is_added_once_to_every_file_and_bulk_screening_confirms_each_proposal(backoffice_app):
    app = backoffice_app
    numbers = [await app.file(service="onem") for _ in range(2)]
    secret = await app.file(data_protection=True)
    note = "Campagne « facture de mars » : réponse type en préparation."
    fields = {"action": "note", "note": note, "request_key": "form-1"}
    first = await bulk(app, STAFF, [*numbers, secret], **fields)
    again = await bulk(app, STAFF, numbers, **fields)  # the same form sent twice adds nothing more
    assert first.status_code == 200 and again.status_code == 200
    assert secret in first.text.split("data-bulk-refused", 1)[1]  # the DPO's file refused as unknown, the others done
    for number in numbers:
        found = await app.store.complaint_file(number)
        assert [(n.text, n.author) for n in found.extras.notes] == [(note, STAFF.email)]
    assert not (await app.store.complaint_file(secret)).extras.notes
    assert (await bulk(app, STAFF, numbers, action="note", note="  ", request_key="form-2")).status_code == 422

    assert [(await app.store.complaint(n)).admissibility for n in numbers] == ["pending", "pending"]
    confirmed = await bulk(app, STAFF, numbers, action="confirm_screening", reason="campagne vérifiée")
    assert confirmed.status_code == 200
    for number in numbers:
        complaint = await app.store.complaint(number)
        assert complaint.admissibility != "pending"  # each file's own proposal, now decided
        _complaint, _thread, changes, *_ = await app.store.complaint_file(number)
        assert changes[-1].actor == STAFF.email and changes[-1].reason == "campagne vérifiée"


async def test_a_bulk_action_without_a_selection_or_a_choice_changes_nothing(backoffice_app):
    app = backoffice_app
    number = await app.file(service="onem")
    assert (await bulk(app, SUPERVISOR, [], action="assign", handler=STAFF.email)).status_code == 422
    assert (await bulk(app, SUPERVISOR, [number], action="classify")).status_code == 422
    assert (await bulk(app, SUPERVISOR, [number], action="transition", target="answered",
                       confirmed="1")).status_code == 422  # needs a text: not a bulk target
    assert (await bulk(app, SUPERVISOR, [number], action="assign", handler="<b>x</b>")).status_code == 422
    assert (await app.store.complaint(number)).status == "received"


@pytest.mark.parametrize("token", [None, "forged"])
async def test_a_bulk_post_without_the_session_token_is_refused(backoffice_app, token):
    """With the real identity: a session cookie, and the CSRF token missing or wrong."""
    from services.registry.access.dependencies import SESSION_COOKIE

    app = backoffice_app
    number = await app.file(service="onem")
    accounts = app.app.state.accounts
    account_id = await accounts.create_account(SUPERVISOR.email, roles=["supervisor"])
    await accounts_for(app, STAFF)
    cookie = await accounts.issue_session(account_id)
    async with app.client(None) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        data = {"numbers": [number], "action": "assign", "handler": STAFF.email}
        if token is not None:
            data["csrf_token"] = token
        response = await client.post("/backoffice/register/bulk", data=data)
        assert response.status_code == 403
        # The same session with its token goes through: the refusal was the token's.
        identity = await accounts.session_identity(cookie)
        accepted = await client.post("/backoffice/register/bulk", data={**data, "csrf_token": identity.csrf_token})
        assert accepted.status_code == 200
    assert (await app.store.complaint(number)).handler == STAFF.email
