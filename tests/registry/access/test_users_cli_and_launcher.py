"""`ombudsdesk users ...` on the registry's database, its links and tokens used against the real back office and API;
and the first start of `make run`: an administrator with a one-time login link in the banner, once. SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from typer.testing import CliRunner

from ombudsdesk.cli import app
from ombudsdesk.launcher import LocalStackSettings, banner_lines, first_start_link
from services.intake.settings import IntakeSettings
from services.registry.settings import RegistrySettings

LINK = re.compile(r"(https?://\S+/welcome/)([A-Za-z0-9_-]{43})")


async def users(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["users", *args])
    return result.exit_code, result.output


async def test_users_cli(desk, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("OMBUDSDESK_PASSWORD_HASH_MEMORY_KIB", "8192")
    monkeypatch.setenv("OMBUDSDESK_BACKOFFICE_PUBLIC_URL", "https://desk.example.be/backoffice")

    code, output = await users("add", "Anna@Med.be", "--role", "staff", "--role", "dpo", "--service", "pensions",
                               "--name", "Anna P", "--language", "nl")
    assert code == 0, output
    [(base, secret)] = LINK.findall(output)
    assert base == "https://desk.example.be/backoffice/welcome/" and "72 h" in output
    async with desk.client() as browser:
        form = await browser.get(f"/backoffice/welcome/{secret}")
        assert form.status_code == 200 and 'lang="nl"' in form.text
        chosen = "een lange zin als wachtwoord"
        done = await browser.post(f"/backoffice/welcome/{secret}", data={"password": chosen, "confirmation": chosen})
        assert done.status_code == 303

    assert (await users("add", "anna@med.be", "--role", "staff"))[0] == 2  # the email exists, in any case
    assert (await users("add", "boss@med.be", "--role", "boss"))[0] != 0
    assert (await users("add", "not-an-address", "--role", "staff"))[0] == 2

    code, listed = await users("list")
    assert code == 0 and "1 account(s)" in listed
    [line] = [line for line in listed.splitlines() if "anna@med.be" in line]
    assert "staff,dpo" in line and "pensions" in line and " nl " in line and "active" in line

    assert (await users("role", "anna@med.be", "--role", "supervisor"))[0] == 0
    assert [r.value for r in (await desk.accounts.account_by_email("anna@med.be")).roles] == ["supervisor"]

    code, output = await users("token", "anna@med.be", "--name", "tableur")
    token = output.strip().splitlines()[-1]  # (log lines go to standard error, outside the test runner)
    assert code == 0 and token.startswith("odk_") and output.count("odk_") == 1
    async with desk.client(Authorization=f"Bearer {token}") as script:
        assert (await script.get("/complaints")).status_code == 200
        assert (await script.get("/backoffice/account")).status_code == 303  # a token is not a browser session

        code, output = await users("link", "anna@med.be")
        [(_base, relink)] = LINK.findall(output)
        assert code == 0 and relink != secret

        code, output = await users("disable", "ANNA@med.be")
        assert code == 0 and "disabled" in output
        assert (await script.get("/complaints")).status_code == 401
    assert (await users("disable", "anna@med.be"))[1].strip().endswith("was disabled already")
    assert (await users("token", "anna@med.be"))[0] == 2
    assert (await users("token", "nobody@med.be"))[0] == 2
    async with desk.client() as browser:  # the link issued before the account was disabled is dead too
        assert (await browser.get(f"/backoffice/welcome/{relink}")).status_code == 410


async def test_first_start_creates_the_administrator_and_prints_a_login_link_once(desk, database_url, tmp_path):
    registry = RegistrySettings(registry_database_url=database_url, var_dir=tmp_path, registry_api_port=8470,
                                password_hash_memory_kib=8192)
    link = await first_start_link(registry, "admin@localhost")
    assert link is not None and link.startswith("http://127.0.0.1:8470/backoffice/welcome/")
    [admin] = await desk.accounts.list_accounts()
    assert admin.email == "admin@localhost" and "admin" in admin.roles and not admin.has_password
    stack = LocalStackSettings(var_dir=tmp_path)
    intake = IntakeSettings(var_dir=tmp_path)
    lines = banner_lines(intake, registry, stack, Path(tmp_path), "nats://127.0.0.1:14222", link)
    text = "\n".join(lines)
    assert "Back office: http://127.0.0.1:8470/backoffice/" in text and link in text
    assert text.index("Back office") < text.index(link)
    # The API's schema where it is served (the CDN-backed /docs page is not).
    assert "http://127.0.0.1:8470/openapi.json" in text and "8470/docs" not in text

    async with desk.client() as browser:  # the link is a real one: the administrator chooses a password with it
        secret = link.rsplit("/", 1)[1]
        chosen = "a passphrase chosen at first start"
        done = await browser.post(f"/backoffice/welcome/{secret}", data={"password": chosen, "confirmation": chosen})
        assert done.status_code == 303 and (await browser.get("/backoffice/account")).status_code == 200

    assert await first_start_link(registry, "admin@localhost") is None  # later starts: the address only
    later = "\n".join(banner_lines(intake, registry, stack, Path(tmp_path), "nats://127.0.0.1:14222", None))
    assert "Back office: http://127.0.0.1:8470/backoffice/" in later and "/welcome/" not in later
    assert len(await desk.accounts.list_accounts()) == 1
