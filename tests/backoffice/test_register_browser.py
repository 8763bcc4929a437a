"""The register page in Chromium, on the real registry service (NATS, SQLite and PostgreSQL): log in, list, filter,
search, sort, page, save and reopen a search, export, bulk-assign, keyboard shortcuts, accessibility, screenshots.

Synchronous tests only (see `tests/backoffice/conftest.py`: Playwright's sync API and async tests do not mix).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

from services.registry import commands
from services.registry.access.roles import Role
from services.registry.backoffice.pages.register import PAGE_SIZE
from tests.backoffice.helpers import assert_accessible, file, sign_in

SUPERVISOR = "sophie.superviseur@ombudsdesk.example"
COLLEAGUE = "marc.agent@ombudsdesk.example"
START = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
ROWS = "#register-results tr[data-row]"


def seed(live, count: int) -> list[str]:
    """`count` files received on successive days, the last three acknowledged; the numbers in register order."""

    async def register() -> list[str]:
        numbers = []
        for i in range(count):
            numbers.append(await file(live.registry, name=f"Citoyen {i:02d}", subject=f"Objet {i:02d}",
                                      service="onem", at=START + timedelta(days=i % 30, minutes=i)))
        for number in numbers[-3:]:
            await live.registry.handle(commands.Transition(number, "acknowledged", "tests"))
        return numbers

    return live.run(register())


def shown(page) -> list[str]:
    return page.locator(f"{ROWS} th[scope=row] a").all_inner_texts()


def wait_for_rows(page, count: int) -> None:
    page.wait_for_function("([selector, count]) => document.querySelectorAll(selector).length === count",
                           arg=[ROWS, count])


def test_list_filter_search_sort_page_and_saved_search(live_registry, page, screenshot):
    live = live_registry
    numbers = seed(live, PAGE_SIZE + 5)
    sign_in(page, live, email=SUPERVISOR, roles=(Role.SUPERVISOR,), name="Sophie Superviseur")
    page.goto(live.url("/backoffice/register"))

    # The list: newest first, fifty a page, the total.
    assert shown(page) == list(reversed(numbers))[:PAGE_SIZE]
    assert page.locator(".result-count").inner_text().startswith(f"Dossiers trouvés\u00a0: {PAGE_SIZE + 5}")
    assert_accessible(page)
    path = screenshot(page, "register")
    assert path.stat().st_size > 10_000

    # Next page, through htmx: the URL follows, the page is not reloaded.
    page.evaluate("window.notReloaded = true")
    page.get_by_role("link", name=re.compile("Page suivante")).click()
    wait_for_rows(page, 5)
    assert shown(page) == list(reversed(numbers))[PAGE_SIZE:]
    assert "page=2" in page.url and page.evaluate("window.notReloaded") is True

    # Filter by status: three acknowledged files.
    page.select_option("#filter-status", "acknowledged")
    wait_for_rows(page, 3)
    assert set(shown(page)) == set(numbers[-3:])
    assert "status=acknowledged" in page.url and "page=2" not in page.url

    # Sort by answer deadline, soonest first, then the other way round.
    page.get_by_role("link", name=re.compile("Réponse due le")).click()
    page.wait_for_url(re.compile("sort=answer_due"))
    page.wait_for_selector("th[aria-sort=ascending]")
    soonest_first = shown(page)
    dues = live.run(_dues(live, soonest_first))
    assert dues == sorted(dues) and len(set(dues)) > 1
    page.get_by_role("link", name=re.compile("Réponse due le")).click()
    page.wait_for_selector("th[aria-sort=descending]")
    assert shown(page) == list(reversed(soonest_first))

    # Full-text search, typed: the table follows after a short pause.
    page.fill("#register-search", "Citoyen 07")
    wait_for_rows(page, 0)  # acknowledged only: "Citoyen 07" is not among them
    page.select_option("#filter-status", "")
    wait_for_rows(page, 1)
    assert shown(page) == [numbers[7]]
    assert "q=Citoyen+07" in page.url or "q=Citoyen%2007" in page.url

    # Save this search, shared; reopen it from the bare list.
    page.fill("#search-name", "Citoyen sept")
    page.check("input[name=shared]")
    page.get_by_role("button", name="Enregistrer cette recherche").click()
    page.wait_for_selector("a:has-text('Citoyen sept')")
    page.goto(live.url("/backoffice/register"))
    wait_for_rows(page, PAGE_SIZE)
    page.get_by_role("link", name="Citoyen sept").click()
    wait_for_rows(page, 1)
    assert shown(page) == [numbers[7]]
    assert page.input_value("#register-search") == "Citoyen 07"


async def _dues(live, numbers):
    return [(await live.registry.store.complaint(number)).answer_due for number in numbers]


def test_export_and_bulk_assign(live_registry, page, screenshot):
    live = live_registry
    numbers = seed(live, 4)
    accounts = live.app.state.accounts
    live.run(accounts.create_account(COLLEAGUE, roles=["staff"], display_name="Marc Agent"))
    sign_in(page, live, email=SUPERVISOR, roles=(Role.SUPERVISOR,), name="Sophie Superviseur")
    page.goto(live.url("/backoffice/register?status=received"))
    wait_for_rows(page, 1)

    # The export of the current list (all of it), as a download.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Exporter en CSV").click()
    download = download_info.value
    assert re.fullmatch(r"register-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["Numéro", "Reçue le", "Plaignant·e"]
    assert [row[0] for row in rows[1:]] == [numbers[0]]

    # Select all, then keep two, and give them to a colleague.
    page.goto(live.url("/backoffice/register"))
    wait_for_rows(page, 4)
    page.check("input[data-select-all]")
    assert page.locator(f"{ROWS} input[name=numbers]:checked").count() == 4
    page.uncheck("input[data-select-all]")
    page.check(f"input[name=numbers][value='{numbers[0]}']")
    page.check(f"input[name=numbers][value='{numbers[1]}']")
    page.get_by_text("Actions sur les dossiers sélectionnés").click()
    page.select_option("#bulk-handler", COLLEAGUE)
    page.get_by_role("button", name="Attribuer la sélection").click()
    page.wait_for_selector("[data-bulk-done]")
    assert sorted(page.locator("[data-bulk-done] li").all_inner_texts()) == numbers[:2]
    assert_accessible(page)
    screenshot(page, "register-bulk-result")
    handlers = live.run(_handlers(live, numbers))
    assert handlers == [COLLEAGUE, COLLEAGUE, None, None]
    page.get_by_role("link", name="Retour au registre").click()
    assert page.locator(f"{ROWS}:has-text('{COLLEAGUE}')").count() == 2


async def _handlers(live, numbers):
    return [(await live.registry.store.complaint(number)).handler for number in numbers]


def test_keyboard_shortcuts(live_registry, page):
    live = live_registry
    numbers = seed(live, 3)
    sign_in(page, live, email=SUPERVISOR, roles=(Role.SUPERVISOR,))
    page.goto(live.url("/backoffice/register"))
    wait_for_rows(page, 3)

    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "register-search"
    page.evaluate("document.activeElement.blur()")

    page.keyboard.press("j")
    page.keyboard.press("j")
    focused = "document.activeElement.closest('[data-row]')?.querySelector('th a')?.textContent"
    assert page.evaluate(focused) == numbers[1]  # newest first: the second row is the middle file
    page.keyboard.press("k")
    assert page.evaluate(focused) == numbers[2]
    page.keyboard.press("x")
    assert page.is_checked(f"input[name=numbers][value='{numbers[2]}']")

    page.keyboard.press("?")
    assert page.locator("#shortcuts-help").is_visible()
    assert_accessible(page)
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts-help").is_visible()

    page.locator(f"{ROWS}").first.focus()
    page.keyboard.press("o")
    page.wait_for_url(re.compile(f"/backoffice/files/{numbers[2]}$"))
