"""The holding pen, manual entry, deadlines and accounts pages in Chromium, on the real registry service (NATS,
SQLite and PostgreSQL), logged in through the real form: attach a held message, enter a phone complaint and find it
on the deadlines page, add an account; axe-core on every page; screenshots.

Synchronous tests only (see `tests/backoffice/conftest.py`: Playwright's sync API and async tests do not mix).
"""

from __future__ import annotations

import re
from datetime import timedelta

from services.registry.access.roles import Role
from services.registry.repository import ComplaintFilter
from tests.backoffice.helpers import assert_accessible, file, sign_in
from tests.registry.conftest import received

AGENT = "amelie.agent@ombudsdesk.example"
ADMIN = "root.admin@ombudsdesk.example"


def test_attach_a_held_message_from_the_holding_pen(live_registry, page, screenshot):
    live = live_registry
    number = live.run(file(live.registry, subject="Facture d'eau contestée", email="jeanne@example.org"))
    outcome = live.run(live.registry.handle(received(email="avocat@cabinet.example", name="Maître Avocat",
                                                     subject=f"Au sujet du dossier {number}",
                                                     candidate_case_numbers=(number,))))
    assert outcome.action == "held"
    sign_in(page, live, email=AGENT, roles=(Role.STAFF,), name="Amélie Agent")

    page.goto(live.url("/backoffice/holding-pen"))
    row = page.locator("tr[data-row]")
    assert row.count() == 1
    assert "Expéditeur étranger au dossier" in row.inner_text() and number in row.inner_text()
    assert_accessible(page)
    screenshot(page, "holding-pen")

    # Keyboard: j focuses the row, o opens the message.
    page.locator("h1").click()
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(re.compile(r"/backoffice/holding-pen/\d+$"))
    assert "je conteste la facture" in page.locator("main").inner_text()
    assert page.locator(f'input[type=radio][name=number][value="{number}"]').is_checked()
    assert_accessible(page)
    screenshot(page, "holding-pen-message")

    page.get_by_label(re.compile("Admettre l'expéditeur comme correspondant")).check()
    page.get_by_role("button", name="Rattacher au dossier").click()
    page.wait_for_url(re.compile(r"/attach$"))
    assert f"Rattaché au dossier {number}" in page.locator(".flash").inner_text()
    assert "Aucun message en attente." in page.locator("main").inner_text()
    _complaint, thread, _changes, parties = live.run(live.registry.store.complaint_file(number))
    assert len(thread) == 2 and "avocat@cabinet.example" in parties


def test_enter_a_phone_complaint_and_find_it_on_the_deadlines_page(live_registry, page, screenshot):
    live = live_registry
    mailed = live.run(file(live.registry, subject="Premier dossier par courriel"))
    sign_in(page, live, email=AGENT, roles=(Role.STAFF,), name="Amélie Agent")
    page.goto(live.url("/backoffice/new"))
    assert_accessible(page)
    screenshot(page, "manual-entry")

    # Received three weeks ago: its acknowledgment is overdue today, whatever day the test runs.
    received_on = (live.registry.today() - timedelta(days=21)).isoformat()
    page.get_by_label("Téléphone").check()
    page.get_by_label("Date de réception").fill(received_on)
    page.get_by_label("Nom", exact=True).fill("Paul Martin")
    page.get_by_label(re.compile("Adresse électronique")).fill("paul.martin at example.org")
    page.get_by_label("Objet").fill("Appel : remboursement refusé")
    page.get_by_label("Texte de la plainte").fill("M. Martin explique que son remboursement a été refusé.")
    page.get_by_role("button", name="Enregistrer la plainte").click()

    # Refused next to the field, what was typed kept, nothing registered.
    email_error = page.locator("#error-email")
    assert "n'est pas valide" in email_error.inner_text()
    assert page.get_by_label("Nom", exact=True).input_value() == "Paul Martin"
    assert "error-email" in page.get_by_label(re.compile("Adresse électronique")).get_attribute("aria-describedby")
    assert live.run(live.registry.store.count_complaints(ComplaintFilter())) == 1
    assert_accessible(page)
    screenshot(page, "manual-entry-errors")

    page.get_by_label(re.compile("Adresse électronique")).fill("paul.martin@example.org")
    page.get_by_role("button", name="Enregistrer la plainte").click()
    page.wait_for_url(re.compile(r"/backoffice/files/[^/]+$"))
    number = page.url.rsplit("/", 1)[1]
    year, sequence = mailed.rsplit("-", 1)
    assert number == f"{year}-{int(sequence) + 1:0{len(sequence)}d}"  # the mail's numbering, continued
    complaint = live.run(live.registry.store.complaint(number))
    assert complaint.channel == "phone" and complaint.legal_start.isoformat() == received_on

    page.goto(live.url("/backoffice/deadlines"))
    overdue = page.locator("section:has(h2#overdue)")
    assert overdue.locator(f'tr[data-number="{number}"]').count() == 1
    assert "Accusé de réception" in overdue.locator(f'tr[data-number="{number}"]').inner_text()
    assert_accessible(page)
    screenshot(page, "deadlines")
    page.get_by_role("link", name="Mes dossiers seulement").click()
    page.wait_for_url(re.compile(r"mine=1"))
    assert page.locator(f'tr[data-number="{number}"]').count() == 0  # nobody handles it yet


def test_an_administrator_adds_an_account(live_registry, page, screenshot):
    live = live_registry
    sign_in(page, live, email=ADMIN, roles=(Role.ADMIN,), name="Root Admin")
    page.goto(live.url("/backoffice/admin/users"))
    assert page.locator('nav a[href="/backoffice/register"]').count() == 0  # an administrator reads no file
    assert_accessible(page)
    screenshot(page, "admin-users")

    page.get_by_label("Adresse électronique").fill("nora.dpo@ombudsdesk.example")
    page.get_by_label("Nom affiché").fill("Nora DPD")
    page.get_by_label(re.compile("^Délégué à la protection des données")).check()
    page.get_by_label(re.compile("^Agent")).uncheck()
    page.locator("#field-language").select_option("nl")
    page.get_by_role("button", name="Créer le compte").click()

    link = page.locator("#new-link").input_value()
    assert re.fullmatch(rf"{re.escape(live.url('/backoffice/welcome/'))}[^/]+", link)
    row = page.locator('tr[data-account="nora.dpo@ombudsdesk.example"]')
    assert "Délégué à la protection des données" in row.inner_text() and "jamais" in row.inner_text()
    assert_accessible(page)
    screenshot(page, "admin-user-created")
    account = live.run(live.app.state.accounts.link_account(link.rsplit("/", 1)[1]))
    assert account is not None and account.roles == (Role.DPO,) and account.language == "nl"
