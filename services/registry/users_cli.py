"""`ombudsdesk users ...`: staff accounts of the back office and the JSON API, on the registry's database (the same
settings as the service), for whoever runs the registry:

    ombudsdesk users add EMAIL --role staff [--role dpo] [--service S] [--name N] [--language fr]
    ombudsdesk users list
    ombudsdesk users disable EMAIL
    ombudsdesk users role EMAIL --role supervisor [--role ...]
    ombudsdesk users token EMAIL [--name N]      a personal API token, printed once
    ombudsdesk users link EMAIL                  a new one-time link to set the password

No password is ever typed here: `add` and `link` print a one-time link (valid OMBUDSDESK_ONE_TIME_LINK_HOURS) under
the back office's public address (OMBUDSDESK_BACKOFFICE_PUBLIC_URL), where the person chooses their own.

Every change is recorded in the audit trail as the accounts page records it (`account.create`, `account.disable`,
`account.set_roles`, `account.issue_token`, `account.issue_link`, with the account's id), in the name of the
operating-system account that ran the command (`cli:<login>`, as `ombudsdesk audit export` does): the command line
has no back-office identity. Never a secret: a token or a link is printed once and recorded only as issued. The
change is made first, then recorded (as on the page); should the entry not be written, the command says so and
exits with 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from services.registry.access.accounts import Account, AccountError, AccountStore, identity_policy
from services.registry.access.audit import AuditTrail
from services.registry.access.roles import Role
from services.registry.audit_cli import cli_actor
from services.registry.repository import migrate
from services.registry.settings import RegistrySettings
from services.registry.vocabulary import DEFAULT_LANGUAGE, Language
from shared.cli_help import StaffCommand, one_of, staff_app
from shared.database import create_engine
from shared.logging import get_logger
from shared.settings import load_settings
from shared.untrusted_text import for_terminal

app = staff_app(help="Staff accounts of the back office and the API: add, list, disable, roles, API tokens, links.",
                no_args_is_help=True, add_completion=False)
T = TypeVar("T")
log = get_logger(__name__)

EmailArgument = typer.Argument(..., metavar="EMAIL", help="the account's email address (any case)")
RolesOption = typer.Option(..., "--role", metavar="ROLE", help=f"role, repeatable, {one_of(Role)}")


def _run(action: Callable[[AccountStore, RegistrySettings], Awaitable[T]]) -> T:
    """Open the registry's database (migrating it if new), run one action on its accounts, close it."""

    async def main() -> T:
        settings = load_settings(RegistrySettings)
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            return await action(AccountStore(engine, identity_policy(settings)), settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (AccountError, NotRecorded) as error:
        typer.echo(for_terminal(f"ombudsdesk: {error}"), err=True)
        raise typer.Exit(2 if isinstance(error, AccountError) else 1) from None


class NotRecorded(RuntimeError):
    """The change was made but its audit entry could not be written."""


async def _record(store: AccountStore, action: str, account_id: int, **details: object) -> None:
    """The audit entry of a change made from the command line (no address, no user agent, no secret)."""
    try:
        await AuditTrail(store.engine).append(action, actor=cli_actor(),
                                              details={"via": "cli", "account_id": account_id, **details})
    except Exception as error:
        # The account is changed already (as on the page, the change comes first): say so rather than a traceback.
        log.error("audit.cli_entry_failed", action=action, account_id=account_id, error=type(error).__name__)
        raise NotRecorded(f"account {account_id} changed, but the audit entry {action} could not be written "
                          f"({type(error).__name__}): record it by hand") from error


async def _account(store: AccountStore, email: str) -> Account:
    account = await store.account_by_email(email)
    if account is None:
        raise AccountError(f"no account {email.strip().lower()}")
    return account


def welcome_link(settings: RegistrySettings, secret: str) -> str:
    return f"{settings.backoffice_url()}welcome/{secret}"


async def _link_for(store: AccountStore, settings: RegistrySettings, account_id: int) -> str:
    return welcome_link(settings, await store.issue_one_time_link(account_id, "welcome"))


def _hours(settings: RegistrySettings) -> str:
    return f"{settings.one_time_link_hours} h"


@app.command("add", cls=StaffCommand)
def add(email: str = EmailArgument, roles: list[Role] = RolesOption,
        services: list[str] = typer.Option([], "--service", metavar="SERVICE",
                                           help="a service whose files the account handles, repeatable (none: all)"),
        name: str = typer.Option("", "--name", metavar="NAME", help="display name"),
        language: Language = typer.Option(Language(DEFAULT_LANGUAGE), "--language", metavar="LANG",
                                          help=f"language of the back office, {one_of(Language)}")) -> None:
    """Create an account and print a one-time link where its owner sets their password."""

    async def action(store: AccountStore, settings: RegistrySettings) -> str:
        role_names = [r.value for r in roles]
        account_id = await store.create_account(email, roles=role_names, display_name=name,
                                                services=services, language=language.value)
        link = await _link_for(store, settings, account_id)
        await _record(store, "account.create", account_id, roles=role_names, services=list(services))
        return link

    link = _run(action)
    typer.echo(for_terminal(f"account {email.strip().lower()} created"))
    typer.echo(f"one-time link to set the password (valid {_hours(load_settings(RegistrySettings))}, once):")
    typer.echo(link)


@app.command("list", cls=StaffCommand)
def list_accounts() -> None:
    """One line per account: email, roles, services, language, second factor, single sign-on, state."""
    accounts = _run(lambda store, _settings: store.list_accounts())
    for account in accounts:
        flags = [flag for flag, on in (("totp", account.totp_enabled), ("sso", account.oidc_linked),
                                       ("no-password", not account.has_password)) if on]
        state = f"disabled {account.disabled_at:%Y-%m-%d}" if account.disabled_at else "active"
        typer.echo(for_terminal(
            f"{account.email:<40} {','.join(account.roles):<24} {','.join(account.services) or '*':<20} "
            f"{account.language}  {state:<20} {' '.join(flags)}".rstrip()))
    typer.echo(f"{len(accounts)} account(s)")


@app.command("disable", cls=StaffCommand)
def disable(email: str = EmailArgument) -> None:
    """Disable an account: its sessions end at once, its API tokens and links stop working."""

    async def action(store: AccountStore, _settings: RegistrySettings) -> bool:
        account = await _account(store, email)
        changed = await store.disable(account.id)
        if changed:  # as on the page: disabling a disabled account changes nothing, so records nothing
            await _record(store, "account.disable", account.id)
        return changed

    changed = _run(action)
    typer.echo(for_terminal(f"account {email.strip().lower()} " + ("disabled" if changed else "was disabled already")))


@app.command("role", cls=StaffCommand)
def role(email: str = EmailArgument, roles: list[Role] = RolesOption) -> None:
    """Replace the roles of an account."""

    async def action(store: AccountStore, _settings: RegistrySettings) -> None:
        account = await _account(store, email)
        role_names = [r.value for r in roles]
        await store.set_roles(account.id, role_names)
        await _record(store, "account.set_roles", account.id, roles=role_names)

    _run(action)
    typer.echo(for_terminal(f"account {email.strip().lower()}: roles {', '.join(r.value for r in roles)}"))


@app.command("token", cls=StaffCommand)
def token(email: str = EmailArgument,
          name: str = typer.Option("cli", "--name", metavar="NAME", help="what the token is for")) -> None:
    """Issue a personal API token (Authorization: Bearer TOKEN), printed once: keep it like a password."""

    async def action(store: AccountStore, _settings: RegistrySettings) -> str:
        account = await _account(store, email)
        if not account.active:
            raise AccountError(f"account {account.email} is disabled")
        secret = await store.issue_api_token(account.id, name)
        await _record(store, "account.issue_token", account.id, token_name=name)
        return secret

    typer.echo(_run(action))


@app.command("link", cls=StaffCommand)
def link(email: str = EmailArgument) -> None:
    """Print a new one-time link to set the password (earlier unused links stop working)."""

    async def action(store: AccountStore, settings: RegistrySettings) -> str:
        account = await _account(store, email)
        link = await _link_for(store, settings, account.id)
        await _record(store, "account.issue_link", account.id)
        return link

    typer.echo(_run(action))
