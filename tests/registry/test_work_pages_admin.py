"""The accounts pages (administrators) on a real database (SQLite and PostgreSQL): the list, adding an account with
its one-time link shown once, roles and services, disable / enable, a new link, revoking API tokens; every action in
the audit trail; a staff member is refused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from services.registry.access.roles import Role
from tests.registry.test_work_pages import LANGUAGES, audit_actions, main_text, pages_client, person


def link_secret(html: str) -> str:
    return re.search(r'id="new-link" readonly value="http://localhost/backoffice/welcome/([^"]+)"', html).group(1)


async def admin_in(client, email: str = "root@med.be", roles=("admin",)):
    store = client.app.state.accounts
    account_id = await store.create_account(email, roles=list(roles))
    return store, person(*(Role(r) for r in roles), email=email, account_id=account_id, language="en")


async def test_a_staff_member_may_not_manage_accounts(registry_on_db):
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.STAFF, Role.SUPERVISOR, Role.DPO)) as (client, _acting):
        assert (await client.get("/backoffice/admin/users")).status_code == 403
        refused = await client.post("/backoffice/admin/users", data={"email": "x@med.be", "roles": "admin",
                                                                    "language": "fr"})
        assert refused.status_code == 403
        assert await client.app.state.accounts.account_by_email("x@med.be") is None


async def test_adding_an_account_shows_its_one_time_link_once(registry_on_db):
    registry, _published, _clock = registry_on_db
    async with pages_client(registry, person(Role.ADMIN)) as (client, acting):
        store, acting.principal = await admin_in(client)
        added = await client.post("/backoffice/admin/users", data={
            "email": "Nadia.Peeters@Med.be", "display_name": "  Nadia   Peeters ", "roles": ["staff", "dpo"],
            "services": ["onem", "fedasil", "onem"], "language": "nl", "csrf_token": "t"})
        assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
        secret = link_secret(added.text)
        account = await store.link_account(secret)
        assert account is not None and account.email == "nadia.peeters@med.be"
        assert set(account.roles) == {Role.STAFF, Role.DPO} and account.services == ("onem", "fedasil")
        assert account.display_name == "Nadia Peeters" and account.language == "nl"
        row = added.text.split('data-account="nadia.peeters@med.be"', 1)[1].split("</tr>", 1)[0]
        assert "Staff, Data protection officer" in row and "onem, fedasil" in row and "never" in row
        assert (await audit_actions(client, acting.principal.account_id))[-1] == (
            "account.create", None, {"account_id": account.id, "roles": ["staff", "dpo"]})

        listed = await client.get("/backoffice/admin/users")
        assert secret not in listed.text and "welcome/" not in listed.text  # shown once, never again

        duplicate = await client.post("/backoffice/admin/users", data={
            "email": "nadia.peeters@med.be", "roles": "staff", "language": "fr"})
        assert duplicate.status_code == 409 and "An account exists already" in main_text(duplicate.text)
        bad = await client.post("/backoffice/admin/users", data={
            "email": "not an address", "roles": "wizard", "language": "xx", "display_name": "<i>x</i>"})
        assert bad.status_code == 422
        assert 'id="error-email"' in bad.text and 'id="error-roles"' in bad.text
        assert 'value="&lt;i&gt;x&lt;/i&gt;"' in bad.text
        assert len(await store.list_accounts()) == 2


async def test_roles_disable_enable_link_and_tokens_are_audited(registry_on_db):
    registry, _published, clock = registry_on_db
    async with pages_client(registry, person(Role.ADMIN)) as (client, acting):
        store, acting.principal = await admin_in(client)
        admin_id = acting.principal.account_id
        target = await store.create_account("luc@med.be", roles=["staff"], password="correct horse battery")
        session = await store.issue_session(target)
        token = await store.issue_api_token(target, "script")
        first_link = await store.issue_one_time_link(target)
        token_id = (await store.api_tokens(target))[0].id

        page = await client.get(f"/backoffice/admin/users/{target}")
        assert page.status_code == 200 and "script" in page.text

        roles = await client.post(f"/backoffice/admin/users/{target}/roles",
                                  data={"roles": ["staff", "supervisor"], "services": "fps-justice"})
        assert roles.status_code == 200 and "Roles and services saved." in roles.text
        account = await store.account(target)
        assert set(account.roles) == {Role.STAFF, Role.SUPERVISOR} and account.services == ("fps-justice",)
        unknown = await client.post(f"/backoffice/admin/users/{target}/roles",
                                    data={"roles": "staff", "services": "../../etc"})
        assert unknown.status_code == 422 and (await store.account(target)).services == ("fps-justice",)

        link = await client.post(f"/backoffice/admin/users/{target}/link")
        assert link.headers["cache-control"] == "no-store"
        assert await store.link_account(link_secret(link.text)) is not None
        assert await store.link_account(first_link) is None  # the earlier link stops working

        revoked = await client.post(f"/backoffice/admin/users/{target}/tokens/{token_id}/revoke")
        assert revoked.status_code == 200 and await store.token_principal(token) is None
        twice = await client.post(f"/backoffice/admin/users/{target}/tokens/{token_id}/revoke")
        assert twice.status_code == 409

        disabled = await client.post(f"/backoffice/admin/users/{target}/disable")
        assert disabled.status_code == 200 and await store.session_identity(session) is None
        assert not (await store.account(target)).active
        no_link = await client.post(f"/backoffice/admin/users/{target}/link")
        assert no_link.status_code == 409
        enabled = await client.post(f"/backoffice/admin/users/{target}/enable")
        assert enabled.status_code == 200 and (await store.account(target)).active

        assert [(a, d.get("account_id")) for a, _n, d in await audit_actions(client, admin_id)] == [
            ("account.set_roles", target), ("account.issue_link", target), ("account.revoke_token", target),
            ("account.disable", target), ("account.enable", target)]

        # No slip of the mouse leaves the office without an administrator.
        own = await client.post(f"/backoffice/admin/users/{admin_id}/disable")
        assert own.status_code == 409 and (await store.account(admin_id)).active
        demoted = await client.post(f"/backoffice/admin/users/{admin_id}/roles", data={"roles": "staff"})
        assert demoted.status_code == 409 and Role.ADMIN in (await store.account(admin_id)).roles
        assert (await client.get("/backoffice/admin/users/999999")).status_code == 404


async def test_the_list_shows_last_login_second_factor_and_state(registry_on_db):
    registry, _published, clock = registry_on_db
    async with pages_client(registry, person(Role.ADMIN)) as (client, acting):
        store, acting.principal = await admin_in(client)
        store.clock = lambda: clock.now - timedelta(days=2)
        luc = await store.create_account("luc@med.be", roles=["staff"], password="correct horse battery")
        await store.issue_session(luc)
        await store.create_account("old@med.be", roles=["staff"])
        await store.disable("old@med.be")
        page = (await client.get("/backoffice/admin/users")).text
    luc_row = page.split('data-account="luc@med.be"', 1)[1].split("</tr>", 1)[0]
    old_row = page.split('data-account="old@med.be"', 1)[1].split("</tr>", 1)[0]
    assert "2026-11-22 11:00" in luc_row and "active" in luc_row  # Brussels time of the login
    assert "disabled" in old_row and "never" in old_row


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_accounts_page_speaks_each_language(registry_on_db, language):
    registry, _published, _clock = registry_on_db
    title = {"fr": "Comptes du personnel", "nl": "Personeelsaccounts", "de": "Konten der Mitarbeitenden",
             "en": "Staff accounts"}[language]
    async with pages_client(registry, person(Role.ADMIN, language=language)) as (client, _acting):
        page = await client.get("/backoffice/admin/users")
    assert page.status_code == 200 and f'<html lang="{language}">' in page.text
    assert title in main_text(page.text) and 'name="csrf_token"' in page.text
    # An administrator does not read files: no register in the navigation.
    assert 'href="/backoffice/register"' not in page.text
