"""Entries about data-protection files are for a DPO only (issue 13: "a DPO alone sees data-protection complaints"):
a supervisor's audit page, per-file view and CSV export leave them out — the reasons given to read such a file may
hold its details — and their counts and pages are those of what they may see. On the registry's real application
and database, SQLite and PostgreSQL, with complaints registered through the real intake path."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone

import httpx
import pytest

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.dependencies import page_principal
from services.registry.access.roles import Principal, Role
from services.registry.api import create_api
from tests.backoffice.helpers import file
from tests.registry.conftest import Clock

SUPERVISOR = Principal(account_id=1, email="sophie@med.be", roles=frozenset({Role.SUPERVISOR}), language="en")
DPO = Principal(account_id=2, email="dpo@med.be", roles=frozenset({Role.DPO}), language="en")
BOTH = Principal(account_id=3, email="chief@med.be", roles=frozenset({Role.SUPERVISOR, Role.DPO}), language="en")

SECRET_REASON = "Checking the HIV test results the citizen sent"
ORDINARY_REASON = "Covering for Anne during her leave"


@pytest.fixture
async def two_files(registry_on_db):
    """An ordinary file and a data-protection file, a trail where both were read (the protected one 60 times, more
    than a page), and the back office signed in as whoever `signed_in["principal"]` names."""
    registry, _published, _clock = registry_on_db
    ordinary = await file(registry, subject="Facture d'eau contestée")
    protected = await file(registry, subject="Mes données de santé transmises", data_protection=True)
    assert (await registry.store.complaint(protected)).data_protection is True
    assert (await registry.store.complaint(ordinary)).data_protection is False

    trail = AuditTrail(registry.store.engine, clock=Clock(datetime(2027, 2, 1, 8, 0, tzinfo=timezone.utc)))
    await trail.append("file.read", actor="bart@med.be", account_id=11, roles=["staff"], number=ordinary,
                       reason=ORDINARY_REASON)
    await trail.append("file.denied", actor="bart@med.be", account_id=11, roles=["staff"], number=protected)
    for _ in range(60):
        await trail.append("file.read", actor="dpo@med.be", account_id=2, roles=["dpo"], number=protected,
                           reason=SECRET_REASON)
    # As a hostile or sloppy caller might have typed it: the trail stores numbers in upper case anyway.
    await trail.append("original.download", actor="dpo@med.be", account_id=2, roles=["dpo"],
                       number=protected.lower(), reason=SECRET_REASON)
    await trail.append("change.assign", actor="anne@med.be", account_id=10, roles=["staff"], number=ordinary)
    await trail.append("login", actor="anne@med.be", account_id=10, roles=["staff"])

    app = create_api(registry)
    app.state.audit = trail
    signed_in = {"principal": SUPERVISOR}
    app.dependency_overrides[page_principal] = lambda: signed_in["principal"]
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.0.2.44", 40000)),
                               base_url="http://localhost")
    async with client:
        yield client, trail, signed_in, ordinary, protected


def numbers(html: str) -> list[str]:
    """The number column of the audit page's rows (empty for an entry about no file)."""
    rows = re.findall(r'<tr data-row tabindex="0">(.*?)</tr>', html, re.S)
    return [(re.findall(r'<td class="number">(?:<a [^>]*>)?([A-Z]+-\d{4}-\d+)', row) or [""])[0] for row in rows]


def total(html: str) -> int:
    return int(re.search(r"(\d+) entry/entries", html).group(1))


async def page(client: httpx.AsyncClient, **params: str) -> str:
    response = await client.get("/backoffice/audit", params=params)
    assert response.status_code == 200
    return response.text


async def exported(client: httpx.AsyncClient, **params: str) -> list[dict[str, str]]:
    response = await client.get("/backoffice/audit/export", params=params)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_a_supervisor_sees_no_entry_about_a_data_protection_file(two_files):
    client, _trail, signed_in, ordinary, protected = two_files
    signed_in["principal"] = SUPERVISOR

    html = await page(client, action="file.read")
    assert numbers(html) == [ordinary] and total(html) == 1
    assert ORDINARY_REASON in html and SECRET_REASON not in html
    assert "Page 1 of" not in html  # one page: the 60 hidden entries do not count

    everything = await page(client)
    assert protected not in everything and SECRET_REASON not in everything
    assert set(numbers(everything)) == {ordinary, ""}
    # The ordinary file's three entries, the login, and this test's own first view (the second is being shown).
    assert total(everything) == 5

    per_file = await page(client, number=protected.lower())
    assert numbers(per_file) == [] and total(per_file) == 0 and SECRET_REASON not in per_file
    assert "No entry matches." in per_file
    assert numbers(await page(client, account="dpo@med.be")) == []

    rows = await exported(client)
    assert {row["number"] for row in rows} == {ordinary, ""}
    assert all(SECRET_REASON not in row["reason"] for row in rows)
    assert await exported(client, number=protected) == []


async def test_a_dpo_sees_them_counted_and_paged(two_files):
    client, trail, signed_in, ordinary, protected = two_files
    for principal in (DPO, BOTH):
        signed_in["principal"] = principal
        first = await page(client, action="file.read")
        assert total(first) == 61 and "Page 1 of 2" in first
        assert numbers(first) == [protected] * 50 and SECRET_REASON in first
        second = await page(client, action="file.read", page="2")
        assert numbers(second) == [protected] * 10 + [ordinary]

        per_file = await page(client, number=protected)
        assert total(per_file) == 62 and "Page 1 of 2" in per_file  # 60 reads, the refusal, the download
        rows = await exported(client, number=protected)
        assert [row["action"] for row in rows] == ["file.denied"] + ["file.read"] * 60 + ["original.download"]
        assert rows[-1]["reason"] == SECRET_REASON

    # Directly on the store: the condition is in the query, so a page further on is still the right one.
    hidden = AuditFilter(data_protection_files=False, action="file.read", limit=1, offset=0)
    assert await trail.count(hidden) == 1
    assert [entry.number for entry in await trail.search(hidden)] == [ordinary]
    assert await trail.search(AuditFilter(data_protection_files=False, number=protected)) == []
    assert len(await trail.search(AuditFilter(number=protected, limit=100))) == 62


async def test_the_views_are_recorded_without_the_visibility_flag(two_files):
    client, trail, signed_in, _ordinary, protected = two_files
    signed_in["principal"] = SUPERVISOR
    await page(client, number=protected)
    await exported(client, number=protected)
    [view] = await trail.search(AuditFilter(action="audit.view"))
    [export] = await trail.search(AuditFilter(action="audit.export"))
    # Who looked, and for what; what they could see follows from the roles recorded with it.
    assert view.details == {"number": protected, "page": 1} and view.roles == "supervisor"
    assert export.details == {"number": protected}
