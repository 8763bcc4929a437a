"""Security review of issue 13 (staff back office): each test is one finding of the review (F1-F9), written to fail
on the code reviewed and kept, once fixed, as the guard of its fix: data-protection files reached through the holding
pen or a merge, reads without a reason through the JSON API, parallel password guesses, second factor replaced or
skipped, framing, assignment to outsiders.

Every test uses real sessions (`signed_in_client`: a real account, a real session cookie and its CSRF token) on a
real database; nothing of the access layer is overridden.
"""

from __future__ import annotations

import asyncio

import pyotp
import pytest

from services.registry import commands
from services.registry.access.dependencies import SESSION_COOKIE
from tests.registry.access.conftest import build_desk
from tests.registry.access.helpers import signed_in_client, token_headers
from tests.registry.conftest import received
from tests.registry.test_work_pages import hold_for

STAFF_EMAIL = "agent@med.be"
DPO_EMAIL = "dpo@med.be"


async def _dp_file(backoffice_app) -> str:
    return await backoffice_app.file(subject="RGPD : mes données médicales publiées", name="Marie Secret",
                                      data_protection=True, handler=DPO_EMAIL)


async def _numbers_in_file(backoffice_app, number: str) -> dict:
    found = await backoffice_app.store.complaint_file(number)
    return {"thread": [m.message_key for m in found[1]], "changes": [(c.change, c.actor) for c in found[2]],
            "parties": list(found[3])}


# --- F1: the holding pen page attaches a message to a file the person may not see ----------------------------------
async def test_staff_cannot_attach_a_held_message_to_a_data_protection_file_through_the_page(backoffice_app):
    app = backoffice_app
    protected = await _dp_file(app)
    held_id = await hold_for(app.registry, app.clock, protected, "intruder@evil.example", subject="Complément")
    client = await signed_in_client(app.app, app.app.state.accounts, roles=("staff",), email=STAFF_EMAIL)
    async with client:
        # Through the JSON API the same attach is refused (api.attach -> _visible -> 403) ...
        api = await client.post(f"/holding-pen/{held_id}/attach", json={"number": protected,
                                                                        "add_correspondent": True})
        assert api.status_code == 403
        # ... through the page it is not.
        page = await client.post(f"/backoffice/holding-pen/{held_id}/attach",
                                 data={"csrf_token": client.csrf_token, "other_number": protected,
                                       "add_correspondent": "1"})
    after = await _numbers_in_file(app, protected)
    assert "intruder@evil.example" not in after["parties"], (page.status_code, after)
    assert page.status_code == 403


# --- F2: merge / link from a visible file into a data-protection file ------------------------------------------------
@pytest.mark.parametrize("action,field", [("merge", "target"), ("link", "other")])
async def test_staff_cannot_merge_or_link_their_file_with_a_data_protection_file(backoffice_app, action, field):
    app = backoffice_app
    protected = await _dp_file(app)
    mine = await app.file(subject="Facture", handler=STAFF_EMAIL)
    client = await signed_in_client(app.app, app.app.state.accounts, roles=("staff",), email=STAFF_EMAIL)
    async with client:
        assert (await client.get(f"/backoffice/files/{protected}")).status_code == 403
        done = await client.post(f"/backoffice/files/{mine}/actions/{action}",
                                 data={"csrf_token": client.csrf_token, field: protected, "confirmed": "1",
                                       "reason": "x"})
    changes = (await _numbers_in_file(app, protected))["changes"]
    trail = [(e.action, e.actor, e.number) for e in await app.app.state.audit.for_file(protected)]
    # (also: the change is in the audit trail under the staff member's own file only, not under `protected`)
    assert not any(actor == STAFF_EMAIL for _change, actor in changes), (done.status_code, changes, trail)


