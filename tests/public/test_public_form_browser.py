"""The public complaint form in Chromium over the real system (the three services, NATS, SQLite, a mail catcher):
a complete submission with a PDF, done with JavaScript switched off (the form has none), reaches the register and an
acknowledgment; a wrong answer is named in a summary that links to its field; axe-core finds no serious violation
on the form, on its error state, nor on the confirmation; screenshots "public-form", "public-form-errors",
"public-form-received".

Synchronous on purpose (Playwright's sync API; see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.backoffice.helpers import assert_accessible

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_a_citizen_files_a_complaint_without_javascript(live_stack, browser, page, screenshot, tmp_path: Path):
    """The flow runs with JavaScript off; axe-core (a script itself) checks each state in a second, ordinary tab."""
    context = browser.new_context(locale="fr-BE", java_script_enabled=False, viewport={"width": 1000, "height": 900})
    context.set_default_timeout(20_000)
    try:
        citizen = context.new_page()
        citizen.goto(live_stack.url("/complaint"))
        assert citizen.locator("h1").inner_text() == "Introduire une plainte"
        page.goto(citizen.url)
        assert_accessible(page)
        screenshot(citizen, "public-form")

        citizen.get_by_label("Nom et prénom (obligatoire)").fill("Jeanne Dupont")
        citizen.get_by_label("Adresse électronique (obligatoire)").fill("jeanne")  # a mistake, corrected below
        citizen.get_by_label("Service concerné (obligatoire)").fill("Bureau des pensions")
        citizen.get_by_label("Objet de la plainte (obligatoire)").fill("Pension non versée")
        citizen.get_by_label("Les faits (obligatoire)").fill("Ma pension de novembre n'a pas été versée.")
        citizen.get_by_label("Oui", exact=True).check()
        citizen.get_by_label("Ce que vous demandez (obligatoire)").fill("Le versement de ma pension.")
        citizen.get_by_label(re.compile("J'accepte que le service")).check()
        with citizen.expect_navigation():
            citizen.get_by_role("button", name="Envoyer ma plainte").click()
        summary = citizen.get_by_role("alert")
        assert "Certaines réponses doivent être corrigées" in summary.inner_text()
        summary.get_by_role("link", name=re.compile("Adresse électronique")).wait_for()
        assert citizen.get_by_label("Les faits (obligatoire)").input_value() == "Ma pension de novembre n'a pas été versée."
        assert citizen.get_by_label("Adresse électronique (obligatoire)").get_attribute("aria-invalid") == "true"
        screenshot(citizen, "public-form-errors")
        # The same error state, for axe: the empty form sent in the ordinary tab.
        page.get_by_role("button", name="Envoyer ma plainte").click()
        page.get_by_role("alert").wait_for()
        assert_accessible(page)

        citizen.get_by_label("Adresse électronique (obligatoire)").fill("jeanne.dupont@example.be")
        document = tmp_path / "courrier.pdf"
        document.write_bytes(PDF)
        citizen.get_by_label("Documents").set_input_files(str(document))
        with citizen.expect_navigation():
            citizen.get_by_role("button", name="Envoyer ma plainte").click()
        assert citizen.locator("h1").inner_text() == "Votre plainte est enregistrée"
        number = citizen.locator(".case-number").inner_text()
        assert re.fullmatch(r"MED-\d{4}-\d{5}", number)
        screenshot(citizen, "public-form-received")
        page.goto(citizen.url)
        assert page.locator(".case-number").inner_text() == number
        assert_accessible(page)
    finally:
        context.close()

    acknowledgment = live_stack.run(live_stack.catcher.next_mail(timeout=20))
    assert acknowledgment["To"].addresses[0].addr_spec == "jeanne.dupont@example.be"
    assert number in acknowledgment["Subject"]
    complaint = live_stack.run(live_stack.services.registry.store.complaint(number))
    assert complaint.channel == "web_form" and len(complaint.attachments) == 1
