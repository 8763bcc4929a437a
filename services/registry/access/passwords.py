"""Staff passwords: Argon2id hashes (`argon2-cffi`), the rules a new password must meet (pure, no I/O).

A hash records its own parameters, so raising the cost (`OMBUDSDESK_PASSWORD_HASH_*`) takes effect for each person
at their next successful login (`Passwords.verify` says when the stored hash should be replaced).

An Argon2id hash takes tens of milliseconds of CPU and 64 MiB: the server computes it in a worker thread
(`hash_async`, `verify_async`) so that it never stalls every other request, and at most `concurrency` at a time
(`OMBUDSDESK_PASSWORD_HASH_CONCURRENCY`), so that a flood of logins cannot take every thread nor the memory.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
# Beyond this, a "password" is an attempt to make hashing expensive, not a password.
MAX_LENGTH = 1024


@dataclass(frozen=True)
class Verdict:
    valid: bool
    needs_rehash: bool = False


T = TypeVar("T")


class HashingGate:
    """Runs a function in a worker thread, at most `limit` at a time (the others wait their turn)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def _gate(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; a CLI or a test suite may run several one after the other.
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.limit)
        return self._semaphore

    async def run(self, function: Callable[..., T], *args: object) -> T:
        async with self._gate():
            return await asyncio.to_thread(function, *args)


@dataclass(frozen=True)
class Passwords:
    """Argon2id with the configured cost; `parallelism` stays at argon2-cffi's default (RFC 9106)."""

    time_cost: int = 3
    memory_kib: int = 65536
    concurrency: int = 2
    _hasher: PasswordHasher = field(init=False, repr=False, compare=False)
    _decoy: str = field(init=False, repr=False, compare=False)
    _gate: HashingGate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hasher = PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib, type=Type.ID)
        object.__setattr__(self, "_hasher", hasher)
        # A hash, with the same cost, of a secret nobody knows: verified against when there is no stored hash.
        object.__setattr__(self, "_decoy", hasher.hash(secrets.token_urlsafe(16)))
        object.__setattr__(self, "_gate", HashingGate(self.concurrency))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> Verdict:
        """Whether `password` matches; a missing hash still costs one verification, so that answering for an account
        without a password (or without an account) takes as long as for one with."""
        if len(password) > MAX_LENGTH:
            return Verdict(False)
        try:
            self._hasher.verify(stored or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verdict(False)
        if stored is None:
            return Verdict(False)
        return Verdict(True, needs_rehash=self._hasher.check_needs_rehash(stored))

    async def hash_async(self, password: str) -> str:
        """`hash`, off the event loop."""
        return await self._gate.run(self.hash, password)

    async def verify_async(self, stored: str | None, password: str) -> Verdict:
        """`verify`, off the event loop."""
        if len(password) > MAX_LENGTH:
            return Verdict(False)  # refused unhashed: no thread for it
        return await self._gate.run(self.verify, stored, password)

    def decoy(self, password: str) -> None:
        """Spend the time of one verification (an unknown account must not answer faster than a known one)."""
        self.verify(None, password)


def password_problem(password: str, email: str, confirmation: str | None = None) -> str | None:
    """Why a new password is refused (a message key of `messages/account.toml`), or None when it is acceptable."""
    if confirmation is not None and password != confirmation:
        return "account.password.mismatch"
    if len(password) < MIN_LENGTH:
        return "account.password.too_short"
    if len(password) > MAX_LENGTH:
        return "account.password.too_long"
    lowered = password.casefold()
    local_part = email.split("@", 1)[0].casefold()
    if email.casefold() in lowered or (len(local_part) >= 4 and local_part in lowered) or lowered in email.casefold():
        return "account.password.contains_email"
    if len(set(password)) < 4:
        return "account.password.too_simple"
    return None
