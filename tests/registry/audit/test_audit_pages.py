"""/backoffice/audit on the registry's real application and database (SQLite and PostgreSQL): who may see it, the
filters, paging, the chain status, the CSV export, and that looking at the trail is itself recorded."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import update

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.audit_models import AuditEntry
from services.registry.access.dependencies import page_principal
from services.registry.access.roles import Principal, Role
from services.registry.api import create_api
from tests.registry.audit.conftest import tamper
from tests.registry.conftest import Clock

SUPERVISOR = Principal(account_id=1, email="sophie@med.be", roles=frozenset({Role.SUPERVISOR}), language="en")
DPO = Principal(account_id=2, email="dpo@med.be", roles=frozenset({Role.DPO}), language="fr")
STAFF = Principal(account_id=3, email="luc@med.be", roles=frozenset({Role.STAFF}), language="nl")
ADMIN = Principal(account_id=4, email="root@med.be", roles=frozenset({Role.ADMIN}))


@pytest.fixture
async def audited_app(registry_on_db):
    registry, _published, _clock = registry_on_db
    clock = Clock(datetime(2027, 2, 1, 8, 0, tzinfo=timezone.utc))  # 09:00 in Brussels
    trail = AuditTrail(registry.store.engine, clock=clock)
    app = create_api(registry)
    app.state.audit = trail
    signed_in = {"principal": SUPERVISOR}
    app.dependency_overrides[page_principal] = lambda: signed_in["principal"]
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.0.2.44", 40000)),
                               base_url="http://localhost")
    async with client:
        yield client, trail, clock, signed_in


async def seed(trail: AuditTrail, clock: Clock) -> None:
    """Two days of reads on two files by two people, then one of them changing a file."""
    for day in (1, 2):
        clock.now = datetime(2027, 2, day, 8, 0, tzinfo=timezone.utc)
        await trail.append("file.read", actor="anne@med.be", account_id=10, roles=["staff"], number="MED-2027-00001",
                           reason=None)
        await trail.append("file.read", actor="bart@med.be", account_id=11, roles=["staff"], number="MED-2027-00001",
                           reason="<script>alert(1)</script> covering for Anne")
        await trail.append("file.read", actor="bart@med.be", account_id=11, roles=["staff"], number="MED-2027-00002")
    await trail.append("change.assign", actor="anne@med.be", account_id=10, roles=["staff"], number="MED-2027-00002",
                       details={"handler": "anne@med.be"})


def sequences(html: str) -> list[int]:
    return [int(value) for value in re.findall(r'<tr data-row tabindex="0">\s*<td>(\d+)</td>', html)]


async def test_who_may_see_the_trail(audited_app):
    client, _trail, _clock, signed_in = audited_app
    for principal, status in ((SUPERVISOR, 200), (DPO, 200), (STAFF, 403), (ADMIN, 403)):
        signed_in["principal"] = principal
        for path in ("/backoffice/audit", "/backoffice/audit/status", "/backoffice/audit/export"):
            assert (await client.get(path)).status_code == status, (principal.roles, path)


async def test_the_dpo_finds_who_looked_at_a_file_and_the_view_is_recorded(audited_app):
    client, trail, clock, signed_in = audited_app
    await seed(trail, clock)
    signed_in["principal"] = DPO
    page = await client.get("/backoffice/audit", params={"number": "med-2027-00001"},
                            headers={"User-Agent": "pytest-browser"})
    assert page.status_code == 200
    html = page.text
    assert sequences(html) == [5, 4, 2, 1]
    assert "Qui a consulté le dossier MED-2027-00001 ?" in html and 'lang="fr"' in html
    assert "bart@med.be" in html and "anne@med.be" in html and "Consultation du dossier" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Shown in the registry's time zone: 08:00 UTC is 09:00 in Brussels.
    assert "2027-02-01 09:00:00" in html

    [view] = await trail.search(AuditFilter(action="audit.view"))
    assert (view.actor, view.account_id, view.roles, view.ip, view.user_agent) == (
        "dpo@med.be", 2, "dpo", "192.0.2.44", "pytest-browser")
    # Reading a file's trail is not reading the file: the number is in the details only.
    assert view.number is None and view.details == {"number": "MED-2027-00001", "page": 1}
    assert [entry.sequence for entry in await trail.for_file("MED-2027-00001")] == [5, 4, 2, 1]


async def test_filters_by_person_action_and_days(audited_app):
    client, trail, clock, _signed_in = audited_app
    await seed(trail, clock)

    async def listed(**params: str) -> list[int]:
        response = await client.get("/backoffice/audit", params=params)
        assert response.status_code == 200
        return [s for s in sequences(response.text) if s <= 7]  # leave out the views this test records

    assert await listed(account="BART@med.be") == [6, 5, 3, 2]
    assert await listed(account="11") == [6, 5, 3, 2]
    assert await listed(action="change.*") == [7]
    assert await listed(action="change.assign", account="anne@med.be") == [7]
    assert await listed(action="file.read", number="MED-2027-00002") == [6, 3]
    assert await listed(since="2027-02-02") == [7, 6, 5, 4]
    assert await listed(until="2027-02-01") == [3, 2, 1]
    assert await listed(since="2027-02-02", until="2027-02-02", account="anne@med.be") == [7, 4]
    assert await listed(number="MED-2027-09999") == []


async def test_hostile_filters_are_shown_escaped_and_bad_dates_said(audited_app):
    client, trail, clock, _signed_in = audited_app
    await seed(trail, clock)
    response = await client.get("/backoffice/audit", params={
        "number": '"><img src=x onerror=alert(1)>', "since": "yesterday", "until": "2027-13-45", "page": "-3",
        "action": "change%", "account": "x" * 5000})
    assert response.status_code == 200
    assert "<IMG SRC" not in response.text and "&#34;&gt;&lt;IMG SRC=X ONERROR=ALERT(1)&gt;" in response.text
    assert "The start date is not a date" in response.text and "The end date is not a date" in response.text
    assert sequences(response.text) == []
    response = await client.get("/backoffice/audit", params={"page": "99999999999999999999"})
    assert response.status_code == 200 and sequences(response.text) == []


async def test_pages_of_fifty_newest_first(audited_app):
    client, trail, _clock, _signed_in = audited_app
    for index in range(120):
        await trail.append("search", actor="anne@med.be", account_id=10, details={"query": f"q{index}"})
    first = await client.get("/backoffice/audit", params={"action": "search"})
    assert sequences(first.text) == list(range(120, 70, -1))
    assert "Page 1 of 3" in first.text and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    last = await client.get("/backoffice/audit", params={"action": "search", "page": "3"})
    assert sequences(last.text) == list(range(20, 0, -1))
    assert 'href="/backoffice/audit?action=search&amp;page=2" rel="prev"' in last.text


async def test_chain_status_says_verified_or_where_it_broke(audited_app):
    client, trail, clock, _signed_in = audited_app
    await seed(trail, clock)
    status = await client.get("/backoffice/audit/status", headers={"HX-Request": "true"})
    assert status.status_code == 200
    assert "Chain verified: 7 entries intact" in status.text and "<html" not in status.text  # a fragment for htmx
    assert "Checked on 2027-02-02 09:00" in status.text
    await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == 4).values(reason="nothing to see"))
    # Within STATUS_MAX_AGE the page shows the last check, with its time; "check again" runs a new one.
    assert "Chain verified" in (await client.get("/backoffice/audit/status", headers={"HX-Request": "true"})).text
    status = await client.get("/backoffice/audit/status", params={"fresh": "1"})
    assert "Chain broken at entry 4" in status.text and "its content was altered." in status.text
    assert "<html" in status.text  # without htmx: a whole page
    clock.advance(minutes=16)
    await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == 4).values(reason=None))
    status = await client.get("/backoffice/audit/status", headers={"HX-Request": "true"})
    assert "Chain verified: 7 entries intact" in status.text and "Checked on 2027-02-02 09:16" in status.text
    page = await client.get("/backoffice/audit")
    assert 'hx-get="/backoffice/audit/status"' in page.text


async def test_export_is_the_filtered_csv_and_is_recorded(audited_app):
    client, trail, clock, _signed_in = audited_app
    await seed(trail, clock)
    await trail.append("file.read", actor="anne@med.be", account_id=10, number="MED-2027-00002",
                       reason="=1+2 looks like a formula")
    response = await client.get("/backoffice/audit/export", params={"number": "MED-2027-00002"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["sequence"] for row in rows] == ["3", "6", "7", "8"]
    assert rows[-1]["reason"] == "'=1+2 looks like a formula"
    [export] = await trail.search(AuditFilter(action="audit.export"))
    assert (export.actor, export.details, export.ip) == ("sophie@med.be", {"number": "MED-2027-00002"}, "192.0.2.44")
    bad = await client.get("/backoffice/audit/export", params={"since": "not a date"})
    assert bad.status_code == 422
    assert len(await trail.search(AuditFilter(action="audit.export"))) == 1  # nothing exported, nothing recorded
