"""Orientation in Chromium over the real system (the three services, NATS, SQLite, the shipped screening
configuration): with JavaScript switched off, the site opens on orientation, a description for the pensions
ombudsman are oriented there (its name and contact, no form), the citizen ticks the consent to a
transmission and files the complaint, which reaches the register with the transmission in its text; axe-core finds no
serious violation on the question, the answer, nor the form with the transmission; screenshots
"public-orientation", "public-orientation-other", "public-orientation-transmission".

Synchronous on purpose (Playwright's sync API; see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

import re

from tests.backoffice.helpers import assert_accessible

DESCRIPTION = "Ma pension de retraite n'est pas versée par le Service fédéral des Pensions"
CONSENT = re.compile("Je demande que ma plainte soit transmise au médiateur compétent, Service de médiation Pensions")


def ask(tab, description: str = DESCRIPTION) -> None:
    tab.get_by_label("Votre problème en quelques mots").fill(description)
    # No theme: the themes are ours, so picking "Pensions" would count for us (an "unclear" answer).
    assert tab.get_by_label("Ou un thème").input_value() == ""
    with tab.expect_navigation():
        tab.get_by_role("button", name="Trouver qui peut m'aider").click()


def ask_for_transmission(tab) -> None:
    tab.get_by_label(CONSENT).check()
    with tab.expect_navigation():
        tab.get_by_role("button", name="Écrire ma plainte pour qu'elle soit transmise").click()


def test_a_citizen_is_oriented_to_another_ombudsman_without_javascript(live_stack, browser, page, screenshot):
    """The flow runs with JavaScript off; axe-core (a script itself) checks each state in a second, ordinary tab."""
    context = browser.new_context(locale="fr-BE", java_script_enabled=False, viewport={"width": 1000, "height": 900})
    context.set_default_timeout(20_000)
    try:
        citizen = context.new_page()
        citizen.goto(live_stack.url("/"))
        assert citizen.url.endswith("/orientation?lang=fr")
        assert citizen.locator("h1").inner_text() == "Qui peut vous aider ?"
        assert citizen.get_by_role("link", name="Aller directement au formulaire de plainte").is_visible()
        page.goto(citizen.url)
        assert_accessible(page)
        screenshot(citizen, "public-orientation")

        ask(citizen)
        assert citizen.locator("h1").inner_text() == "Un autre médiateur est compétent"
        competent = citizen.locator("li.ombudsman").first
        assert competent.locator("h3").inner_text() == "Service de médiation Pensions"
        assert competent.get_by_role("link", name="https://www.mediateurpensions.be").is_visible()
        assert citizen.get_by_role("button", name="Continuer vers le formulaire de plainte").count() == 0
        screenshot(citizen, "public-orientation-other")
        ask(page)
        assert_accessible(page)

        ask_for_transmission(citizen)
        assert citizen.locator("h1").inner_text() == "Introduire une plainte"
        assert citizen.get_by_role("group", name="Transmission de votre plainte").is_visible()
        assert citizen.get_by_label(CONSENT).is_checked()
        assert citizen.get_by_label("Les faits").input_value() == DESCRIPTION
        screenshot(citizen, "public-orientation-transmission")
        ask_for_transmission(page)
        assert_accessible(page)

        citizen.get_by_label("Nom et prénom").fill("Jeanne Dupont")
        citizen.get_by_label("Adresse électronique").fill("jeanne.dupont@example.be")
        citizen.get_by_role("textbox", name="Service concerné").fill("Service fédéral des Pensions")
        citizen.get_by_label("Objet de la plainte").fill("Pension non versée")
        citizen.get_by_label("Oui").check()
        citizen.get_by_label("Ce que vous demandez").fill("Que ma plainte soit transmise.")
        citizen.get_by_label(re.compile("J'accepte que le service")).check()
        with citizen.expect_navigation():
            citizen.get_by_role("button", name="Envoyer ma plainte").click()
        assert citizen.locator("h1").inner_text() == "Votre plainte est enregistrée"
        number = citizen.locator(".case-number").inner_text()
    finally:
        context.close()

    complaint = live_stack.run(live_stack.services.registry.store.complaint(number))
    assert complaint.channel == "web_form"
    assert ("Transmission demandée : le citoyen demande que cette plainte soit transmise au médiateur compétent, "
            "Service de médiation Pensions (be-pensions)") in complaint.body
