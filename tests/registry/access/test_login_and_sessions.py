"""Logging in and out through the back office, and every way a session ends: logout, disable, password change,
idle and absolute limits. Throttling of failed logins, the second factor, one-time links. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from sqlalchemy import func, select

from services.registry.access.accounts import AccountStore, LoginFailure, StaffAccount, StaffSession
from services.registry.access.dependencies import SESSION_COOKIE
from services.registry.access.tokens import digest
from tests.registry.access.conftest import PASSWORD, POLICY
from tests.registry.access.helpers import signed_in_client


async def login(client, email="agent@med.be", password=PASSWORD, **fields):
    return await client.post("/backoffice/login", data={"email": email, "password": password, **fields})


async def test_login_opens_a_server_side_session_in_a_safe_cookie_and_logout_ends_it(desk):
    staff = await desk.account()
    async with desk.client() as browser:
        page = await browser.get("/backoffice/login", params={"next": "/backoffice/files/MED-2026-00001"})
        assert page.status_code == 200 and 'name="password"' in page.text and 'for="login-email"' in page.text
        answer = await login(browser, "AGENT@med.be", next="/backoffice/files/MED-2026-00001")
        assert answer.status_code == 303 and answer.headers["location"] == "/backoffice/files/MED-2026-00001"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on localhost; https sets it (below)
        secret = browser.cookies[SESSION_COOKIE]
        async with desk.accounts._begin() as session:  # only the digest is in the database
            stored = (await session.execute(select(StaffSession.token_hash))).scalars().all()
        assert stored == [digest(secret)] and secret not in stored

        me = await browser.get("/complaints")
        assert me.status_code == 200
        account_page = await browser.get("/backoffice/account")
        assert account_page.status_code == 200 and "agent@med.be" in account_page.text
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', account_page.text).group(1)

        out = await browser.post("/backoffice/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/backoffice/login"
        browser.cookies.set(SESSION_COOKIE, secret)  # a copy of the cookie kept somewhere
        assert (await browser.get("/complaints")).status_code == 401
        again = await browser.get("/backoffice/account")
        assert again.status_code == 303 and again.headers["location"] == "/backoffice/login?next=/backoffice/account"
    trail = await desk.app.state.audit.for_account(staff)
    assert sorted(r.action for r in trail) == ["login", "logout"]


async def test_failed_logins_are_audited_but_not_the_throttled_flood(desk):
    await desk.account()
    async with desk.client() as browser:
        for _ in range(POLICY.max_failures_per_account + 3):
            await login(browser, password="not the password")
    trail = await desk.app.state.audit.recent(limit=50)
    assert [(r.action, r.actor) for r in trail] == [("login.failed", "agent@med.be")] * 3


async def test_the_cookie_is_secure_over_https(desk):
    await desk.account()
    async with httpx_client(desk, "https://localhost") as browser:
        answer = await login(browser)
        assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


def httpx_client(desk, base_url):
    import httpx

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url=base_url)


async def test_wrong_passwords_unknown_and_disabled_accounts_are_refused_alike(desk):
    await desk.account()
    disabled = await desk.account("gone@med.be")
    await desk.accounts.disable(disabled)
    async with desk.client() as browser:
        answers = [await login(browser, password="wrong password!!"), await login(browser, "nobody@med.be"),
                   await login(browser, "gone@med.be")]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all(SESSION_COOKIE not in a.headers.get("set-cookie", "") for a in answers)
    assert len({re.sub(r'value="[^"]*"', "", a.text) for a in answers[1:]}) == 1  # same page: nothing to tell apart
    assert 'aria-describedby="login-error"' in answers[0].text and 'id="login-error"' in answers[0].text


async def test_next_never_leads_to_another_site(desk):
    await desk.account()
    for hostile in ("https://evil.example/", "//evil.example/backoffice", "/\\evil.example", "/backoffice\r\nX: y",
                    "javascript:alert(1)", "/elsewhere"):
        async with desk.client() as browser:
            answer = await login(browser, next=hostile)
            assert answer.status_code == 303 and answer.headers["location"] == "/backoffice/", hostile


async def test_disable_and_password_change_end_every_session(desk):
    staff = await desk.account()
    first = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    second = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    token = await desk.accounts.issue_api_token(staff, "script")
    async with first, second:
        assert (await first.get("/complaints")).status_code == 200
        changed = await second.post("/backoffice/account/password", data={
            "csrf_token": second.csrf_token, "current": PASSWORD, "password": "a new long passphrase",
            "confirmation": "a new long passphrase"})
        assert changed.status_code == 303
        assert (await first.get("/complaints")).status_code == 401  # the other browser is logged out
        assert (await second.get("/complaints")).status_code == 200  # this one went on in a fresh session
        outcome = await desk.accounts.login("agent@med.be", "a new long passphrase")
        assert outcome.result == "ok"

        await desk.accounts.disable(staff)
        assert (await second.get("/complaints")).status_code == 401
        refused = await second.get("/complaints", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthenticated"
        assert (await desk.accounts.login("agent@med.be", "a new long passphrase")).result == "invalid"


async def test_sessions_end_after_idle_time_and_absolute_lifetime(desk):
    account = await desk.account()
    secret = await desk.accounts.issue_session(account)
    desk.clock.advance(minutes=29)
    assert await desk.accounts.session_identity(secret) is not None  # used: idle time starts again
    desk.clock.advance(minutes=29)
    assert await desk.accounts.session_identity(secret) is not None
    desk.clock.advance(minutes=31)
    assert await desk.accounts.session_identity(secret) is None  # idle too long

    busy = await desk.accounts.issue_session(account)
    for _ in range(16):  # used every 29 minutes for 7 h 44
        desk.clock.advance(minutes=29)
        assert await desk.accounts.session_identity(busy) is not None
    desk.clock.advance(minutes=17)
    assert await desk.accounts.session_identity(busy) is None  # 8 hours after the login, however busy


async def test_failed_logins_are_throttled_per_account_across_processes(desk):
    await desk.account()
    other_process = AccountStore(desk.accounts.engine, POLICY, clock=desk.clock)
    async with desk.client() as browser:
        for _ in range(POLICY.max_failures_per_account):
            assert (await login(browser, password="not the password")).status_code == 401
            desk.clock.advance(minutes=1)
        # The right password now, through another process: refused too, with when to come back.
        assert (await other_process.login("agent@med.be", PASSWORD)).result == "throttled"
        refused = await login(browser)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) == 12 * 60  # the first failure leaves the window in 12 minutes
        assert "12" in refused.text and SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        async with desk.accounts._begin() as session:
            throttled = (await session.execute(select(func.count()).select_from(LoginFailure)
                                               .where(LoginFailure.throttled.is_(True)))).scalar_one()
        assert throttled == 2  # refused attempts are recorded, without lengthening the wait
        desk.clock.advance(minutes=12)
        assert (await login(browser)).status_code == 303
        async with desk.accounts._begin() as session:
            left = (await session.execute(select(func.count()).select_from(LoginFailure)
                                          .where(LoginFailure.account_key == "agent@med.be",
                                                 LoginFailure.throttled.is_(False)))).scalar_one()
        assert left == 0  # a successful login clears the account's failures


async def test_failed_logins_are_throttled_per_address_whatever_the_account(desk):
    await desk.account()
    for n in range(POLICY.max_failures_per_ip):
        assert (await desk.accounts.login(f"guess{n}@med.be", "x" * 12, ip="203.0.113.9")).result == "invalid"
    assert (await desk.accounts.login("agent@med.be", PASSWORD, ip="203.0.113.9")).result == "throttled"
    assert (await desk.accounts.login("agent@med.be", PASSWORD, ip="198.51.100.1")).result == "ok"


async def test_second_factor(desk):
    account = await desk.account()
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with client:
        started = await client.post("/backoffice/account/totp/start", data={"csrf_token": client.csrf_token})
        assert started.status_code == 303
        page = (await client.get("/backoffice/account")).text
        assert "<svg" in page and "otpauth://totp/ombudsdesk:agent%40med.be?secret=" in page
        secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
        wrong = await client.post("/backoffice/account/totp/confirm",
                                  data={"csrf_token": client.csrf_token, "code": "000000"})
        assert wrong.status_code == 422 and 'aria-describedby="error-totp"' in wrong.text
        code = pyotp.TOTP(secret).at(desk.clock.now)
        confirmed = await client.post("/backoffice/account/totp/confirm",
                                      data={"csrf_token": client.csrf_token, "code": code})
        assert confirmed.status_code == 303
    assert (await desk.accounts.account(account)).totp_enabled

    async with desk.client() as browser:
        missing = await login(browser)
        assert missing.status_code == 401 and "six chiffres" in missing.text
        desk.clock.advance(seconds=30)
        fresh = pyotp.TOTP(secret).at(desk.clock.now)
        assert (await login(browser, code=fresh)).status_code == 303
    async with desk.client() as replay:
        assert (await login(replay, code=fresh)).status_code == 401  # a code serves once


async def test_one_time_link_sets_the_password_once_and_expires(desk):
    account = await desk.account("new@med.be", password=None, language="nl")
    secret = await desk.accounts.issue_one_time_link(account, "welcome")
    async with desk.client() as browser:
        form = await browser.get(f"/backoffice/welcome/{secret}")
        assert form.status_code == 200 and 'lang="nl"' in form.text and "new@med.be" in form.text
        assert form.headers["cache-control"] == "no-store" and form.headers["referrer-policy"] == "no-referrer"
        for weak, problem in (("short", "12"), ("new@med.be and more", "e-mail"), ("aaaaaaaaaaaaaaaa", "")):
            refused = await browser.post(f"/backoffice/welcome/{secret}",
                                         data={"password": weak, "confirmation": weak})
            assert refused.status_code == 422 and 'id="password-error"' in refused.text
            assert re.search(r'id="welcome-password" [^>]*aria-describedby="[^"]*password-error"', refused.text)
            assert problem in refused.text
        chosen = "dertien tekens of meer"
        mismatch = await browser.post(f"/backoffice/welcome/{secret}",
                                      data={"password": chosen, "confirmation": chosen + "!"})
        assert mismatch.status_code == 422
        done = await browser.post(f"/backoffice/welcome/{secret}", data={"password": chosen, "confirmation": chosen})
        assert done.status_code == 303 and SESSION_COOKIE in done.headers["set-cookie"]
        assert (await browser.get("/backoffice/account")).status_code == 200  # logged in as well
    async with desk.client() as other:
        used = await other.post(f"/backoffice/welcome/{secret}", data={"password": "another password 1",
                                                                       "confirmation": "another password 1"})
        assert used.status_code == 410 and (await other.get(f"/backoffice/welcome/{secret}")).status_code == 410
    assert (await desk.accounts.login("new@med.be", chosen)).result == "ok"

    late = await desk.accounts.issue_one_time_link(account, "welcome")
    desk.clock.advance(hours=1)
    async with desk.client() as browser:
        assert (await browser.get(f"/backoffice/welcome/{late}")).status_code == 410
    assert await desk.accounts.use_link_to_set_password(late, "too late to choose") is None


async def test_account_page_language_and_own_tokens(desk):
    account = await desk.account()
    token = await desk.accounts.issue_api_token(account, "tableur")
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with client:
        assert 'lang="fr"' in (await client.get("/backoffice/account")).text
        assert (await client.post("/backoffice/account/language",
                                  data={"csrf_token": client.csrf_token, "language": "xx"})).status_code == 422
        changed = await client.post("/backoffice/account/language", data={"csrf_token": client.csrf_token,
                                                                          "language": "de"})
        assert changed.status_code == 303
        page = (await client.get(changed.headers["location"])).text
        assert 'lang="de"' in page and "Sprache gespeichert." in page and "tableur" in page
        [listed] = await desk.accounts.api_tokens(account)
        assert (await client.get("/complaints", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        revoked = await client.post(f"/backoffice/account/tokens/{listed.id}/revoke",
                                    data={"csrf_token": client.csrf_token})
        assert revoked.status_code == 303
        after = await client.get("/complaints", headers={"Authorization": f"Bearer {token}"})
        assert after.status_code == 401
    other = await desk.account("other@med.be")
    theirs = await desk.accounts.issue_api_token(other, "theirs")
    [their_token] = await desk.accounts.api_tokens(other)
    client = await signed_in_client(desk.app, desk.accounts, roles=("staff",))
    async with client:  # nobody revokes another person's token from their own account page
        refused = await client.post(f"/backoffice/account/tokens/{their_token.id}/revoke",
                                    data={"csrf_token": client.csrf_token})
        assert refused.status_code == 404
        assert (await client.get("/complaints", headers={"Authorization": f"Bearer {theirs}"})).status_code == 200


async def test_index_leads_to_the_register(desk):
    async with desk.client() as browser:
        answer = await browser.get("/backoffice/")
        assert answer.status_code == 303 and answer.headers["location"] == "/backoffice/register"
        unknown_account = await browser.get("/backoffice/register")
        assert unknown_account.status_code == 303
        assert unknown_account.headers["location"] == "/backoffice/login?next=/backoffice/register"