# --- F3: the JSON API reads a file without the reason the page asks of a non-handler ---------------------------------
async def test_a_non_handler_reading_through_the_json_api_must_state_a_reason(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Facture", name="Jeanne Dupont", handler="colleague@med.be")
    client = await signed_in_client(app.app, app.app.state.accounts, roles=("staff",), email=STAFF_EMAIL)
    async with client:
        page = await client.get(f"/backoffice/files/{number}")
        assert 'id="read-reason"' in page.text and "Jeanne Dupont" not in page.text  # the page asks first
        api = await client.get(f"/complaints/{number}")  # same browser session, same person
    reads = [e for e in await app.app.state.audit.for_file(number) if e.action == "file.read"]
    assert api.status_code != 200 or all(e.reason for e in reads), (api.status_code, [e.reason for e in reads])


# --- F4: the JSON holding-pen list shows the text of messages filed in data-protection files -------------------------
async def test_staff_do_not_read_messages_filed_into_a_data_protection_file_through_the_holding_pen_api(
        backoffice_app):
    app = backoffice_app
    protected = await _dp_file(app)
    outcome = await app.registry.on_message_received(received(
        at=app.clock.now, email="brother@example.org", name="Quidam", subject="Diagnostic de ma soeur",
        new_text="Ma soeur est suivie pour une dépression.", candidate_case_numbers=(protected,)))
    assert outcome.action == "held", outcome
    held_id = (await app.store.held_messages("pending"))[-1].id
    await app.registry.handle(commands.AttachHeld(held_id, protected, DPO_EMAIL))  # the DPO files it
    headers = await token_headers(app.app.state.accounts, roles=("staff",), email=STAFF_EMAIL)
    async with app.client(None) as client:
        listed = await client.get("/holding-pen", params={"status": ""}, headers=headers)
    assert listed.status_code == 200
    leaked = [(h["sender"], h["subject"], h["new_text"], h["resolved_number"]) for h in listed.json()
              if h["resolved_number"] == protected]
    assert leaked == [], leaked


# --- F5: concurrent failed logins pass the throttle ------------------------------------------------------------------
async def test_parallel_wrong_passwords_are_throttled_like_sequential_ones(registry_on_db):
    desk = build_desk(*registry_on_db)  # max_failures_per_account=3
    await desk.account("victim@med.be")
    async with desk.client() as client:
        answers = await asyncio.gather(*(client.post("/backoffice/login", data={
            "email": "victim@med.be", "password": f"wrong guess {i:03d}"}) for i in range(30)))
    heard = [a.status_code for a in answers if a.status_code != 429]
    assert len(heard) <= desk.accounts.policy.max_failures_per_account, sorted(a.status_code for a in answers)


# --- F6: the second factor is replaced without a code of the current one --------------------------------------------
async def test_replacing_an_active_second_factor_needs_a_code_of_the_current_one(registry_on_db):
    desk = build_desk(*registry_on_db)
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",), email="victim@med.be")
    async with client:
        await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})
        first = await desk.accounts.pending_totp(client.account_id)
        assert await desk.accounts.confirm_totp(client.account_id, pyotp.TOTP(first).at(desk.clock.now))
        # Someone holding this session (not the phone) sets up their own authenticator:
        await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})
        second = await desk.accounts.pending_totp(client.account_id)
        confirmed = await client.post("/backoffice/account/totp/confirm", data={
            "csrf_token": client.csrf_token, "code": pyotp.TOTP(second).at(desk.clock.now)})
    assert confirmed.status_code != 303, "the factor was replaced without a code of the active one"


# --- F7: no anti-framing / content-type / CSP headers on the pages ---------------------------------------------------
async def test_pages_forbid_framing_and_sniffing(registry_on_db):
    desk = build_desk(*registry_on_db)
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",), email="agent@med.be")
    async with client:
        pages = [await client.get(p) for p in ("/backoffice/register", "/backoffice/account",
                                               "/backoffice/files/MED-2026-09999")]
    async with desk.client() as anonymous:
        pages.append(await anonymous.get("/backoffice/login"))
    assert [page.status_code for page in pages] == [200, 200, 404, 200]
    for page in pages:
        csp = page.headers.get("content-security-policy", "")
        assert page.headers.get("x-frame-options") or "frame-ancestors" in csp, (page.url, dict(page.headers))
        assert page.headers.get("x-content-type-options") == "nosniff", (page.url, dict(page.headers))


# --- F8: a one-time link logs into an account whose second factor is on, without a code ------------------------------
async def test_a_one_time_link_does_not_skip_the_second_factor(registry_on_db):
    desk = build_desk(*registry_on_db)
    account_id = await desk.account("dpo@med.be", roles=("dpo",))
    await desk.accounts.start_totp(account_id)
    secret = await desk.accounts.pending_totp(account_id)
    assert await desk.accounts.confirm_totp(account_id, pyotp.TOTP(secret).at(desk.clock.now))
    link = await desk.accounts.issue_one_time_link(account_id)  # an admin's "new link" (page or CLI)
    chosen = "a brand new passphrase 42"
    async with desk.client() as browser:
        done = await browser.post(f"/backoffice/welcome/{link}", data={"password": chosen, "confirmation": chosen})
        session = browser.cookies.get(SESSION_COOKIE)
    assert done.status_code != 303 or session is None, "logged in without the second factor"


# --- F9: a file is handed to an address that is no account (deadline digests go to the handler's address) -----------
async def test_a_file_is_only_assigned_to_an_active_account_that_handles_files(backoffice_app):
    app = backoffice_app
    number = await app.file(subject="Facture d'hôpital", name="Jeanne Dupont")
    client = await signed_in_client(app.app, app.app.state.accounts, roles=("supervisor",), email="chief@med.be")
    async with client:
        api = await client.post(f"/complaints/{number}/assignment", json={"handler": "outsider@evil.example"})
        await client.post(f"/backoffice/files/{number}/reason", data={"csrf_token": client.csrf_token,
                                                                      "reason": "supervision"})
        page = await client.post(f"/backoffice/files/{number}/actions/assign",
                                 data={"csrf_token": client.csrf_token, "handler": "outsider2@evil.example"})
    complaint = await app.store.complaint(number)
    handlers = [c.details for c in (await app.store.complaint_file(number))[2] if c.change == "assignment"]
    assert not handlers, handlers
    assert complaint.handler not in {"outsider@evil.example", "outsider2@evil.example"}, (
        api.status_code, page.status_code, complaint.handler)
