"""`ombudsdesk users add|role|token|link|disable` record their changes in the audit trail as the accounts page does,
in the name of the operating-system account that ran them (`cli:<login>`), without ever a secret; a refused command
records nothing, and a change whose entry cannot be written says so. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone

from sqlalchemy import delete
from typer.testing import CliRunner

from services.registry.access.accounts import AccountStore
from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.audit_models import AuditHead
from services.registry.repository import migrate
from services.registry.users_cli import app
from shared.database import create_engine
from tests.registry.audit.conftest import tamper
from tests.registry.conftest import Clock

LINK = re.compile(r"https?://\S+/welcome/([A-Za-z0-9_-]{43})")


def on_db(database_url: str, action):
    async def main():
        engine = create_engine(database_url)
        try:
            await migrate(engine)
            return await action(AuditTrail(engine, clock=Clock(datetime(2027, 2, 1, 8, 0, tzinfo=timezone.utc))),
                                AccountStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def entries(database_url: str):
    return on_db(database_url, lambda trail, _store: trail.search(AuditFilter(action="account.*", limit=100)))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_account_changes_are_recorded_without_secrets(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("OMBUDSDESK_BACKOFFICE_PUBLIC_URL", "https://desk.example.be/backoffice")
    monkeypatch.setenv("LOGNAME", "Ops.Clerk")  # what getpass reads first: the operating-system login

    code, output = invoke("add", "Anna@Med.be", "--role", "staff", "--role", "dpo", "--service", "pensions")
    assert code == 0, output
    [first_link] = LINK.findall(output)
    anna = on_db(database_url, lambda _trail, store: store.account_by_email("anna@med.be"))

    assert invoke("role", "anna@med.be", "--role", "supervisor")[0] == 0
    code, output = invoke("token", "ANNA@med.be", "--name", "tableur\n=cmd")
    assert code == 0, output
    token = output.strip().splitlines()[-1]
    assert token.startswith("odk_")
    code, output = invoke("link", "anna@med.be")
    [second_link] = LINK.findall(output)
    assert invoke("disable", "anna@med.be")[0] == 0
    assert invoke("disable", "anna@med.be")[1].strip().endswith("was disabled already")

    # Refused: nothing changed, nothing recorded.
    assert invoke("add", "anna@med.be", "--role", "staff")[0] == 2
    assert invoke("role", "nobody@med.be", "--role", "staff")[0] == 2
    assert invoke("token", "anna@med.be")[0] == 2  # disabled
    assert invoke("disable", "nobody@med.be")[0] == 2
    assert invoke("link", "nobody@med.be")[0] == 2

    recorded = list(reversed(entries(database_url)))
    assert [(entry.action, entry.details) for entry in recorded] == [
        ("account.create", {"via": "cli", "account_id": anna.id, "roles": ["staff", "dpo"], "services": ["pensions"]}),
        ("account.set_roles", {"via": "cli", "account_id": anna.id, "roles": ["supervisor"]}),
        ("account.issue_token", {"via": "cli", "account_id": anna.id, "token_name": "tableur\n=cmd"}),
        ("account.issue_link", {"via": "cli", "account_id": anna.id}),
        ("account.disable", {"via": "cli", "account_id": anna.id}),
    ]
    for entry in recorded:
        assert (entry.actor, entry.account_id, entry.roles, entry.ip, entry.user_agent, entry.number) == (
            "cli:ops.clerk", None, "", None, None, None)
        stored = entry.canonical().decode("utf-8")
        for secret in (token, token.removeprefix("odk_"), first_link, second_link):
            assert secret not in stored
    assert on_db(database_url, lambda trail, _store: trail.verify()).ok


def test_a_change_whose_entry_cannot_be_written_says_so(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    assert invoke("add", "bart@med.be", "--role", "staff")[0] == 0

    async def break_the_head(trail: AuditTrail, _store: AccountStore) -> None:
        await tamper(trail.engine, delete(AuditHead))

    on_db(database_url, break_the_head)
    code, output = invoke("role", "bart@med.be", "--role", "supervisor")
    assert code == 1
    assert "changed, but the audit entry account.set_roles could not be written" in output
    # The change itself was made (and the operator told to record it by hand).
    bart = on_db(database_url, lambda _trail, store: store.account_by_email("bart@med.be"))
    assert [role.value for role in bart.roles] == ["supervisor"]
