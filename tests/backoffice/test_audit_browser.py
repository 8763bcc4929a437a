"""The audit page in Chromium, on the real registry service (`live_registry`: NATS, SQLite and PostgreSQL, the back
office on a port), everyone logged in through the real form: a staff member reads a file that is not theirs with a
reason (and is refused a data-protection file); a supervisor filters the trail by that file's number, sees who read
it and why, checks the hash chain, exports the CSV; the data-protection file's entry is nowhere in what the
supervisor sees; axe-core finds no serious violation; a screenshot "audit" is saved.

Synchronous on purpose (see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

import csv
import io
import re

from services.registry.access.roles import Role
from tests.backoffice.helpers import assert_accessible, file, sign_in

STAFF = "bart.agent@med.example"
SUPERVISOR = "sophie.superviseur@med.example"
REASON = "Remplacement d'Anne pendant son congé"


def test_a_supervisor_finds_who_read_a_file_and_why(live_registry, browser, page, screenshot):
    live = live_registry
    number = live.run(file(live.registry, subject="Facture d'eau contestée", email="jeanne@example.org"))
    protected = live.run(file(live.registry, subject="Mes données de santé", data_protection=True))

    # A staff member, in a browser of their own, reads the file with a reason and is refused the protected one.
    staff_context = browser.new_context(locale="fr-BE")
    try:
        staff_page = staff_context.new_page()
        sign_in(staff_page, live, email=STAFF, roles=(Role.STAFF,), name="Bart Agent")
        staff_page.goto(live.url(f"/backoffice/files/{number}"))
        staff_page.locator("#read-reason").fill(REASON)
        with staff_page.expect_navigation():
            staff_page.locator("#read-reason").press("Enter")
        assert staff_page.locator("h1").inner_text().startswith(number)
        assert live.run(live.registry.store.complaint(protected)).data_protection is True
        refused = staff_page.goto(live.url(f"/backoffice/files/{protected}"))
        assert refused.status == 403
    finally:
        staff_context.close()

    sign_in(page, live, email=SUPERVISOR, roles=(Role.SUPERVISOR,), name="Sophie Superviseur")
    page.goto(live.url("/backoffice/audit"))
    # Everything the supervisor may see: the protected file's refusal is not among it.
    assert page.locator("tr[data-row]").count() > 0
    assert protected not in page.locator("main").inner_text()

    page.get_by_label("Numéro de dossier").fill(number.lower())  # typed in any case
    with page.expect_navigation():
        page.get_by_role("button", name="Filtrer").click()
    assert page.get_by_label("Numéro de dossier").input_value() == number  # refilled as the trail stores it
    assert f"Qui a consulté le dossier {number} ?" in page.locator("main").inner_text()
    rows = page.locator("tr[data-row]")
    reads = rows.filter(has_text="Consultation du dossier")
    # The page itself, then each part of it loaded apart (position requests, information requests,
    # recommendations): every read of personal data is a line of its own, each with the reason given once.
    read_row = reads.filter(has_not_text='"part"')
    assert read_row.count() == 1
    assert all(REASON in reads.nth(i).inner_text() for i in range(reads.count()))
    cells = read_row.locator("td")
    assert STAFF in cells.nth(2).inner_text() and "staff" in cells.nth(2).inner_text()
    assert cells.nth(4).inner_text() == number
    assert cells.nth(5).inner_text().startswith("127.0.0.1")
    assert cells.nth(6).inner_text() == REASON
    assert all(number in rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count()))

    # The chain status loads apart (htmx); "check again" runs a new verification in place.
    status = page.locator("#chain-status")
    status.get_by_text(re.compile(r"Chaîne vérifiée : \d+ entrées intactes")).wait_for()
    head = int(re.search(r"Dernière entrée : (\d+)", status.inner_text()).group(1))
    with page.expect_response(lambda response: "/audit/status?fresh=1" in response.url):
        status.get_by_role("link", name="Vérifier à nouveau").click()
    status.get_by_text(re.compile(r"Chaîne vérifiée")).wait_for()
    assert int(re.search(r"Dernière entrée : (\d+)", status.inner_text()).group(1)) >= head
    assert status.locator("[role=alert]").count() == 0

    assert_accessible(page)
    shot = screenshot(page, "audit")
    assert shot.stat().st_size > 10_000

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Exporter en CSV").click()
    download = download_info.value
    assert download.suggested_filename == "audit-trail.csv"
    with open(download.path(), encoding="utf-8") as exported:
        exported_rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert exported_rows and {row["number"] for row in exported_rows} == {number}
    reads = [row for row in exported_rows if row["action"] == "file.read"]
    [read] = [row for row in reads if '"part"' not in row["details"]]  # the page; its parts are lines of their own
    assert (read["actor"], read["reason"], read["roles"]) == (STAFF, REASON, "staff")
    assert {(row["actor"], row["reason"]) for row in reads} == {(STAFF, REASON)}
    assert len(read["hash"]) == 64 and len(read["prev_hash"]) == 64

    # The supervisor's own look at the trail and the export are in it too.
    page.goto(live.url("/backoffice/audit?action=audit.export"))
    assert page.locator("tr[data-row]").filter(has_text=SUPERVISOR).count() == 1
