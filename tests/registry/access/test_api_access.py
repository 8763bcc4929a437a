"""The JSON API and the pages behind the door (issue 13): no identity → 401; a revoked token → 401; a foreign Host →
400; a state change that is not JSON → 415; a cross-site or token-less form post → 403; the actor is the identity;
files outside one's scope → 403 and an audit entry; the permission table decides each route. SQLite and
PostgreSQL."""

from __future__ import annotations

import httpx

from services.registry import commands
from tests.registry.access.helpers import signed_in_client, token_headers
from tests.registry.conftest import received


async def test_no_identity_no_api(desk):
    number = (await desk.registry.on_message_received(received(at=desk.registry_clock.now))).number
    async with desk.client() as anonymous:
        assert (await anonymous.get("/health")).json() == {"status": "ok"}
        for method, path, body in (("GET", "/complaints", None), ("GET", f"/complaints/{number}", None),
                                   ("POST", f"/complaints/{number}/transitions", {"target": "acknowledged"}),
                                   ("GET", "/holding-pen", None), ("GET", "/indicators/2026", None)):
            answer = await anonymous.request(method, path, json=body)
            assert answer.status_code == 401, path
            assert answer.json()["error"] == "unauthenticated" and answer.headers["www-authenticate"] == "Bearer"
        for header in ("Bearer", "Bearer ", "Basic YWdlbnQ6cGFzcw==", "Bearer odk_" + "A" * 43, "token x"):
            assert (await anonymous.get("/complaints", headers={"Authorization": header})).status_code == 401
        anonymous.cookies.set("ombudsdesk_session", "forged")
        assert (await anonymous.get("/complaints")).status_code == 401
    assert (await desk.registry.store.complaint(number)).status == "received"


async def test_a_revoked_token_or_a_disabled_account_opens_nothing(desk):
    headers = await token_headers(desk.accounts, roles=("staff",))
    account = await desk.accounts.account_by_email("script@med.be")
    async with desk.client(**headers) as script:
        assert (await script.get("/complaints")).status_code == 200
        [token] = await desk.accounts.api_tokens(account.id)
        assert token.last_used_at == desk.clock.now  # "last used" is kept
        assert await desk.accounts.revoke_api_token(account.id, token.id)
        assert (await script.get("/complaints")).status_code == 401
    headers = await token_headers(desk.accounts, roles=("staff",))
    await desk.accounts.disable(account.id)
    async with desk.client(**headers) as script:
        assert (await script.get("/complaints")).status_code == 401


async def test_foreign_host_names_are_refused_but_health(desk):
    headers = await token_headers(desk.accounts, roles=("staff",))
    for base in ("http://attacker.example", "http://localhost.attacker.example:8470", "http://127.0.0.2"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url=base,
                                     headers=headers) as client:
            refused = await client.get("/complaints")
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_host", base
            assert (await client.get("/backoffice/login")).status_code == 400
            assert (await client.get("/health")).status_code == 200
    for base in ("http://localhost:8470", "http://127.0.0.1:8470", "http://[::1]:8470"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url=base,
                                     headers=headers) as client:
            assert (await client.get("/complaints")).status_code == 200, base
    async with desk.client(**headers) as client:
        for host in ("localhost@evil.example", "evil.example/x", "localhost:notaport", ""):
            assert (await client.get("/complaints", headers={"Host": host})).status_code == 400, host


async def test_state_changes_must_be_json(desk):
    number = (await desk.registry.on_message_received(received(at=desk.registry_clock.now))).number
    headers = await token_headers(desk.accounts, roles=("staff",))
    async with desk.client(**headers) as client:
        path = f"/complaints/{number}/transitions"
        as_text = await client.post(path, content=b'{"target": "acknowledged"}',
                                    headers={"Content-Type": "text/plain"})
        as_form = await client.post(path, data={"target": "acknowledged"})
        untyped = await client.post(path, content=b'{"target": "acknowledged"}')
        for answer in (as_text, as_form, untyped):
            assert answer.status_code == 415 and answer.json()["error"] == "unsupported_media_type"
        assert (await desk.registry.store.complaint(number)).status == "received"
        assert (await client.post(path, json={"target": "acknowledged"})).status_code == 200


