"""Helpers of the back-office tests (fixtures: see `tests/backoffice/conftest.py`): register complaints through the
registry's real intake path, log in through the real form, check accessibility with axe-core."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from services.registry import commands
from services.registry.access.roles import Principal, Role
from services.registry.handlers import Registry
from shared.events import MessageReceived, Party

_serial = itertools.count(1)

# axe-core impacts that fail a page (issue 13: "no serious violation"); minor and moderate ones are not listed.
FAILING_IMPACTS = frozenset({"serious", "critical"})
SYSTEM = "tests"  # the actor of the set-up commands


async def file(registry: Registry, *, name: str = "Jeanne Dupont", email: str | None = None,
               subject: str = "Plainte: facture incorrecte", text: str = "Madame, Monsieur, je conteste la facture.",
               at: datetime = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc), verdict: str = "unverified",
               kind: str | None = None, service: str | None = None, theme: str | None = None,
               handler: str | None = None, channel: str = "email", data_protection: bool = False) -> str:
    """Register a complaint as intake hands it over (a `MessageReceived`: numbering, screening, deadlines), then
    classify and assign it as staff would; returns its number."""
    serial = next(_serial)
    received = MessageReceived(
        message_key=f"backoffice-{serial}-{at.timestamp():.0f}", received_at=at, channel=channel,
        sender=Party(name=name, email=email or f"citizen{serial}@example.org"),
        recipients=("plaintes@ombudsdesk.localhost",), subject_line=subject, text=text,
        message_id=f"<backoffice{serial}@mail.example.org>", sender_verdict=verdict,
        sender_evidence="dmarc=pass header.from=example.org" if verdict == "verified" else "",
    )
    outcome = await registry.handle(received)
    assert outcome.action == "registered" and outcome.number, outcome
    if kind or service or theme or data_protection:
        await registry.handle(commands.Classify(outcome.number, SYSTEM, kind=kind, service=service, theme=theme,
                                                data_protection=True if data_protection else None))
    if handler:
        await registry.handle(commands.Assign(outcome.number, handler, SYSTEM))
    return outcome.number


def principal(email: str = "agent@ombudsdesk.example", *roles: Role, account_id: int = 1,
              services: Iterable[str] = (), language: str = "fr", name: str = "") -> Principal:
    return Principal(account_id=account_id, email=email, roles=frozenset(roles or (Role.STAFF,)),
                     display_name=name, services=tuple(services), language=language)


_ROW_NUMBER = re.compile(r'<tr data-row[^>]*>.*?<a href="/backoffice/files/([^"]+)"', re.S)


def listed(html: str) -> list[str]:
    """The case numbers of the register's rows, in their order, as the page shows them."""
    return _ROW_NUMBER.findall(html)


# --- the browser ----------------------------------------------------------------------------------------------------
def login(page: Any, live: Any, email: str, password: str) -> None:
    """Log in through the real login form, and wait until it has let us in."""
    page.goto(live.url("/backoffice/login"))
    page.locator('input[name="email"]').fill(email)
    page.locator('input[name="password"]').fill(password)
    with page.expect_navigation():
        page.locator('form:has(input[name="password"]) [type="submit"]').click()
    assert "/backoffice/login" not in page.url, f"login refused for {email}: {page.url}"


PASSWORD = "correct horse battery staple 13"


def sign_in(page: Any, live: Any, *, email: str = "agent@ombudsdesk.example", roles: Iterable[Role] = (Role.STAFF,),
            services: Iterable[str] = (), name: str = "", language: str = "fr") -> Principal:
    """Create the account (`app.state.accounts`) and log in through the real login form; the `Principal` it is."""
    accounts = live.app.state.accounts
    account_id = live.run(accounts.create_account(email, roles=tuple(roles), display_name=name,
                                                  services=tuple(services), language=language, password=PASSWORD))
    login(page, live, email, PASSWORD)
    return principal(email, *roles, account_id=account_id, services=services, name=name, language=language)


def assert_accessible(page: Any, context: Any = None) -> None:
    """axe-core on the page as it is now: fails on any serious or critical violation, listing each with where."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context)
    failing = [v for v in results.response["violations"] if v.get("impact") in FAILING_IMPACTS]
    lines = [f"- {v['id']} ({v['impact']}): {v['help']} -- "
             + "; ".join(" ".join(map(str, node.get("target", []))) for node in v.get("nodes", [])[:5])
             for v in failing]
    assert not failing, f"accessibility violations on {page.url}:\n" + "\n".join(lines)
