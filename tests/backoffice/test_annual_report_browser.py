"""The annual report in Chromium, on the real registry service (`live_registry`: NATS, SQLite and PostgreSQL, the
back office on a port), a supervisor logged in through the real form: writes the year's introduction, opens the
report, which shows its charts beside their tables under its own content policy; axe-core finds no serious
violation on the back-office page nor on the report itself; screenshots "annual-report-page" and "annual-report".

Synchronous on purpose (see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

from services.registry.access.roles import Role
from tests.backoffice.helpers import assert_accessible, file, sign_in

SUPERVISOR = "sophie.superviseur@med.example"


def test_a_supervisor_writes_the_introduction_and_reads_the_report(live_registry, browser, page, screenshot):
    live = live_registry
    for index in range(4):
        live.run(file(live.registry, subject=f"Plainte {index}", email=f"citoyen{index}@example.org"))
    year = live.registry.today().year

    sign_in(page, live, email=SUPERVISOR, roles=(Role.SUPERVISOR,), name="Sophie Superviseur")
    page.goto(live.url("/backoffice/"))
    with page.expect_navigation():
        page.get_by_role("link", name="Rapport annuel").click()
    page.get_by_label("Année").select_option(str(year))
    with page.expect_navigation():
        page.get_by_role("button", name="Afficher").click()
    page.get_by_label("Introduction (Français)").fill("Le mot de la médiatrice.\n\nUne année chargée.")
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer l'introduction").click()
    page.get_by_role("status").get_by_text("Introduction enregistrée.").wait_for()
    assert page.get_by_label("Introduction (Français)").input_value() == "Le mot de la médiatrice.\n\nUne année chargée."
    assert_accessible(page)
    screenshot(page, "annual-report-page")

    page.goto(live.url(f"/backoffice/annual-report/{year}.html?language=fr"))
    assert page.locator("h1").inner_text() == f"Rapport annuel {year}"
    assert "Le mot de la médiatrice." in page.locator("main").inner_text()
    assert f"En {year}, le service a reçu 4 demandes" in page.locator("main").inner_text()
    charts = page.locator("figure[role=img]")
    assert charts.count() >= 6
    # Each chart is drawn (an SVG with bars) and followed by the table of its figures.
    for index in range(charts.count()):
        chart = charts.nth(index)
        assert chart.locator("svg").bounding_box()["height"] > 50
        assert chart.evaluate("figure => figure.nextElementSibling.tagName") == "TABLE"
    assert_accessible(page)
    screenshot(page, "annual-report")
