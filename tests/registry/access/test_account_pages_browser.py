"""The login, set-password and account pages in Chromium (Playwright, Debian's browser): a person receives a one-time
link, chooses a password, logs out, logs in again by keyboard alone, turns on the second factor by the QR code's key,
and each page passes axe-core with no serious violation. Synchronous tests only (see tests/backoffice/conftest.py).
"""

from __future__ import annotations

import re
import time

import pyotp

from tests.backoffice.conftest import browser, live_registry, page, screenshot  # noqa: F401 - fixtures
from tests.backoffice.helpers import assert_accessible

PASSWORD = "une phrase assez longue"


def test_first_login_by_link_then_by_keyboard_with_a_second_factor(live_registry, page, screenshot):  # noqa: F811
    live = live_registry
    accounts = live.app.state.accounts
    account_id = live.run(accounts.create_account("marie@med.be", roles=("staff",), display_name="Marie"))
    secret = live.run(accounts.issue_one_time_link(account_id, "welcome"))

    page.goto(live.url(f"/backoffice/welcome/{secret}"))
    assert_accessible(page)
    screenshot(page, "account-welcome")
    page.get_by_label("Nouveau mot de passe", exact=True).fill("court")
    page.get_by_label("Répétez le nouveau mot de passe").fill("court")
    page.get_by_role("button", name="Enregistrer et se connecter").click()
    assert page.locator("#password-error").is_visible()
    assert_accessible(page)
    page.get_by_label("Nouveau mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Répétez le nouveau mot de passe").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer et se connecter").click()
    assert "/backoffice/login" not in page.url and "/welcome/" not in page.url

    page.goto(live.url("/backoffice/account"))
    assert_accessible(page)
    page.get_by_role("button", name="Activer").click()
    key = page.locator("section#totp code").inner_text().strip()
    assert page.locator("section#totp svg").count() == 1
    assert_accessible(page)
    screenshot(page, "account-totp")
    page.get_by_label("Code affiché par l'application").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirmer et activer").click()
    assert page.get_by_role("status").inner_text() == "Vérification en deux étapes activée."

    with page.expect_navigation():
        page.get_by_role("button", name="Se déconnecter").click()
    assert page.url.endswith("/backoffice/login")
    page.goto(live.url("/backoffice/account"))
    assert re.search(r"/backoffice/login\?next=/backoffice/account$", page.url)
    assert_accessible(page)
    screenshot(page, "account-login")
    # Keyboard only: the email field has the focus, Tab walks the form, Enter submits.
    page.keyboard.type("marie@med.be")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#login-error").is_visible()  # the code is missing
    assert_accessible(page)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    # The code confirmed a moment ago served once: the next one (a step ahead is accepted, for clock drift).
    page.get_by_label("Code à six chiffres").fill(pyotp.TOTP(key).at(time.time() + 30))
    with page.expect_navigation():
        page.get_by_label("Code à six chiffres").press("Enter")
    assert page.url.endswith("/backoffice/account")
    assert page.locator("h1").inner_text() == "Mon compte"
