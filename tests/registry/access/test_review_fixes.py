"""What the security review of issue 13 found in the identity and API code, fixed (SQLite and PostgreSQL):

- a file read through the JSON API by anyone but its handler states a reason (428 without one, audited with it);
- the JSON holding pen lists pending messages only, and the listing is audited;
- login throttling holds under parallel attempts, and Argon2 runs in a few worker threads, not on the event loop;
- replacing an active second factor takes a code of it; a one-time link does not skip it;
- every answer carries the CSP / anti-framing / no-sniffing headers, and the pages have nothing inline the CSP breaks;
- a file is assigned only to an active account that handles files;
- a failed login with an unknown email does not keep what was typed.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pyotp
import pytest
from sqlalchemy import func, select

from services.registry import commands
from services.registry.access.accounts import LoginFailure, StaffAccount
from services.registry.access.dependencies import SESSION_COOKIE
from services.registry.access.passwords import HashingGate
from tests.registry.access.conftest import PASSWORD, POLICY
from tests.registry.access.helpers import signed_in_client, token_headers
from tests.registry.conftest import received

REASON = "complaint forwarded by the director"


async def _file(desk, **fields) -> str:
    return (await desk.registry.on_message_received(received(at=desk.registry_clock.now, **fields))).number


def _reads(trail) -> list[tuple[str, str, str | None]]:
    return [(r.action, r.actor, r.reason) for r in sorted(trail, key=lambda r: r.sequence)]


# --- F3: a read through the JSON API by a non-handler states why -----------------------------------------------------
async def test_a_non_handler_reads_a_file_through_the_api_only_with_a_reason(desk):
    number = await _file(desk, subject="Facture")
    await desk.account("colleague@med.be")
    await desk.registry.handle(commands.Assign(number, "colleague@med.be", "chief@med.be", None))
    other = await token_headers(desk.accounts, roles=("staff",), email="agent@med.be")
    handler = await token_headers(desk.accounts, roles=("staff",), email="colleague@med.be")
    async with desk.client(**other) as client:
        for params in ({}, {"reason": ""}, {"reason": " \t "}):
            refused = await client.get(f"/complaints/{number}", params=params)
            assert refused.status_code == 428, params
            assert refused.json()["error"] == "reason_required" and "Jeanne" not in refused.text
        assert (await client.get(f"/complaints/{number}", params={"reason": "x" * 2001})).status_code == 422
        read = await client.get(f"/complaints/{number}", params={"reason": f"  {REASON}\n"})
        assert read.status_code == 200 and read.json()["complainant"]["name"] == "Jeanne Dupont"
        # An unknown number is a 404 whatever the reason.
        assert (await client.get("/complaints/MED-2026-09999")).status_code == 404
    async with desk.client(**handler) as client:
        assert (await client.get(f"/complaints/{number}")).status_code == 200  # the handler says nothing
    assert _reads(await desk.app.state.audit.for_file(number)) == [
        ("file.read", "agent@med.be", REASON), ("file.read", "colleague@med.be", None)]


async def test_an_unassigned_file_is_read_with_a_reason_and_a_file_out_of_scope_stays_refused(desk):
    number = await _file(desk)
    private = await _file(desk, subject="Mes données", email="luc@example.be")
    await desk.registry.handle(commands.Classify(private, "dpo@med.be", None, data_protection=True))
    staff = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with staff:  # the same rule for a browser session as for a token
        assert (await staff.get(f"/complaints/{number}")).status_code == 428
        assert (await staff.get(f"/complaints/{number}", params={"reason": "triage"})).status_code == 200
        # Out of scope: refused (and the refusal audited) before any reason is asked.
        denied = await staff.get(f"/complaints/{private}", params={"reason": "curiosity"})
        assert denied.status_code == 403
    assert _reads(await desk.app.state.audit.for_file(number)) == [("file.read", "agent@med.be", "triage")]
    assert [r.action for r in await desk.app.state.audit.for_file(private)] == ["file.denied"]


# --- F4: the JSON holding pen ----------------------------------------------------------------------------------------
async def test_the_api_holding_pen_lists_pending_messages_only_and_is_audited(desk):
    number = await _file(desk)
    for sender in ("first@example.org", "second@example.org"):
        outcome = await desk.registry.on_message_received(received(
            at=desk.registry_clock.now, email=sender, subject=f"Suite de {sender}",
            candidate_case_numbers=(number,)))
        assert outcome.action == "held"
    first, second = await desk.registry.store.held_messages("pending")
    await desk.registry.handle(commands.AttachHeld(first.id, number, "agent@med.be"))
    headers = await token_headers(desk.accounts, roles=("staff",))
    async with desk.client(**headers) as client:
        for params in ({}, {"status": ""}, {"status": "resolved"}, {"status": "pending"}):
            listed = await client.get("/holding-pen", params=params)
            assert listed.status_code == 200
            assert [(h["id"], h["sender"], h["status"]) for h in listed.json()] == [
                (second.id, "second@example.org", "pending")], params
    trail = await desk.app.state.audit.recent(limit=50)
    held_reads = [(r.action, r.actor, r.number, r.details) for r in trail if r.action == "held.read"]
    assert held_reads == [("held.read", "script@med.be", None, {"count": 1})] * 4


# --- F5: throttling under parallel attempts; hashing off the event loop ---------------------------------------------
async def test_parallel_wrong_passwords_are_heard_no_more_than_the_limit_then_even_the_right_one_waits(desk):
    await desk.account("victim@med.be")
    async with desk.client() as browser:
        answers = await asyncio.gather(*(browser.post("/backoffice/login", data={
            "email": "victim@med.be", "password": f"wrong guess {i:03d}"}) for i in range(24)))
        statuses = [a.status_code for a in answers]
        heard = statuses.count(401)
        assert heard <= POLICY.max_failures_per_account and set(statuses) <= {401, 429}, statuses
        assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
        # (Attempts refused together may each have counted the others: a burst can be refused whole. What was heard
        # counts; reach the limit one by one, and then even the right password waits.)
        for _ in range(POLICY.max_failures_per_account - heard):
            assert (await browser.post("/backoffice/login", data={"email": "victim@med.be",
                                                                  "password": "one more guess"})).status_code == 401
        right = await browser.post("/backoffice/login", data={"email": "victim@med.be", "password": PASSWORD})
        assert right.status_code == 429 and SESSION_COOKIE not in browser.cookies
        desk.clock.advance(minutes=16)  # the window passes: the right password opens, and the slate is clean
        right = await browser.post("/backoffice/login", data={"email": "victim@med.be", "password": PASSWORD})
        assert right.status_code == 303
    async with desk.accounts._begin() as session:
        left = (await session.execute(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.account_key == "victim@med.be", LoginFailure.throttled.is_(False)))).scalar_one()
    assert left == 0


async def test_sequential_attempts_are_throttled_after_the_limit_and_a_success_resets_the_count(desk):
    await desk.account()
    async with desk.client() as browser:
        async def attempt(password: str) -> int:
            return (await browser.post("/backoffice/login", data={"email": "agent@med.be",
                                                                  "password": password})).status_code
        assert [await attempt("wrong one here") for _ in range(POLICY.max_failures_per_account - 1)] == [401, 401]
        assert await attempt(PASSWORD) == 303
        browser.cookies.clear()
        wrong = [await attempt("wrong again here") for _ in range(POLICY.max_failures_per_account + 1)]
        assert wrong == [401] * POLICY.max_failures_per_account + [429]


async def test_password_hashing_runs_in_worker_threads_a_few_at_a_time():
    gate = HashingGate(2)
    running, most, threads = 0, 0, set()
    lock = threading.Lock()

    def work(_n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            running -= 1
        return _n

    loop_thread = threading.get_ident()
    ticks = 0

    async def ticker() -> None:  # the event loop goes on meanwhile
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    beat = asyncio.create_task(ticker())
    assert await asyncio.gather(*(gate.run(work, n) for n in range(6))) == list(range(6))
    beat.cancel()
    assert most == 2 and loop_thread not in threads and ticks >= 5


async def test_the_store_verifies_passwords_off_the_event_loop(desk, monkeypatch):
    await desk.account()
    seen: list[int] = []
    original = type(POLICY.passwords).verify

    def spy(self, stored, password):
        seen.append(threading.get_ident())
        return original(self, stored, password)

    monkeypatch.setattr(type(POLICY.passwords), "verify", spy)
    assert (await desk.accounts.login("agent@med.be", PASSWORD)).result == "ok"
    assert (await desk.accounts.login("nobody@med.be", PASSWORD)).result == "invalid"
    assert len(seen) == 2 and threading.get_ident() not in seen


# --- the failed-login audit entry ------------------------------------------------------------------------------------
async def test_a_failed_login_keeps_no_typed_email_that_is_no_account(desk):
    account_id = await desk.account()
    typed = "Jean.Typo.Secret@example.org"
    async with desk.client() as browser:
        assert (await browser.post("/backoffice/login", data={"email": typed, "password": PASSWORD})).status_code \
            == 401
        assert (await browser.post("/backoffice/login", data={"email": "agent@med.be",
                                                              "password": "not it at all"})).status_code == 401
    trail = sorted(await desk.app.state.audit.recent(limit=10), key=lambda r: r.sequence)
    assert [(r.action, r.actor, r.account_id) for r in trail] == [
        ("login.failed", "unknown", None), ("login.failed", "agent@med.be", account_id)]
    assert "typo" not in (await desk.app.state.audit.export_csv()).lower()


# --- F6: replacing an active second factor ---------------------------------------------------------------------------
async def _with_factor(desk, client) -> str:
    await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})
    secret = await desk.accounts.pending_totp(client.account_id)
    assert await desk.accounts.confirm_totp(client.account_id, pyotp.TOTP(secret).at(desk.clock.now))
    desk.clock.advance(seconds=30)  # the next code (each code is accepted once)
    return secret


async def test_replacing_an_active_second_factor_takes_a_code_of_it_and_of_the_new_one(desk):
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with client:
        old = await _with_factor(desk, client)
        page = await client.get("/backoffice/account")
        assert 'action="/backoffice/account/totp/disable"' in page.text and "totp/start" in page.text
        await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})
        new = await desk.accounts.pending_totp(client.account_id)
        assert new and new != old
        page = await client.get("/backoffice/account")
        assert 'name="current_code"' in page.text and new in page.text
        now = desk.clock.now

        async def confirm(**fields: str):
            return await client.post("/backoffice/account/totp/confirm", data={"csrf_token": client.csrf_token,
                                                                              **fields})
        without = await confirm(code=pyotp.TOTP(new).at(now))
        wrong = await confirm(code=pyotp.TOTP(new).at(now), current_code="000000"
                              if pyotp.TOTP(old).at(now) != "000000" else "111111")
        assert (without.status_code, wrong.status_code) == (422, 422)
        assert (await desk.accounts.account(client.account_id)).totp_enabled
        done = await confirm(code=pyotp.TOTP(new).at(now), current_code=pyotp.TOTP(old).at(now))
        assert done.status_code == 303
    async with desk.accounts._begin() as session:
        row = await session.get(StaffAccount, client.account_id)
        assert (row.totp_secret, row.totp_pending) == (new, None)
    actions = [r.action for r in await desk.app.state.audit.for_account(client.account_id)]
    assert "account.totp_replace" in actions


async def test_codes_of_the_factor_in_place_are_throttled_like_a_login(desk):
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with client:
        old = await _with_factor(desk, client)
        await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})
        new = await desk.accounts.pending_totp(client.account_id)
        now = desk.clock.now
        right = pyotp.TOTP(old).at(now)
        guesses = [g for g in (f"{n:06d}" for n in range(100)) if g != right][:POLICY.max_failures_per_account]
        for guess in guesses:
            await client.post("/backoffice/account/totp/confirm", data={
                "csrf_token": client.csrf_token, "code": pyotp.TOTP(new).at(now), "current_code": guess})
        late = await client.post("/backoffice/account/totp/confirm", data={
            "csrf_token": client.csrf_token, "code": pyotp.TOTP(new).at(now), "current_code": right})
        assert late.status_code == 422
        off = await client.post("/backoffice/account/totp/disable", data={"csrf_token": client.csrf_token,
                                                                          "code": right})
        assert off.status_code == 422
    assert (await desk.accounts.account(client.account_id)).totp_enabled


# --- F8: a one-time link for an account whose second factor is on ----------------------------------------------------
async def test_a_one_time_link_asks_for_the_second_factor_before_setting_anything(desk):
    account_id = await desk.account("dpo@med.be", roles=("dpo",))
    await desk.accounts.start_totp(account_id)
    secret = await desk.accounts.pending_totp(account_id)
    assert await desk.accounts.confirm_totp(account_id, pyotp.TOTP(secret).at(desk.clock.now))
    desk.clock.advance(seconds=30)
    link = await desk.accounts.issue_one_time_link(account_id)
    chosen = "a brand new passphrase 42"
    form = {"password": chosen, "confirmation": chosen}
    async with desk.client() as browser:
        page = await browser.get(f"/backoffice/welcome/{link}")
        assert page.status_code == 200 and 'name="code"' in page.text
        no_code = await browser.post(f"/backoffice/welcome/{link}", data=form)
        code = pyotp.TOTP(secret).at(desk.clock.now)
        wrong = await browser.post(f"/backoffice/welcome/{link}", data={**form, "code": "123456" if code != "123456"
                                                                          else "654321"})
        assert (no_code.status_code, wrong.status_code) == (422, 422)
        assert 'id="code-error"' in wrong.text and SESSION_COOKIE not in browser.cookies
        assert (await desk.accounts.login("dpo@med.be", chosen, code=code)).result == "invalid"  # not set
        assert (await desk.accounts.link_account(link)) is not None  # still usable
        done = await browser.post(f"/backoffice/welcome/{link}", data={**form, "code": code})
        assert done.status_code == 303 and browser.cookies.get(SESSION_COOKIE)
        assert (await browser.get("/backoffice/account")).status_code == 200
        assert (await desk.accounts.link_account(link)) is None  # used
    desk.clock.advance(seconds=30)
    assert (await desk.accounts.login("dpo@med.be", chosen, code=pyotp.TOTP(secret).at(desk.clock.now))).result \
        == "ok"


async def test_link_codes_are_throttled_and_a_link_without_second_factor_works_as_before(desk):
    account_id = await desk.account("dpo@med.be", roles=("dpo",))
    await desk.accounts.start_totp(account_id)
    secret = await desk.accounts.pending_totp(account_id)
    assert await desk.accounts.confirm_totp(account_id, pyotp.TOTP(secret).at(desk.clock.now))
    desk.clock.advance(seconds=30)
    link = await desk.accounts.issue_one_time_link(account_id)
    chosen = "a brand new passphrase 42"
    right = pyotp.TOTP(secret).at(desk.clock.now)
    guesses = [g for g in (f"{n:06d}" for n in range(100)) if g != right][:POLICY.max_failures_per_account]
    async with desk.client() as browser:
        for guess in guesses:
            answer = await browser.post(f"/backoffice/welcome/{link}", data={
                "password": chosen, "confirmation": chosen, "code": guess})
            assert answer.status_code == 422
        late = await browser.post(f"/backoffice/welcome/{link}", data={
            "password": chosen, "confirmation": chosen, "code": right})
        assert late.status_code == 429 and SESSION_COOKIE not in browser.cookies
    plain = await desk.account("agent@med.be", password=None)
    plain_link = await desk.accounts.issue_one_time_link(plain)
    async with desk.client() as browser:
        page = await browser.get(f"/backoffice/welcome/{plain_link}")
        assert 'name="code"' not in page.text
        done = await browser.post(f"/backoffice/welcome/{plain_link}", data={"password": chosen,
                                                                             "confirmation": chosen})
        assert done.status_code == 303 and browser.cookies.get(SESSION_COOKIE)


# --- F7: security headers, no inline script or style ----------------------------------------------------------------
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")


async def test_every_answer_carries_the_security_headers(desk):
    import httpx

    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    number = await _file(desk)
    async with client:
        answers = [await client.get(path) for path in (
            "/backoffice/register", "/backoffice/account", "/backoffice/files/MED-2026-09999", "/complaints",
            f"/complaints/{number}", "/backoffice/static/backoffice.css", "/health")]
        answers.append(await client.post(f"/complaints/{number}/transitions", content=b"target=closed",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"}))
    async with desk.client() as anonymous:
        answers += [await anonymous.get("/backoffice/login"), await anonymous.get("/complaints")]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://evil.example") as c:
        answers.append(await c.get("/complaints"))
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 428, 200, 200, 415, 200, 401, 400]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.url
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers.get_list("referrer-policy") in (["same-origin"], ["no-referrer"]), answer.url
    # A page holding a secret keeps its stricter policy (one header, not two).
    assert answers[1].headers.get_list("referrer-policy") == ["no-referrer"]


INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)


async def test_pages_hold_nothing_inline_that_the_policy_would_block(desk):
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with client:
        await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})  # the QR code
        pages = [await client.get(path) for path in ("/backoffice/register", "/backoffice/account")]
    async with desk.client() as anonymous:
        pages.append(await anonymous.get("/backoffice/login"))
    for page in pages:
        assert page.status_code == 200
        assert INLINE.findall(page.text) == [], page.url
        # htmx must neither inject its indicator <style> nor evaluate code (both blocked by the policy anyway).
        assert '"includeIndicatorStyles": false' in page.text and '"allowEval": false' in page.text


# --- F9: assignment to an account that handles files only ------------------------------------------------------------
async def test_assignable_accounts_are_the_active_ones_that_handle_files(desk):
    for email, roles in (("staff@med.be", ("staff",)), ("dpo@med.be", ("dpo",)),
                         ("chief@med.be", ("supervisor",)), ("root@med.be", ("admin",)),
                         ("both@med.be", ("admin", "staff")), ("gone@med.be", ("staff",))):
        await desk.account(email, roles=roles)
    await desk.accounts.disable("gone@med.be")
    verdicts = {email: await desk.accounts.assignable(email) for email in (
        "staff@med.be", " Staff@MED.be ", "dpo@med.be", "chief@med.be", "both@med.be", "root@med.be",
        "gone@med.be", "outsider@evil.example", "", "   ")}
    assert verdicts == {"staff@med.be": True, " Staff@MED.be ": True, "dpo@med.be": True, "chief@med.be": True,
                        "both@med.be": True, "root@med.be": False, "gone@med.be": False,
                        "outsider@evil.example": False, "": False, "   ": False}


async def test_the_api_assigns_only_to_an_account_that_handles_files(desk):
    number = await _file(desk)
    await desk.account("root@med.be", roles=("admin",))
    await desk.account("gone@med.be")
    await desk.accounts.disable("gone@med.be")
    await desk.account("staff@med.be")
    chief = await token_headers(desk.accounts, roles=("supervisor",), email="chief@med.be")
    async with desk.client(**chief) as client:
        for outsider in ("outsider@evil.example", "root@med.be", "gone@med.be"):
            refused = await client.post(f"/complaints/{number}/assignment", json={"handler": outsider})
            assert (refused.status_code, refused.json()["error"]) == (409, "unknown_handler"), outsider
        assert (await desk.registry.store.complaint(number)).handler is None
        given = await client.post(f"/complaints/{number}/assignment", json={"handler": "staff@med.be"})
        assert given.status_code == 200 and given.json()["handler"] == "staff@med.be"
        released = await client.post(f"/complaints/{number}/assignment", json={"handler": None})
        assert released.status_code == 200 and released.json()["handler"] is None
    changes = [(c.change, c.details) for c in (await desk.registry.store.complaint_file(number))[2]
               if c.change == "assignment"]
    assert len(changes) == 2


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_no_docs_page_loads_scripts_from_a_cdn(desk, path):
    headers = await token_headers(desk.accounts, roles=("staff",))
    async with desk.client(**headers) as client:
        assert (await client.get(path)).status_code == 404
