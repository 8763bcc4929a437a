"""The file page in Chromium, on the real registry service (`live_registry`: NATS, the database, the back office on a
port): a person signs in, states why they open a file that is not theirs, takes it with the `a` shortcut, writes an
internal note after `n`, and the page passes axe-core with no serious violation. A screenshot is saved.

Synchronous on purpose (see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

from services.registry.access.roles import Role
from tests.backoffice.helpers import assert_accessible, file, sign_in

EMAIL = "agent.browser@med.example"
NOTE = "Appelée le 24/11 : elle envoie la facture corrigée."


def test_open_a_file_take_it_and_add_a_note_with_the_keyboard(live_registry, page, screenshot):
    live = live_registry
    number = live.run(file(live.registry, name="Jeanne Dupont", email="jeanne@example.org",
                           subject="Facture d'eau contestée",
                           text="Madame, Monsieur,\n\nJe conteste la facture du 3 novembre.\n\nJeanne Dupont"))
    sign_in(page, live, email=EMAIL, roles=(Role.STAFF,), name="Agent Navigateur")

    page.goto(live.url(f"/backoffice/files/{number}"))
    # Not the handler: the reason is asked first, and the file is not shown before it.
    assert page.locator("#read-reason").is_visible()
    assert "Facture d'eau contestée" not in page.content()
    assert_accessible(page)
    page.locator("#read-reason").fill("Tri des nouvelles plaintes")
    with page.expect_navigation():
        page.locator("#read-reason").press("Enter")
    assert page.locator("h1").inner_text().startswith(number)
    assert page.get_by_text("Je conteste la facture du 3 novembre.").is_visible()

    page.locator("body").press("a")  # assign to me: htmx swaps the file in place
    page.get_by_text("Vous êtes le ou la gestionnaire de ce dossier.").wait_for()
    page.locator("body").press("n")  # the note's field takes the focus
    assert page.evaluate("document.activeElement.id") == "note-text"
    page.keyboard.type(NOTE)
    page.get_by_role("button", name="Ajouter la note").click()
    page.locator("#notes").get_by_text(NOTE).wait_for()

    complaint, _thread, changes, _parties = live.run(live.registry.store.complaint_file(number))
    assert complaint.handler == EMAIL
    assert [(c.change, c.actor) for c in changes if c.change in {"assignment", "note_added"}] == [
        ("assignment", EMAIL), ("note_added", EMAIL)]

    page.locator("body").press("?")
    help_dialog = page.locator("#shortcuts-help")
    assert help_dialog.is_visible() and "M'attribuer le dossier" in help_dialog.inner_text()
    page.keyboard.press("Escape")
    assert_accessible(page)
    shot = screenshot(page, "file-page")
    assert shot.stat().st_size > 10_000
