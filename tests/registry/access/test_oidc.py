"""Single sign-on against a real (small) OpenID Connect provider on a local port: the whole redirect dance with the
registry's back office, and every way a login must fail — a forged or expired ID token, another nonce or audience,
a forged state, a replayed code, an unverified email, an unknown or disabled account. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from services.registry.access.dependencies import SESSION_COOKIE
from services.registry.settings import RegistrySettings
from tests.registry.access.conftest import build_desk
from tests.registry.access.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider


@pytest.fixture
async def sso(registry_on_db, tmp_path):
    registry, published, registry_clock = registry_on_db
    secret_file = tmp_path / "oidc-client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    provider = OidcProvider()
    settings = RegistrySettings(oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                                oidc_client_secret_file=secret_file, oidc_button_label="Connexion IAM")
    desk = build_desk(registry, published, registry_clock, settings)
    async with provider.running():
        yield desk, provider


async def dance(browser, provider, next_path="/backoffice/account"):
    """Browser → registry → provider → registry; returns the registry's last answer and the callback it got."""
    start = await browser.get("/backoffice/oidc/login", params={"next": next_path})
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(f"{provider.issuer}/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    assert query["redirect_uri"] == ["http://localhost/backoffice/oidc/callback"]
    async with httpx.AsyncClient() as at_provider:
        back = await at_provider.get(authorize)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    answer = await browser.get(f"{callback.path}?{callback.query}")
    return answer, f"{callback.path}?{callback.query}"


async def test_first_login_links_by_verified_email_then_by_subject(sso):
    desk, provider = sso
    account = await desk.account("Anna@Med.be", password=None)
    async with desk.client() as browser:
        login_page = await browser.get("/backoffice/login")
        assert "Connexion IAM" in login_page.text and "/backoffice/oidc/login" in login_page.text
    provider.user = {"sub": "user-42", "email": "anna@med.be", "email_verified": True}
    async with desk.client() as browser:
        answer, _ = await dance(browser, provider)
        assert answer.status_code == 303 and answer.headers["location"] == "/backoffice/account"
        assert (await browser.get("/backoffice/account")).status_code == 200
    [token_request] = provider.token_requests
    assert token_request["code_verifier"] and token_request["grant_type"] == "authorization_code"
    assert (await desk.accounts.account(account)).oidc_linked

    # Later the provider says another email for the same person: the link (issuer, subject) decides.
    provider.user = {"sub": "user-42", "email": "anna.new@med.be", "email_verified": True}
    async with desk.client() as browser:
        answer, _ = await dance(browser, provider)
        assert answer.status_code == 303 and SESSION_COOKIE in answer.headers["set-cookie"]
    # And someone else presenting Anna's email with another subject gets nothing: the account is linked already.
    provider.user = {"sub": "impostor", "email": "anna@med.be", "email_verified": True}
    async with desk.client() as browser:
        answer, _ = await dance(browser, provider)
        assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")


async def test_no_account_is_made_or_opened_without_a_verified_email_of_an_enabled_account(sso):
    desk, provider = sso
    gone = await desk.account("gone@med.be", password=None)
    await desk.accounts.disable(gone)
    await desk.account("unverified@med.be", password=None)
    for user in ({"sub": "a", "email": "stranger@example.org", "email_verified": True},
                 {"sub": "b", "email": "unverified@med.be", "email_verified": False},
                 {"sub": "c", "email": "unverified@med.be"},
                 {"sub": "d", "email": "gone@med.be", "email_verified": True}):
        provider.user = user
        async with desk.client() as browser:
            answer, _ = await dance(browser, provider)
            assert answer.status_code == 403, user
            assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert [a.email for a in await desk.accounts.list_accounts()] == ["gone@med.be", "unverified@med.be"]


def _other_key(claims):
    return claims, RSAKey.generate_key(2048, parameters={"kid": "test-key"})


@pytest.mark.parametrize("tamper", [
    _other_key,  # a token forged with the provider's key id but another key
    lambda claims: ({**claims, "exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, None),  # expired
    lambda claims: ({**claims, "nonce": "another-login"}, None),
    lambda claims: ({**claims, "aud": "another-client"}, None),
    lambda claims: ({**claims, "iss": "http://127.0.0.1:1"}, None),
    lambda claims: ({k: v for k, v in claims.items() if k != "nonce"}, None),
], ids=["forged-signature", "expired", "other-nonce", "other-audience", "other-issuer", "no-nonce"])
async def test_a_forged_or_stale_id_token_opens_nothing(sso, tamper):
    desk, provider = sso
    await desk.account("anna@med.be", password=None)
    provider.user = {"sub": "user-42", "email": "anna@med.be", "email_verified": True}
    provider.tamper = tamper
    async with desk.client() as browser:
        answer, _ = await dance(browser, provider)
        assert answer.status_code == 401 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
        assert (await browser.get("/complaints")).status_code == 401
    assert not (await desk.accounts.account_by_email("anna@med.be")).oidc_linked


async def test_forged_state_missing_flow_and_replayed_code_are_refused(sso):
    desk, provider = sso
    await desk.account("anna@med.be", password=None)
    provider.user = {"sub": "user-42", "email": "anna@med.be", "email_verified": True}
    async with desk.client() as browser:
        answer, callback = await dance(browser, provider)
        assert answer.status_code == 303
        replayed = await browser.get(callback)  # the flow cookie is gone, and the code was used
        assert replayed.status_code == 401
    # A callback made by an attacker for the victim's browser: its state is not the one of this browser's flow.
    async with desk.client() as victim:
        started = await victim.get("/backoffice/oidc/login")
        assert started.status_code == 303
        forged = await victim.get("/backoffice/oidc/callback", params={"code": "attacker-code", "state": "x"})
        assert forged.status_code == 401
    async with desk.client() as fresh:  # no flow at all
        assert (await fresh.get("/backoffice/oidc/callback", params={"code": "c", "state": "s"})).status_code == 401


async def test_without_configuration_there_is_no_single_sign_on(desk):
    async with desk.client() as browser:
        assert "/backoffice/oidc/login" not in (await browser.get("/backoffice/login")).text
        assert (await browser.get("/backoffice/oidc/login")).status_code == 404
