"""The administration concerned in the back office (issue 15) on a real database: admins edit the directory (staff
may not), the file page's part sends a request to the entry matching the file's service and shows the answer with
its citizen flag, the deadline dashboard's part lists what is overdue, in the person's language."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import select

from services.registry.access.roles import Role
from services.registry.commands import Assign, Classify
from services.registry.models import PositionRequest
from tests.registry.conftest import received
from tests.registry.test_work_pages import audit_actions, main_text, pages_client, person

FORM = {"key": "fps-finance", "name": "SPF Finances", "emails": "plaintes@finances.example.be\nx@finances.example.be",
        "postal_address": "", "language": "nl", "contact_person": "Mevrouw Peeters", "answer_days": "30",
        "active": "1", "csrf_token": "t"}


async def test_only_admins_edit_the_directory_and_every_problem_is_shown(registry_on_db):
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.STAFF, Role.SUPERVISOR)) as (client, acting):
        assert (await client.get("/backoffice/admin/administrations")).status_code == 403
        assert (await client.post("/backoffice/admin/administrations", data=FORM)).status_code == 403

        acting.principal = person(Role.ADMIN, language="en")
        bad = await client.post("/backoffice/admin/administrations",
                                data={**FORM, "emails": "not an address", "answer_days": "0", "key": "Bad Key"})
        assert bad.status_code == 422
        shown = main_text(bad.text)
        assert "One or more addresses are not valid" in shown and "Between 1 and 365 days" in shown
        assert "Lower-case letters, digits" in shown

        saved = await client.post("/backoffice/admin/administrations", data=FORM)
        assert saved.status_code == 200 and "Administration saved." in main_text(saved.text)
        assert 'data-key="fps-finance"' in saved.text and "plaintes@finances.example.be" in saved.text
        assert (await audit_actions(client, acting.principal.account_id))[-1] == (
            "change.save_administration", None, {"key": "fps-finance"})

        acting.principal = person(Role.ADMIN, language="de")
        listed = await client.get("/backoffice/admin/administrations")
        assert "Verzeichnis der Verwaltungen" in listed.text and "Niederländisch" in listed.text


async def test_the_file_part_sends_a_request_to_the_matching_entry_and_shows_the_answer(registry_on_db):
    registry, _published, clock = registry_on_db
    outcome = await registry.on_message_received(received(at=clock.now, subject="Remboursement bloqué"))
    number = outcome.number
    async with pages_client(registry, person(Role.ADMIN, email="root@med.be", account_id=1)) as (client, acting):
        await client.post("/backoffice/admin/administrations", data=FORM)
        await client.post("/backoffice/admin/administrations",
                          data={**FORM, "key": "onem", "name": "ONEM", "emails": "a@onem.example.be"})
        await registry.handle(Classify(number, "agent@med.be", service="fps-finance"))

        acting.principal = person(Role.STAFF, email="agent@med.be", language="fr")
        await registry.handle(Assign(number, "agent@med.be", "agent@med.be"))
        part = await client.get(f"/backoffice/files/{number}/position-requests", headers={"HX-Request": "true"})
        assert part.status_code == 200 and "<html" not in part.text
        assert "Aucune demande de position pour ce dossier." in part.text
        # The entry matching the file's service is the one proposed.
        [(selected_id, selected_name)] = re.findall(r'<option value="(\d+)" selected>([^<]+)<', part.text)
        assert selected_name.startswith("SPF Finances")

        sent = await client.post(f"/backoffice/files/{number}/position-requests", data={
            "administration_id": selected_id,
            "text": "Pourquoi ce retard ?", "request_key": "form-1", "csrf_token": "t"})
        assert sent.status_code == 303 and sent.headers["location"].endswith(f"/files/{number}#position-requests")
        again = await client.post(f"/backoffice/files/{number}/position-requests", data={
            "administration_id": "1", "text": "Pourquoi ce retard ?", "request_key": "form-1", "csrf_token": "t"})
        assert again.status_code == 303
        blank = await client.post(f"/backoffice/files/{number}/position-requests", data={
            "administration_id": "1", "text": "  ", "csrf_token": "t"})
        assert blank.status_code == 409 and "La demande n'a pas pu être envoyée" in html.unescape(blank.text)
        async with registry.store.transaction() as tx:
            [request] = (await tx.session.execute(select(PositionRequest))).scalars().all()

        reply = received(at=clock.now, email="x@finances.example.be", subject=f"Re: {number}",
                         message_id="<answer@finances.example.be>")
        await registry.on_message_received(reply)
        part = await client.get(f"/backoffice/files/{number}/position-requests", headers={"HX-Request": "true"})
        assert "caché au citoyen" in part.text and "reçue le" in part.text and "Pourquoi ce retard ?" in part.text
        shown = await client.post(f"/backoffice/files/{number}/position-requests/share", data={
            "message_key": reply.message_key, "visible": "1", "csrf_token": "t"})
        assert shown.status_code == 303
        part = await client.get(f"/backoffice/files/{number}/position-requests", headers={"HX-Request": "true"})
        assert "visible par le citoyen" in part.text

        page = await client.get(f"/backoffice/files/{number}")
        assert f'hx-get="/backoffice/files/{number}/position-requests"' in page.text

        # Overdue on the deadline dashboard (a second request, never answered).
        await client.post(f"/backoffice/files/{number}/position-requests", data={
            "administration_id": "2", "text": "Et vous ?", "csrf_token": "t"})
        clock.advance(days=request.due.toordinal() - request.requested_on.toordinal() + 3)
        board = await client.get("/backoffice/deadlines/position-requests", headers={"HX-Request": "true"})
        assert board.status_code == 200 and f'data-number="{number}"' in board.text and "ONEM" in board.text
        assert "SPF Finances" not in board.text  # answered
        acting.principal = person(Role.STAFF, email="other@med.be", services=("onem",))
        assert f'data-number="{number}"' not in (await client.get("/backoffice/deadlines/position-requests")).text
        dashboard = await client.get("/backoffice/deadlines")
        assert 'hx-get="/backoffice/deadlines/position-requests"' in dashboard.text
    assert timedelta(days=30) == request.due - request.requested_on
