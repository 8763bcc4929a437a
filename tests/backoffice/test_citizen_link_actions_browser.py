"""Issue 17's staff features in Chromium, on the real registry service (NATS, SQLite and PostgreSQL, the back office
on a port) with personal links on: a handler logged in through the real form reads the file's "personal link"
section, cannot submit an action without a reason, revokes the citizen's links and sends a new one (each confirmed
first, htmx swapping the file in place); then reads the year's survey comments on the annual report page. axe-core
finds no serious violation on any of these states; screenshots "file-citizen-link", "file-citizen-link-confirm" and
"annual-report-survey-comments".

Synchronous on purpose (see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.registry.access.roles import Role
from services.registry.models import CitizenLink, Complaint, SurveyAnswer
from tests.backoffice.conftest import LiveRegistry
from tests.backoffice.helpers import assert_accessible, file, sign_in

EMAIL = "agent.liens@med.example"
PUBLIC = "https://public.example.be/"


@pytest.fixture
def links_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public web's address, set as an operator would (the environment the registry's settings read)."""
    monkeypatch.setenv("OMBUDSDESK_PUBLIC_WEB_URL", PUBLIC)


@pytest.fixture
def linked_registry(links_on: None, live_registry: LiveRegistry) -> LiveRegistry:
    """`live_registry` with personal links on (set up after `links_on`; the seal's key is made under its `var/`)."""
    assert live_registry.registry.policy.citizen.issues_links
    return live_registry


def links_of(live: LiveRegistry, number: str) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        async with live.registry.store.reading() as tx:
            rows = await tx.session.execute(
                select(CitizenLink.issued_by, CitizenLink.revoked_by)
                .join(Complaint, Complaint.id == CitizenLink.complaint_id)
                .where(Complaint.number == number).order_by(CitizenLink.id))
            return [(issued_by, revoked_by) for issued_by, revoked_by in rows.all()]

    return live.run(read())


def test_a_handler_revokes_the_citizens_links_and_sends_a_new_one(linked_registry, page, screenshot):
    live = linked_registry
    number = live.run(file(live.registry, name="Jeanne Dupont", email="jeanne@example.org", handler=EMAIL,
                           subject="Facture d'eau contestée"))
    sign_in(page, live, email=EMAIL, roles=(Role.STAFF,), name="Agent Liens")
    page.goto(live.url(f"/backoffice/files/{number}"))
    section = page.locator("#citizen-link")
    assert section.get_by_role("heading", name="Lien personnel").is_visible()
    assert "Liens actifs du citoyen : 1" in section.inner_text()
    assert_accessible(page)
    screenshot(page, "file-citizen-link")

    # The reason is required: the browser does not send the form without it, and nothing changes.
    revoke = section.get_by_role("button", name="Révoquer les liens du citoyen")
    revoke.click()
    assert page.locator("#revoke-links-reason").evaluate("field => field.validity.valueMissing")
    assert links_of(live, number) == [("registry", None)]

    page.locator("#revoke-links-reason").fill("Courriel transféré par erreur")
    revoke.click()
    confirm = page.get_by_role("button", name="Confirmer", exact=True)
    confirm.wait_for()
    assert "Révoquer tous les liens personnels de ce dossier" in page.locator("#file").inner_text()
    assert_accessible(page)
    screenshot(page, "file-citizen-link-confirm")
    confirm.click()
    page.get_by_role("status").get_by_text("Liens du citoyen révoqués.").wait_for()
    assert "Le citoyen n'a aucun lien actif." in page.locator("#citizen-link").inner_text()
    assert links_of(live, number) == [("registry", EMAIL)]

    page.locator("#send-link-reason").fill("Le citoyen a perdu son lien")
    page.locator("#citizen-link").get_by_role("button", name="Envoyer un nouveau lien").click()
    page.get_by_role("button", name="Confirmer", exact=True).click()
    page.get_by_role("status").get_by_text("Nouveau lien envoyé au citoyen").wait_for()
    shown = page.locator("#citizen-link").inner_text()
    assert "Liens actifs du citoyen : 1" in shown and "révoqué" in shown
    assert links_of(live, number) == [("registry", EMAIL), (EMAIL, None)]
    assert_accessible(page)


def test_the_annual_report_page_lists_the_years_survey_comments(linked_registry, page, screenshot):
    live = linked_registry
    year = live.registry.today().year
    comments = ["Merci pour votre écoute, tout était clair.", "Trop long à mon goût.\nMais réponse utile.",
                "<b>Pas</b> de réponse à mon deuxième courriel."]

    async def answered() -> None:
        # Answers as the survey's sweep leaves them (random id, the year, no file): the path that stores them, by
        # token and in shuffled batches, is tested in tests/registry/test_citizen_link_actions.py.
        async with live.registry.store.transaction() as tx:
            for comment in comments:
                tx.session.add(SurveyAnswer(id=uuid.uuid4().hex, year=year, overall=4, comment=comment))

    live.run(answered())
    sign_in(page, live, email=EMAIL, roles=(Role.STAFF,), name="Agent Liens")
    page.goto(live.url(f"/backoffice/annual-report?year={year}"))
    part = page.locator("#survey-comments")
    assert part.get_by_role("heading", name=f"Commentaires de l'enquête de satisfaction {year}").is_visible()
    assert sorted(part.locator("li").all_inner_texts()) == sorted(comments)
    assert part.locator("a").count() == 0  # nothing leads to a file or a person
    assert_accessible(page)
    screenshot(page, "annual-report-survey-comments")

    page.goto(live.url(f"/backoffice/annual-report?year={year - 1}"))
    assert "Aucun commentaire pour cette année." in page.locator("#survey-comments").inner_text()