async def test_the_actor_is_the_identity_never_the_body(desk):
    number = (await desk.registry.on_message_received(received(at=desk.registry_clock.now))).number
    browser = await signed_in_client(desk.app, desk.accounts, roles=("staff",), email="Agent.Smith@Med.be")
    async with browser:
        moved = await browser.post(f"/complaints/{number}/transitions",
                                   json={"target": "acknowledged", "actor": "minister@gov.be", "reason": "phoned"})
        assert moved.status_code == 200
        noted = await browser.post(f"/complaints/{number}/recommendations",
                                   json={"text": "Simplifier le formulaire", "actor": "minister@gov.be"})
        assert noted.status_code == 200
    _complaint, _thread, changes, _parties = await desk.registry.store.complaint_file(number)
    assert [(c.change, c.actor) for c in changes[1:]] == [("status", "agent.smith@med.be"),
                                                          ("recommendation", "agent.smith@med.be")]
    trail = await desk.app.state.audit.for_file(number)
    assert {(r.action, r.actor) for r in trail} >= {("change.transition", "agent.smith@med.be"),
                                                     ("change.add_recommendation", "agent.smith@med.be")}


async def test_session_requests_need_the_csrf_token_and_the_same_site(desk):
    number = (await desk.registry.on_message_received(received(at=desk.registry_clock.now))).number
    browser = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with browser:
        token = browser.headers.pop("X-CSRF-Token")
        path = f"/complaints/{number}/transitions"
        missing = await browser.post(path, json={"target": "acknowledged"})
        wrong = await browser.post(path, json={"target": "acknowledged"}, headers={"X-CSRF-Token": "0" * 64})
        assert (missing.status_code, missing.json()["error"]) == (403, "csrf")
        assert (wrong.status_code, wrong.json()["error"]) == (403, "csrf")
        for cross_site in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                           {"Sec-Fetch-Site": "cross-site"}, {"Referer": "https://evil.example/page"},
                           {"Origin": "http://localhost.evil.example"}):
            refused = await browser.post(path, json={"target": "acknowledged"},
                                         headers={"X-CSRF-Token": token, **cross_site})
            assert (refused.status_code, refused.json()["error"]) == (403, "cross_site"), cross_site
        assert (await desk.registry.store.complaint(number)).status == "received"
        same_site = await browser.post(path, json={"target": "acknowledged"},
                                       headers={"X-CSRF-Token": token, "Origin": "http://localhost",
                                                "Sec-Fetch-Site": "same-origin"})
        assert same_site.status_code == 200
        # Reads need no token: a link followed from elsewhere still opens.
        assert (await browser.get(f"/complaints/{number}", params={"reason": "triage"},
                                  headers={"Sec-Fetch-Site": "cross-site"})).status_code == 200


