"""The deadlines dashboard page on a real database (SQLite and PostgreSQL): overdue, due today, due this week and
the counts by handler, each within the person's scope — a data-protection file is listed and counted for a DPO only
— and "mine only"."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from services.registry import commands
from services.registry.access.roles import Role
from tests.registry.conftest import received
from tests.registry.test_work_pages import LANGUAGES, main_text, pages_client, person

# The registry_on_db clock: Tuesday 24 November 2026; its week ends on Sunday the 29th.
TODAY = date(2026, 11, 24)
ACKNOWLEDGED = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


async def file_due(registry, clock, subject: str, *, answer_due: date, handler: str | None = None,
                   data_protection: bool = False, acknowledged: bool = True) -> str:
    """A registered complaint whose next deadline is the answer on `answer_due` (acknowledgment sent), or the
    acknowledgment on that day (`acknowledged=False`)."""
    outcome = await registry.on_message_received(received(at=clock.now, subject=subject,
                                                          email=f"{subject.split()[0].lower()}@example.be"))
    if handler:
        await registry.handle(commands.Assign(outcome.number, handler, "chef@med.be"))
    if data_protection:
        await registry.handle(commands.Classify(outcome.number, "dpo@med.be", data_protection=True))
    async with registry.store.transaction() as tx:
        complaint = await tx.complaint_by_number(outcome.number)
        if acknowledged:
            complaint.acknowledged_at = ACKNOWLEDGED
            complaint.answer_due = answer_due
        else:
            complaint.acknowledgment_due = answer_due
            complaint.answer_due = answer_due + timedelta(days=40)
    return outcome.number


def section(html: str, name: str) -> str:
    return html.split(f'<h2 id="{name}">', 1)[1].split("</section>", 1)[0]


def listed(html: str, name: str) -> list[str]:
    return re.findall(r'data-number="([^"]+)"', section(html, name))


def handler_counts(html: str) -> dict[str, list[int]]:
    table = html.split('class="by-handler"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-handler="([^"]*)">\s*<th scope="row">[^<]*</th>\s*'
                      r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", table)
    return {handler: [int(a), int(b), int(c)] for handler, a, b, c in rows}


@pytest.fixture
async def dashboard(registry_on_db):
    registry, _published, clock = registry_on_db
    files = {
        "late": await file_due(registry, clock, "Late pension", answer_due=TODAY - timedelta(days=3),
                               handler="other@med.be"),
        "today": await file_due(registry, clock, "Today water bill", answer_due=TODAY, handler="agent@med.be"),
        "ack_today": await file_due(registry, clock, "Ackme tax", answer_due=TODAY, acknowledged=False),
        "sunday": await file_due(registry, clock, "Sunday rail", answer_due=date(2026, 11, 29),
                                 handler="agent@med.be"),
        "next_week": await file_due(registry, clock, "Monday post", answer_due=date(2026, 11, 30)),
        "dp_today": await file_due(registry, clock, "Secret medical leak", answer_due=TODAY,
                                   handler="other@med.be", data_protection=True),
    }
    return registry, files


async def test_a_staff_member_sees_each_bucket_and_never_a_data_protection_file(dashboard):
    registry, files = dashboard
    async with pages_client(registry, person(Role.STAFF, language="en")) as (client, _acting):
        page = await client.get("/backoffice/deadlines")
    assert page.status_code == 200
    html = page.text
    assert listed(html, "overdue") == [files["late"]]
    assert sorted(listed(html, "due_today")) == sorted([files["today"], files["ack_today"]])
    assert listed(html, "due_this_week") == [files["sunday"]]
    assert files["next_week"] not in html
    # The data-protection file: neither its number, nor its subject, nor a count.
    assert files["dp_today"] not in html and "Secret medical" not in html
    assert handler_counts(html) == {"agent@med.be": [0, 1, 1], "other@med.be": [1, 0, 0], "": [0, 1, 0]}
    today_rows = section(html, "due_today")
    assert "Acknowledgment" in today_rows and "Answer" in today_rows
    assert "3 d late" in section(html, "overdue")
    assert f'href="/backoffice/files/{files["late"]}"' in html
    assert re.search(r'<tr data-row tabindex="0" data-number=', html)


async def test_a_dpo_sees_the_data_protection_files_only(dashboard):
    registry, files = dashboard
    async with pages_client(registry, person(Role.DPO, email="dpo@med.be")) as (client, _acting):
        html = (await client.get("/backoffice/deadlines")).text
    assert listed(html, "due_today") == [files["dp_today"]]
    assert listed(html, "overdue") == [] and listed(html, "due_this_week") == []
    assert handler_counts(html) == {"other@med.be": [0, 1, 0]}


async def test_mine_only_keeps_the_files_the_person_handles(dashboard):
    registry, files = dashboard
    async with pages_client(registry, person(Role.STAFF, email="agent@med.be")) as (client, _acting):
        html = (await client.get("/backoffice/deadlines", params={"mine": "1"})).text
    assert listed(html, "overdue") == []
    assert listed(html, "due_today") == [files["today"]]
    assert listed(html, "due_this_week") == [files["sunday"]]
    assert handler_counts(html) == {"agent@med.be": [0, 1, 1]}
    assert 'href="/backoffice/deadlines?mine=1" aria-current="true"' in html


async def test_a_service_bound_staff_member_does_not_see_another_service_s_files(dashboard):
    registry, files = dashboard
    await registry.handle(commands.Classify(files["late"], "chef@med.be", service="pensions"))
    await registry.handle(commands.Classify(files["sunday"], "chef@med.be", service="rail"))
    async with pages_client(registry, person(Role.STAFF, services=("pensions",))) as (client, _acting):
        html = (await client.get("/backoffice/deadlines")).text
    assert files["late"] in html and files["sunday"] not in html


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_dashboard_speaks_each_language_and_needs_read_access(registry_on_db, language):
    registry, _published, _clock = registry_on_db
    expected = {"fr": "En retard", "nl": "Te laat", "de": "Überfällig", "en": "Overdue"}[language]
    async with pages_client(registry, person(Role.STAFF, language=language)) as (client, acting):
        page = await client.get("/backoffice/deadlines")
        assert page.status_code == 200 and f'<html lang="{language}">' in page.text
        assert expected in main_text(page.text)
        acting.principal = person(Role.ADMIN, language=language)
        assert (await client.get("/backoffice/deadlines")).status_code == 403
