"""The back office's recommendations (issue 15) through ASGI on a real database (SQLite and PostgreSQL): the file
page's panel, the follow-up forms, the list of every recommendation filtered by status and service, general ones,
who may see what; and the possible-duplicate panel of the file page with its merge and link forms."""

from __future__ import annotations

import re
from html import unescape

from services.registry.mediation import recommendation_store
from services.registry.access.roles import Role
from services.registry.commands import IssueRecommendation
from tests.backoffice.conftest import TEST_CSRF, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import principal

AGENT = principal("agent@med.example", Role.STAFF, account_id=11)
FINANCE_ONLY = principal("finance@med.example", Role.STAFF, account_id=12, services=("finances",))


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def post(client, url: str, **fields: object):
    return await client.post(url, data={"csrf_token": TEST_CSRF, **fields})


async def test_a_file_s_recommendations_are_followed_up_from_its_page(backoffice_app):
    app = backoffice_app
    number = await app.file(name="Jeanne Dupont", email="jeanne@example.org", handler=AGENT.email,
                            subject="Remboursement en retard", text="Je conteste.")
    async with app.client(AGENT) as client:
        added = await post(client, f"/backoffice/files/{number}/recommendations", text="Publier le calendrier",
                           addressee="SPF Finances", review_date="2027-01-15", request_key="a" * 32)
        again = await post(client, f"/backoffice/files/{number}/recommendations", text="Publier le calendrier",
                           addressee="SPF Finances", review_date="2027-01-15", request_key="a" * 32)
        assert added.status_code == again.status_code == 303
        file_page = await client.get(f"/backoffice/files/{number}")
        panel = await client.get(f"/backoffice/files/{number}/recommendations", headers={"HX-Request": "true"})
        complaint = await app.store.complaint(number)
        [row] = await recommendation_store.of_complaint(app.store, complaint.id)
        refused = await post(client, f"/backoffice/recommendations/{row.id}/status", status="refused")
        refused_htmx = await client.post(f"/backoffice/recommendations/{row.id}/status",
                                         data={"csrf_token": TEST_CSRF, "status": "refused"},
                                         headers={"HX-Request": "true"})
        done = await post(client, f"/backoffice/recommendations/{row.id}/status", status="implemented")
        listed = await client.get("/backoffice/recommendations?status=implemented")
        none_pending = await client.get("/backoffice/recommendations?status=pending")
    # The file page shows the texts and loads the panel in their place.
    assert "Publier le calendrier" in text_of(file_page.text)
    assert f'hx-get="/backoffice/files/{number}/recommendations"' in file_page.text
    words = text_of(panel.text)
    assert "SPF Finances" in words and "2027-01-15" in words and "En attente" in words
    assert panel.text.lstrip().startswith("<section")  # the fragment, not a page
    # A refusal without the administration's reason is refused by the register, shown, never a 500.
    assert refused.status_code == 409 and refused_htmx.status_code == 200
    assert "Le registre a refusé ce changement" in text_of(refused_htmx.text)
    assert done.status_code == 303 and done.headers["location"].endswith(f"/files/{number}/recommendations")
    assert "Mise en œuvre" in text_of(listed.text) and number in listed.text
    assert "Publier le calendrier" not in text_of(none_pending.text)
    [row] = await recommendation_store.of_complaint(app.store, complaint.id)
    assert row.status == "implemented" and [h["actor"] for h in row.history] == [AGENT.email] * 2
    audited = {e.action for e in await app.app.state.audit.for_file(number, limit=100)}
    assert {"change.add_recommendation", "change.follow_up_recommendation"} <= audited


async def test_general_recommendations_and_what_each_person_may_see(backoffice_app):
    app = backoffice_app
    pensions_file = await app.file(name="Paul Martin", email="paul@example.org", subject="Pension", text="...",
                                   service="pensions")
    await app.registry.handle(IssueRecommendation(pensions_file, "Recommandation d'un dossier", AGENT.email,
                                                  addressee="Service des Pensions"))
    async with app.client(AGENT) as client:
        created = await post(client, "/backoffice/recommendations", text="Simplifier les formulaires",
                             addressee="Actiris", review_date="2027-02-01", request_key="b" * 32)
        missing = await post(client, "/backoffice/recommendations", text="Sans destinataire", addressee="")
        by_service = await client.get("/backoffice/recommendations?addressee=Actiris")
        general = await client.get("/backoffice/recommendations?general=1")
    assert created.status_code == 303 and missing.status_code == 409
    assert "Simplifier les formulaires" in text_of(by_service.text)
    assert "Recommandation d'un dossier" not in text_of(by_service.text)
    assert "Recommandation d'un dossier" not in text_of(general.text)
    # Someone who sees only the finances service sees the general ones, not those of files outside their sight.
    async with app.client(FINANCE_ONLY) as client:
        seen = text_of((await client.get("/backoffice/recommendations")).text)
    async with app.client(AGENT) as client:
        everything = text_of((await client.get("/backoffice/recommendations")).text)
    assert "Simplifier les formulaires" in seen and "Recommandation d'un dossier" not in seen
    assert "Recommandation d'un dossier" in everything


async def test_possible_duplicates_are_shown_with_merge_and_link_forms(backoffice_app):
    app = backoffice_app
    first = await app.file(name="Jeanne Dupont", email="jeanne@example.org", subject="Facture", text="Je conteste.")
    second = await app.file(name="Jeanne Dupont", email="jeanne@example.org", subject="Facture (bis)",
                            text="Je conteste encore.")
    async with app.client(AGENT) as client:
        await client.post(f"/backoffice/files/{second}/reason", data={"csrf_token": TEST_CSRF, "reason": "triage"})
        page = await client.get(f"/backoffice/files/{second}")
        linked = await post(client, f"/backoffice/files/{second}/actions/link", other=first)
        after = await client.get(f"/backoffice/files/{second}")
    html = page.text
    assert 'id="possible-duplicates"' in html and f'href="/backoffice/files/{first}"' in html
    assert f'name="other" value="{first}"' in html and f'name="target" value="{first}"' in html
    assert linked.status_code == 303
    assert "déjà lié" in text_of(after.text)
