"""A registry API and back office on a real database (SQLite and PostgreSQL) with its account store, on a settable
clock, with cheap Argon2 parameters (the cost itself is tested in test_passwords.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from services.registry.access.accounts import AccountStore, IdentityPolicy
from services.registry.access.passwords import Passwords
from services.registry.api import create_api
from services.registry.settings import RegistrySettings
from tests.registry.conftest import Clock

CHEAP = Passwords(time_cost=1, memory_kib=8192)
POLICY = IdentityPolicy(session_idle=timedelta(minutes=30), session_absolute=timedelta(hours=8),
                        link_lifetime=timedelta(hours=1), max_failures_per_account=3, max_failures_per_ip=6,
                        failure_window=timedelta(minutes=15), passwords=CHEAP)
PASSWORD = "correct horse battery staple"


@dataclass
class Desk:
    registry: Any
    app: Any
    accounts: AccountStore
    clock: Clock  # the account store's (sessions, links, throttling)
    published: Any
    registry_clock: Clock  # the register's (complaints received)

    def client(self, **headers: str) -> httpx.AsyncClient:
        """An anonymous browser-like client (no session yet)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://localhost",
                                 headers=headers)

    async def account(self, email: str = "agent@med.be", *, roles: tuple[str, ...] = ("staff",),
                      password: str | None = PASSWORD, **fields: Any) -> int:
        return await self.accounts.create_account(email, roles=roles, password=password, **fields)


def build_desk(registry: Any, published: Any, registry_clock: Clock,
               settings: RegistrySettings | None = None) -> Desk:
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0))
    accounts = AccountStore(registry.store.engine, POLICY, clock=clock)
    app = create_api(registry, settings, accounts=accounts)
    return Desk(registry, app, accounts, clock, published, registry_clock)


@pytest.fixture
async def desk(registry_on_db) -> AsyncIterator[Desk]:
    registry, published, registry_clock = registry_on_db
    yield build_desk(registry, published, registry_clock)
