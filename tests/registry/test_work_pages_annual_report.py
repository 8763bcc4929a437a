"""The annual report's back-office page on a real database (SQLite and PostgreSQL): who may read it and who may
write its introduction, the introduction saved per year and language (audited) and printed in the report, the
report as a page with its own narrow content policy, and as a PDF download."""

from __future__ import annotations

import pytest

from services.registry.access.roles import Role
from tests.registry.conftest import received
from tests.registry.test_work_pages import audit_actions, main_text, pages_client, person

# The registry_on_db clock's year is 2026: the page offers last year's report by default.
YEAR = 2026


async def test_staff_read_the_report_but_only_a_supervisor_writes_its_introduction(registry_on_db) -> None:
    registry, _published, clock = registry_on_db
    for index in range(3):
        await registry.on_message_received(received(at=clock.now, subject=f"Plainte {index}",
                                                    email=f"citoyen{index}@example.be"))
    agent = person(Role.STAFF, language="nl")
    async with pages_client(registry, agent) as (client, acting):
        page = await client.get("/backoffice/annual-report")
        assert page.status_code == 200
        assert "Jaarverslag" in main_text(page.text)
        assert 'name="introduction"' not in page.text  # staff read, they don't edit
        refused = await client.post("/backoffice/annual-report/introduction",
                                    data={"year": str(YEAR), "language": "fr", "introduction": "x",
                                          "csrf_token": "t"})
        assert refused.status_code == 403

        acting.principal = person(Role.SUPERVISOR, email="chef@med.be", account_id=9)
        saved = await client.post("/backoffice/annual-report/introduction",
                                  data={"year": str(YEAR), "language": "fr", "csrf_token": "t",
                                        "introduction": "Le mot du médiateur <b>2026</b>.\r\n\r\nSuite."})
        assert saved.status_code == 303
        assert saved.headers["location"].endswith(f"year={YEAR}&language=fr&saved=1")
        assert ("change.annual_report_introduction", None,
                {"year": YEAR, "language": "fr",
                 "characters": len("Le mot du médiateur <b>2026</b>.\n\nSuite.")}) in await audit_actions(client, 9)
        page = await client.get(f"/backoffice/annual-report?year={YEAR}&language=fr")
        assert "Le mot du médiateur &lt;b&gt;2026&lt;/b&gt;." in page.text  # kept as text, shown escaped

        document = await client.get(f"/backoffice/annual-report/{YEAR}.html?language=fr")
        assert document.status_code == 200
        assert "<h1>Rapport annuel 2026</h1>" in document.text
        assert "<p>Le mot du médiateur &lt;b&gt;2026&lt;/b&gt;.</p>" in document.text and "<p>Suite.</p>" in document.text
        assert "le service a reçu 3 demandes" in document.text
        policy = document.headers["content-security-policy"]
        assert "style-src 'unsafe-inline'" in policy and "script-src" not in policy and "default-src 'none'" in policy

        # Another language has its own introduction (none yet).
        dutch = await client.get(f"/backoffice/annual-report/{YEAR}.html?language=nl")
        assert "Jaarverslag 2026" in dutch.text and "Le mot du médiateur" not in dutch.text

        pdf = await client.get(f"/backoffice/annual-report/{YEAR}.pdf?language=de")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-disposition"] == f'attachment; filename="annual-report-{YEAR}-de.pdf"'


@pytest.mark.parametrize("path", ["/backoffice/annual-report/2026.exe", "/backoffice/annual-report/2026.pdf/x"])
async def test_only_html_and_pdf_are_served(registry_on_db, path: str) -> None:
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.STAFF)) as (client, _acting):
        assert (await client.get(path)).status_code == 404


async def test_an_overlong_introduction_is_refused_and_kept_in_the_form(registry_on_db) -> None:
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.ADMIN, account_id=3)) as (client, _acting):
        text = "é" * 20_001
        refused = await client.post("/backoffice/annual-report/introduction",
                                    data={"year": str(YEAR), "language": "en", "introduction": text,
                                          "csrf_token": "t"})
        assert refused.status_code == 422
        assert "dépasse 20000 caractères" in refused.text  # the person reads French
        assert "é" * 20_001 in refused.text  # what was typed is kept in the form, not lost
        page = await client.get(f"/backoffice/annual-report?year={YEAR}&language=en")
        assert 'aria-describedby="introduction-hint"></textarea>' in page.text  # nothing was saved
