"""The staff HTTP API: over the ASGI app on a real database (SQLite and PostgreSQL), and once over real HTTP
served by the running registry service. Every call carries a personal API token (issue 13)."""

from __future__ import annotations

import csv
import io

import httpx

from ombudsdesk.embedded_nats import free_port
from services.registry.access.accounts import AccountStore
from services.registry.wiring import build_registry
from tests.registry.access.helpers import api_client, token_headers_for_database
from tests.registry.conftest import received, registry_settings


async def test_list_filter_show_transition_and_errors(registry_on_db):
    registry, _published, clock = registry_on_db
    first = await registry.on_message_received(received(at=clock.now, subject="Facture d'eau contestée"))
    second = await registry.on_message_received(received(at=clock.now, name="Luc", email="luc@example.be",
                                                         subject="Retard de pension"))
    async with await api_client(registry) as client:
        listed = (await client.get("/complaints")).json()
        assert [c["number"] for c in listed] == [second.number, first.number]
        searched = (await client.get("/complaints", params={"q": "pension"})).json()
        assert [c["number"] for c in searched] == [second.number]
        by_number = (await client.get("/complaints", params={"q": first.number.lower()})).json()
        assert [c["number"] for c in by_number] == [first.number]
        wildcard = (await client.get("/complaints", params={"q": "%"})).json()
        assert wildcard == []  # what staff type is matched literally, never as a LIKE wildcard

        shown = await client.get(f"/complaints/{first.number}", params={"reason": "triage"})
        assert shown.status_code == 200
        body = shown.json()
        assert body["complainant"]["email"] == "jeanne.dupont@example.org"
        assert body["thread"][0]["direction"] == "in" and body["changes"][0]["change"] == "registered"
        assert body["deadlines"]["answer_due"] == "2027-01-08"

        missing = await client.get("/complaints/MED-2026-09999", params={"reason": "triage"})
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"

        illegal = await client.post(f"/complaints/{first.number}/transitions",
                                    json={"target": "closed", "actor": "agent@med.be", "outcome": "unfounded"})
        assert illegal.status_code == 409
        assert illegal.json()["error"] == "illegal_transition" and "received to closed" in illegal.json()["message"]

        forged = await client.post(f"/complaints/{first.number}/transitions", json={"target": "acknowledged"},
                                   headers={"Authorization": "Bearer odk_forged"})
        assert forged.status_code == 401  # who changes a file must always be known

        moved = await client.post(f"/complaints/{first.number}/transitions",
                                  json={"target": "acknowledged", "actor": "someone@else.be", "reason": "phoned"})
        assert moved.status_code == 200 and moved.json()["status"] == "acknowledged"
        # Who changed it is the token's account, whatever the body claims.
        assert moved.json()["changes"][-1]["actor"] == "agent@med.be"
        await AccountStore(registry.store.engine).create_account("h@med.be", roles=["staff"])
        assigned = await client.post(f"/complaints/{first.number}/assignment",
                                     json={"handler": "h@med.be", "actor": "chef@med.be"})
        assert assigned.json()["handler"] == "h@med.be"
        statuses = (await client.get("/complaints", params={"status": "acknowledged"})).json()
        assert [c["number"] for c in statuses] == [first.number]

        extended = await client.post(f"/complaints/{first.number}/extension", json={"actor": "agent@med.be"})
        assert extended.json()["deadlines"]["answer_extended"] is True
        again = await client.post(f"/complaints/{first.number}/extension", json={"actor": "agent@med.be"})
        assert again.status_code == 409 and again.json()["error"] == "already_extended"

        openapi = (await client.get("/openapi.json")).json()
        assert "/complaints/{number}/transitions" in openapi["paths"]


async def test_holding_pen_resolution_and_indicators(registry_on_db):
    registry, _published, clock = registry_on_db
    case = await registry.on_message_received(received(at=clock.now))
    await registry.on_message_received(received(at=clock.now, email="avocat@cabinet.be",
                                                candidate_case_numbers=(case.number,)))
    await registry.on_message_received(received(at=clock.now, email="x@y.be", candidate_case_numbers=(case.number,)))
    async with await api_client(registry) as client:
        held = (await client.get("/holding-pen")).json()
        assert [h["reason"] for h in held] == ["sender_not_party", "sender_not_party"]
        attached = await client.post(f"/holding-pen/{held[0]['id']}/attach",
                                     json={"actor": "agent@med.be", "number": case.number, "add_correspondent": True})
        assert attached.json() == {"action": "appended", "number": case.number}
        registered = await client.post(f"/holding-pen/{held[1]['id']}/register", json={"actor": "agent@med.be"})
        assert registered.json()["action"] == "registered"
        again = await client.post(f"/holding-pen/{held[1]['id']}/discard", json={"actor": "agent@med.be"})
        assert again.status_code == 409
        assert (await client.get("/holding-pen")).json() == []
        shown = (await client.get(f"/complaints/{case.number}", params={"reason": "triage"})).json()
        assert shown["parties"] == ["avocat@cabinet.be", "jeanne.dupont@example.org"]
        assert len(shown["thread"]) == 2

        report = (await client.get("/indicators/2026", params={"as_of": "2026-11-24"})).json()
        assert report["received"]["total"] == 2
        assert report["received"]["by_channel"]["email"] == 2
        assert report["open_at_year_end"]["total"] == 2
        as_csv = await client.get("/indicators/2026", params={"format": "csv", "as_of": "2026-11-24"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(as_csv.text)))
        assert rows[0] == ["section", "key", "value"] and ["received", "total", "2"] in rows


async def test_api_served_by_the_running_registry(tmp_path, nats_server, sqlite_url):
    port = free_port()
    settings = registry_settings(tmp_path, nats_server.url, sqlite_url).model_copy(
        update={"registry_api_port": port})
    service = build_registry(settings)
    await service.start()
    try:
        await service.registry.on_message_received(received())
        headers = await token_headers_for_database(sqlite_url)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/health")).json() == {"status": "ok"}
            assert (await client.get("/complaints")).status_code == 401
            listed = (await client.get("/complaints", headers=headers)).json()
            assert [c["number"] for c in listed] == ["MED-2026-00001"]
    finally:
        await service.stop()