async def test_a_cross_site_form_post_to_a_page_is_refused(desk):
    browser = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with browser:
        browser.headers.pop("X-CSRF-Token")
        # What a hostile page's auto-submitted form sends: the cookie (if the browser allows), no token, its origin.
        forged = await browser.post("/backoffice/account/language", data={"language": "en"},
                                    headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert forged.status_code == 403 and "<html" in forged.text
        tokenless = await browser.post("/backoffice/account/language", data={"language": "en"})
        assert tokenless.status_code == 403
        with_token_from_elsewhere = await browser.post(
            "/backoffice/account/language", data={"language": "en", "csrf_token": browser.csrf_token},
            headers={"Origin": "https://evil.example"})
        assert with_token_from_elsewhere.status_code == 403
        assert (await desk.accounts.account(browser.account_id)).language == "fr"
        logout = await browser.post("/backoffice/logout", data={"csrf_token": browser.csrf_token},
                                    headers={"Sec-Fetch-Site": "cross-site"})
        assert logout.status_code == 403
    await desk.account("victim@med.be")
    async with desk.client() as anonymous:  # login CSRF: logging someone into the attacker's account
        forced = await anonymous.post("/backoffice/login", data={"email": "victim@med.be",
                                                                 "password": "correct horse battery staple"},
                                      headers={"Origin": "https://evil.example"})
        assert forced.status_code == 403 and "ombudsdesk_session" not in forced.headers.get("set-cookie", "")


async def test_files_outside_ones_scope_are_refused_and_the_refusal_audited(desk):
    clock = desk.registry_clock
    ordinary = (await desk.registry.on_message_received(received(at=clock.now, subject="Facture"))).number
    private = (await desk.registry.on_message_received(received(at=clock.now, subject="Mes données",
                                                                email="luc@example.be"))).number
    await desk.registry.handle(commands.Classify(private, "dpo@med.be", None, data_protection=True))
    await desk.registry.handle(commands.Classify(ordinary, "chef@med.be", None, service="pensions"))
    staff = await token_headers(desk.accounts, roles=("staff",), services=("taxes",), email="staff@med.be")
    dpo = await token_headers(desk.accounts, roles=("dpo",), email="dpo@med.be")
    async with desk.client(**staff) as client:
        assert (await client.get("/complaints")).json() == []  # neither is listed
        for number in (private, ordinary):
            refused = await client.get(f"/complaints/{number}")
            assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
            changed = await client.post(f"/complaints/{number}/transitions", json={"target": "acknowledged"})
            assert changed.status_code == 403
        assert (await client.get("/complaints/MED-2026-09999")).status_code == 404
    async with desk.client(**dpo) as client:
        assert [c["number"] for c in (await client.get("/complaints")).json()] == [private]
        assert (await client.get(f"/complaints/{private}", params={"reason": "complaint to answer"})).status_code \
            == 200
    trail = await desk.app.state.audit.for_file(private)
    assert [(r.action, r.actor, r.reason) for r in sorted(trail, key=lambda r: r.sequence)] == [
        ("file.denied", "staff@med.be", None), ("file.denied", "staff@med.be", None),
        ("file.read", "dpo@med.be", "complaint to answer")]
    assert (await desk.registry.store.complaint(private)).status == "received"


async def test_the_permission_table_decides_each_route(desk):
    clock = desk.registry_clock
    number = (await desk.registry.on_message_received(received(at=clock.now))).number
    admin = await token_headers(desk.accounts, roles=("admin",), email="admin@med.be")
    staff = await token_headers(desk.accounts, roles=("staff",), email="staff@med.be")
    chief = await token_headers(desk.accounts, roles=("supervisor",), email="chief@med.be")
    async with desk.client(**admin) as client:  # manages accounts, reads no file
        assert (await client.get("/complaints")).status_code == 403
        assert (await client.get(f"/complaints/{number}")).status_code == 403
        assert (await client.get("/holding-pen")).status_code == 403
        assert (await client.get("/indicators/2026")).status_code == 200
    async with desk.client(**staff) as client:
        given = await client.post(f"/complaints/{number}/assignment", json={"handler": "other@med.be"})
        assert given.status_code == 403 and "reassign" in given.json()["message"]
        taken = await client.post(f"/complaints/{number}/assignment", json={"handler": "Staff@med.be"})
        assert taken.status_code == 200 and taken.json()["handler"] == "Staff@med.be"
        released = await client.post(f"/complaints/{number}/assignment", json={"handler": None})
        assert released.status_code == 403
    async with desk.client(**chief) as client:
        retaken = await client.post(f"/complaints/{number}/assignment", json={"handler": "chief@med.be"})
        assert retaken.status_code == 200  # a supervisor reassigns a file someone holds
    async with desk.client(**staff) as client:
        stolen = await client.post(f"/complaints/{number}/assignment", json={"handler": "staff@med.be"})
        assert stolen.status_code == 403  # taking a file someone else handles is reassigning it
        undone = await client.post(f"/complaints/{number}/classification", json={"data_protection": False})
        assert undone.status_code == 403  # only a DPO says a file is not a data-protection complaint


async def test_openapi_still_describes_the_api_to_a_signed_in_person_only(desk):
    async with desk.client() as anonymous:
        assert (await anonymous.get("/openapi.json")).status_code == 401
        # The interactive docs pages load their scripts from a CDN: not served at all.
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await anonymous.get(path)).status_code == 404, path
    async with desk.client(**await token_headers(desk.accounts, roles=("staff",))) as client:
        schema = (await client.get("/openapi.json")).json()
    assert "/complaints/{number}/transitions" in schema["paths"]
    transition = schema["components"]["schemas"]["TransitionRequest"]["properties"]
    assert "actor" not in transition and "target" in transition
