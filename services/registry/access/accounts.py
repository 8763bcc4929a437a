"""Staff accounts and what proves who someone is: server-side sessions, personal API tokens, one-time links, login
throttling. The tables (migration `0008_staff_identity`) and `AccountStore`, the one adapter over them.

- `staff_accounts`: email (unique, stored lower-case), roles, services, language, display name, Argon2id password
  hash, optional TOTP secret, the OpenID Connect (issuer, subject) it is linked to, `disabled_at`;
- `staff_sessions`: a login; the cookie holds a random secret, the row only its SHA-256; it ends after
  `session_idle` without use, `session_absolute` after the login, or when revoked (logout, disable, password change);
- `api_tokens`: personal tokens for scripts (`Authorization: Bearer ...`), named, revocable, with their last use;
- `one_time_links`: "set your password" / first-login links, single use, expiring;
- `login_failures`: failed logins per account and per IP address, counted in the database so that every process
  throttles alike (`throttling.retry_after`). Each attempt is written as a failure *before* its password or code is
  checked, and the count that decides includes it: thirty guesses sent at once are throttled like thirty sent one
  after the other (a check-then-record would let them all through the check first). A success deletes it.
  A code of the second factor typed anywhere (login, one-time link, replacing or turning off the factor) is
  such an attempt too, so the six digits cannot be guessed faster there.

Nothing here logs an email address or a secret: structlog lines carry account ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from services.registry.access import totp
from services.registry.access.passwords import Passwords
from services.registry.access.roles import Principal, Role
from services.registry.access.throttling import retry_after
from services.registry.access.tokens import csrf_for, digest, new_api_token, new_secret
from services.registry.models import Base
from services.registry.vocabulary import DEFAULT_LANGUAGE, LANGUAGES
from shared.database import read_only

if TYPE_CHECKING:
    from services.registry.settings import RegistrySettings

log = structlog.get_logger(__name__)

# A session's or token's "last used" is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=60)
PURPOSES = ("welcome",)
# The roles a file can be assigned to (an admin manages accounts but does not handle files).
FILE_HANDLING_ROLES = frozenset({Role.STAFF, Role.DPO, Role.SUPERVISOR})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StaffAccount(Base):
    __tablename__ = "staff_accounts"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_staff_accounts_oidc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-case: unique whatever the case typed
    display_name: Mapped[str] = mapped_column(Text, default="")
    roles: Mapped[list[Any]] = mapped_column(JSON)
    services: Mapped[list[Any]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8), default=DEFAULT_LANGUAGE)
    password_hash: Mapped[str | None] = mapped_column(Text)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_pending: Mapped[str | None] = mapped_column(String(64))  # being set up, not yet confirmed by a code
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class OneTimeLink(Base):
    __tablename__ = "one_time_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginFailure(Base):
    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_key: Mapped[str] = mapped_column(String(320), index=True)  # the email typed, lower-case
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    throttled: Mapped[bool] = mapped_column(Boolean, default=False)  # refused unheard: recorded, not counted


@dataclass(frozen=True)
class IdentityPolicy:
    """The lifetimes and limits of staff identity (settings `OMBUDSDESK_SESSION_*`, `_LOGIN_*`, ...)."""

    session_idle: timedelta = timedelta(minutes=120)
    session_absolute: timedelta = timedelta(hours=12)
    link_lifetime: timedelta = timedelta(hours=72)
    max_failures_per_account: int = 5
    max_failures_per_ip: int = 20
    failure_window: timedelta = timedelta(minutes=15)
    passwords: Passwords = field(default_factory=Passwords)


def identity_policy(settings: RegistrySettings) -> IdentityPolicy:
    return IdentityPolicy(
        session_idle=timedelta(minutes=settings.session_idle_minutes),
        session_absolute=timedelta(hours=settings.session_absolute_hours),
        link_lifetime=timedelta(hours=settings.one_time_link_hours),
        max_failures_per_account=settings.login_max_failures_per_account,
        max_failures_per_ip=settings.login_max_failures_per_ip,
        failure_window=timedelta(minutes=settings.login_failure_window_minutes),
        passwords=Passwords(time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib,
                            concurrency=settings.password_hash_concurrency),
    )


class AccountError(ValueError):
    """A change the account table refuses (an email taken, an unknown role or language...)."""


@dataclass(frozen=True)
class Account:
    """An account as the rest of the registry sees it (never its secrets)."""

    id: int
    email: str
    display_name: str
    roles: tuple[Role, ...]
    services: tuple[str, ...]
    language: str
    has_password: bool
    totp_enabled: bool
    oidc_linked: bool
    disabled_at: datetime | None
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def principal(self, via: Literal["session", "token"] = "session", session_id: int | None = None) -> Principal:
        return Principal(account_id=self.id, email=self.email, roles=frozenset(self.roles),
                         display_name=self.display_name, services=self.services, language=self.language, via=via,
                         session_id=session_id)


@dataclass(frozen=True)
class SessionIdentity:
    principal: Principal
    csrf_token: str


@dataclass(frozen=True)
class LoginOutcome:
    result: Literal["ok", "invalid", "code_required", "throttled"]
    account_id: int | None = None
    retry_after: int = 0


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _roles(values: Iterable[str]) -> list[str]:
    roles = []
    for value in values:
        try:
            role = Role(str(value).strip().lower())
        except ValueError:
            raise AccountError(f"unknown role {value!r} (one of: {', '.join(r.value for r in Role)})") from None
        if role.value not in roles:
            roles.append(role.value)
    if not roles:
        raise AccountError("an account needs at least one role")
    return roles


def _language(value: str) -> str:
    if value not in LANGUAGES:
        raise AccountError(f"unknown language {value!r} (one of: {', '.join(LANGUAGES)})")
    return value


def _view(row: StaffAccount) -> Account:
    return Account(
        id=row.id, email=row.email, display_name=row.display_name or "",
        roles=tuple(Role(r) for r in row.roles or () if r in Role._value2member_map_),
        services=tuple(str(s) for s in row.services or ()), language=row.language or DEFAULT_LANGUAGE,
        has_password=row.password_hash is not None, totp_enabled=row.totp_secret is not None,
        oidc_linked=row.oidc_subject is not None, disabled_at=row.disabled_at, created_at=row.created_at)


class AccountStore:
    """Accounts, sessions, tokens, one-time links and login failures on the registry's database."""

    def __init__(self, engine: AsyncEngine, policy: IdentityPolicy | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.policy = policy or IdentityPolicy()
        self.clock = clock
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Every request looks its session or token up: on SQLite that must not take the write lock (WAL snapshot).
        self._reads = async_sessionmaker(read_only(engine), expire_on_commit=False)

    def _begin(self) -> Any:
        return self._sessions.begin()

    def _read(self) -> Any:
        return self._reads.begin()

    # --- accounts ----------------------------------------------------------------------------------------------
    async def create_account(self, email: str, *, roles: Iterable[str], display_name: str = "",
                             services: Iterable[str] = (), language: str = DEFAULT_LANGUAGE,
                             password: str | None = None) -> int:
        address = normalise_email(email)
        if "@" not in address or len(address) > 320 or any(c.isspace() for c in address):
            raise AccountError(f"not an email address: {email!r}")
        row = StaffAccount(email=address, display_name=display_name.strip(), roles=_roles(roles),
                           services=[s.strip() for s in services if s.strip()], language=_language(language),
                           password_hash=await self.policy.passwords.hash_async(password) if password else None,
                           created_at=self.clock())
        try:
            async with self._begin() as session:
                session.add(row)
                await session.flush()
                account_id = row.id
        except IntegrityError:
            raise AccountError(f"an account with the email {address} exists already") from None
        log.info("account.created", account_id=account_id, roles=row.roles)
        return account_id

    async def count_accounts(self) -> int:
        async with self._begin() as session:
            return int((await session.execute(select(func.count()).select_from(StaffAccount))).scalar_one())

    async def _row(self, session: AsyncSession, account: int | str) -> StaffAccount | None:
        if isinstance(account, int):
            return await session.get(StaffAccount, account)
        return (await session.execute(
            select(StaffAccount).where(StaffAccount.email == normalise_email(account)))).scalar_one_or_none()

    async def _existing(self, session: AsyncSession, account: int | str) -> StaffAccount:
        row = await self._row(session, account)
        if row is None:
            raise AccountError(f"no account {account}")
        return row

    async def account(self, account: int | str) -> Account | None:
        async with self._begin() as session:
            row = await self._row(session, account)
            return _view(row) if row is not None else None

    async def account_by_email(self, email: str) -> Account | None:
        return await self.account(normalise_email(email))

    async def assignable(self, email: str) -> bool:
        """Whether a file may be handed to `email`: an active account having a role that handles files (staff, dpo
        or supervisor). Deadline digests and reminders go to the handler's address, so anything else (an outside
        address, a disabled or admin-only account) is refused."""
        account = await self.account_by_email(email) if email and email.strip() else None
        return account is not None and account.active and any(role in FILE_HANDLING_ROLES for role in account.roles)

    async def list_accounts(self) -> list[Account]:
        async with self._begin() as session:
            rows = (await session.execute(select(StaffAccount).order_by(StaffAccount.email))).scalars()
            return [_view(row) for row in rows]

    async def set_roles(self, account: int | str, roles: Iterable[str]) -> None:
        new_roles = _roles(roles)
        async with self._begin() as session:
            (await self._existing(session, account)).roles = new_roles

    async def set_services(self, account: int | str, services: Iterable[str]) -> None:
        async with self._begin() as session:
            (await self._existing(session, account)).services = [s.strip() for s in services if s.strip()]

    async def set_language(self, account: int | str, language: str) -> None:
        checked = _language(language)
        async with self._begin() as session:
            (await self._existing(session, account)).language = checked

    async def disable(self, account: int | str) -> bool:
        """Disable the account and end its sessions and links at once; False when it was disabled already."""
        now = self.clock()
        async with self._begin() as session:
            row = await self._existing(session, account)
            if row.disabled_at is not None:
                return False
            row.disabled_at = now
            await self._revoke_sessions(session, row.id, now)
            await session.execute(update(OneTimeLink).where(OneTimeLink.account_id == row.id,
                                                            OneTimeLink.used_at.is_(None)).values(used_at=now))
        log.info("account.disabled", account_id=row.id)
        return True

    async def enable(self, account: int | str) -> None:
        async with self._begin() as session:
            (await self._existing(session, account)).disabled_at = None

    # --- passwords and login -------------------------------------------------------------------------------------
    async def set_password(self, account: int | str, password: str) -> None:
        """Store a new password and end every session of the account (the caller opens a new one if it must)."""
        hashed = await self.policy.passwords.hash_async(password)
        async with self._begin() as session:
            row = await self._existing(session, account)
            row.password_hash = hashed
            await self._revoke_sessions(session, row.id, self.clock())
        log.info("account.password_changed", account_id=row.id)

    async def check_password(self, account_id: int, password: str) -> bool:
        async with self._begin() as session:
            row = await self._existing(session, account_id)
            stored = row.password_hash
        return (await self.policy.passwords.verify_async(stored, password)).valid

    async def login(self, email: str, password: str, *, code: str = "", ip: str = "") -> LoginOutcome:
        """Check a login form: throttled, wrong (a failure is recorded), a second factor missing, or accepted.
        `account_id` is set whenever the email is an account's (for the audit trail; never shown to the person)."""
        key, now = normalise_email(email)[:320], self.clock()
        ip = ip[:64]
        wait = await self._attempt(key, ip, now)
        if wait is not None:
            return LoginOutcome("throttled", retry_after=wait)
        async with self._read() as session:
            row = await self._row(session, key)
            stored = row.password_hash if row is not None and row.disabled_at is None else None
        # An unknown account costs one verification too (against a decoy): its answer comes no sooner.
        verdict = await self.policy.passwords.verify_async(stored, password)
        known = row.id if row is not None else None
        if not verdict.valid or row is None:
            log.info("login.failed")
            return LoginOutcome("invalid", account_id=known)
        step = None
        if row.totp_secret is not None:
            if not code.strip():
                # The password was right: the form asks for the code. Still counted, so that the password cannot
                # be confirmed this way more often than guessed.
                return LoginOutcome("code_required", account_id=known)
            step = totp.accepted_step(row.totp_secret, code, now, row.totp_last_step)
            if step is None:
                log.info("login.failed")
                return LoginOutcome("invalid", account_id=known)
        async with self._begin() as session:
            current = await self._existing(session, row.id)
            if verdict.needs_rehash:
                current.password_hash = await self.policy.passwords.hash_async(password)
            if step is not None:
                if current.totp_last_step is not None and step <= current.totp_last_step:
                    return LoginOutcome("invalid", account_id=known)  # the same code used a moment ago
                current.totp_last_step = step
            await self._forget_failures(session, key)
        log.info("login.accepted", account_id=row.id, rehashed=verdict.needs_rehash)
        return LoginOutcome("ok", account_id=row.id)

    async def _attempt(self, key: str, ip: str, now: datetime) -> int | None:
        """Record an attempt (as a failure until it succeeds) and say whether it is throttled: the seconds to wait,
        or None when it may be checked. The row is committed before counting, so that of any number of concurrent
        attempts at most the limit are heard: the (limit+1)-th to commit counts the limit committed before it."""
        attempt = LoginFailure(account_key=key, ip=ip, at=now)
        async with self._begin() as session:
            session.add(attempt)
            # Rows older than a day tell nothing any more: each attempt sweeps them, no separate job needed.
            await session.execute(delete(LoginFailure).where(LoginFailure.at < now - max(
                timedelta(days=1), self.policy.failure_window)))
            await session.flush()
            attempt_id = attempt.id
        since = now - self.policy.failure_window
        counted = (LoginFailure.at > since, LoginFailure.throttled.is_(False), LoginFailure.id != attempt_id)
        async with self._read() as session:
            by_account = (await session.execute(select(LoginFailure.at).where(
                LoginFailure.account_key == key, *counted))).scalars().all()
            by_ip = (await session.execute(select(LoginFailure.at).where(
                LoginFailure.ip == ip, *counted))).scalars().all() if ip else []
        waits = [w for w in (
            retry_after(by_account, limit=self.policy.max_failures_per_account, window=self.policy.failure_window,
                        now=now),
            retry_after(by_ip, limit=self.policy.max_failures_per_ip, window=self.policy.failure_window, now=now),
        ) if w is not None]
        if not waits:
            return None
        async with self._begin() as session:
            # Refused unheard: kept (it was tried) but not counted, so that a flood does not push the end further.
            await session.execute(update(LoginFailure).where(LoginFailure.id == attempt_id).values(throttled=True))
        log.warning("login.throttled", retry_after=max(waits))
        return max(waits)

    @staticmethod
    async def _forget_failures(session: AsyncSession, key: str) -> None:
        await session.execute(delete(LoginFailure).where(LoginFailure.account_key == key))

    # --- sessions ------------------------------------------------------------------------------------------------
    async def issue_session(self, account_id: int, *, ip: str = "", user_agent: str = "") -> str:
        """Open a session; returns the cookie value (only its digest is stored)."""
        secret, now = new_secret(), self.clock()
        async with self._begin() as session:
            row = await self._existing(session, account_id)
            if row.disabled_at is not None:
                raise AccountError(f"account {account_id} is disabled")
            session.add(StaffSession(account_id=account_id, token_hash=digest(secret), ip=ip[:64],
                                     user_agent=user_agent[:300], created_at=now, last_seen_at=now,
                                     expires_at=now + self.policy.session_absolute))
        return secret

    async def session_identity(self, secret: str) -> SessionIdentity | None:
        """Who a session cookie belongs to, or None when it is unknown, revoked, expired, idle too long, or its
        account disabled."""
        now = self.clock()
        async with self._read() as session:
            found = (await session.execute(
                select(StaffSession, StaffAccount).join(StaffAccount, StaffAccount.id == StaffSession.account_id)
                .where(StaffSession.token_hash == digest(secret)))).one_or_none()
        if found is None:
            return None
        row, account = found
        if (row.revoked_at is not None or account.disabled_at is not None or row.expires_at <= now
                or now - row.last_seen_at >= self.policy.session_idle):
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            async with self._begin() as session:
                await session.execute(update(StaffSession).where(StaffSession.id == row.id)
                                      .values(last_seen_at=now))
        return SessionIdentity(_view(account).principal("session", row.id), csrf_for(secret))

    async def revoke_session(self, session_id: int) -> None:
        async with self._begin() as session:
            await session.execute(update(StaffSession).where(StaffSession.id == session_id,
                                                             StaffSession.revoked_at.is_(None))
                                  .values(revoked_at=self.clock()))

    async def revoke_sessions(self, account: int | str) -> None:
        async with self._begin() as session:
            row = await self._existing(session, account)
            await self._revoke_sessions(session, row.id, self.clock())

    @staticmethod
    async def _revoke_sessions(session: AsyncSession, account_id: int, now: datetime) -> None:
        await session.execute(update(StaffSession).where(StaffSession.account_id == account_id,
                                                         StaffSession.revoked_at.is_(None)).values(revoked_at=now))

    # --- personal API tokens -------------------------------------------------------------------------------------
    async def issue_api_token(self, account_id: int, name: str) -> str:
        """A new personal token (shown once: only its digest is stored)."""
        name = " ".join(name.split())[:100] or "token"
        secret = new_api_token()
        async with self._begin() as session:
            await self._existing(session, account_id)
            session.add(ApiToken(account_id=account_id, name=name, token_hash=digest(secret),
                                 created_at=self.clock()))
        log.info("api_token.issued", account_id=account_id)
        return secret

    async def token_principal(self, secret: str) -> Principal | None:
        now = self.clock()
        async with self._read() as session:
            found = (await session.execute(
                select(ApiToken, StaffAccount).join(StaffAccount, StaffAccount.id == ApiToken.account_id)
                .where(ApiToken.token_hash == digest(secret)))).one_or_none()
        if found is None:
            return None
        token, account = found
        if token.revoked_at is not None or account.disabled_at is not None:
            return None
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            async with self._begin() as session:
                await session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        return _view(account).principal("token")

    async def api_tokens(self, account_id: int) -> list[TokenInfo]:
        async with self._begin() as session:
            rows = (await session.execute(select(ApiToken).where(ApiToken.account_id == account_id)
                                          .order_by(ApiToken.id))).scalars()
            return [TokenInfo(r.id, r.name, r.created_at, r.last_used_at, r.revoked_at) for r in rows]

    async def revoke_api_token(self, account_id: int, token_id: int) -> bool:
        """Revoke one of the account's own tokens; False when there is no such live token of theirs."""
        async with self._begin() as session:
            result = await session.execute(update(ApiToken).where(
                ApiToken.id == token_id, ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=self.clock()))
            return bool(result.rowcount)

    # --- one-time links ------------------------------------------------------------------------------------------
    async def issue_one_time_link(self, account_id: int, purpose: str = "welcome") -> str:
        """The secret part of a one-time link (`/backoffice/welcome/<secret>`); earlier unused links of the same
        purpose stop working."""
        if purpose not in PURPOSES:
            raise AccountError(f"unknown link purpose {purpose!r}")
        secret, now = new_secret(), self.clock()
        async with self._begin() as session:
            row = await self._existing(session, account_id)
            if row.disabled_at is not None:
                raise AccountError(f"account {row.email} is disabled")
            await session.execute(update(OneTimeLink).where(
                OneTimeLink.account_id == account_id, OneTimeLink.purpose == purpose,
                OneTimeLink.used_at.is_(None)).values(used_at=now))
            session.add(OneTimeLink(account_id=account_id, purpose=purpose, token_hash=digest(secret),
                                    created_at=now, expires_at=now + self.policy.link_lifetime))
        return secret

    async def link_account(self, secret: str, purpose: str = "welcome") -> Account | None:
        """The account a link is for, while it is unused and unexpired (and the account enabled)."""
        now = self.clock()
        async with self._begin() as session:
            found = (await session.execute(
                select(OneTimeLink, StaffAccount).join(StaffAccount, StaffAccount.id == OneTimeLink.account_id)
                .where(OneTimeLink.token_hash == digest(secret), OneTimeLink.purpose == purpose))).one_or_none()
            if found is None:
                return None
            link, account = found
            if link.used_at is not None or link.expires_at <= now or account.disabled_at is not None:
                return None
            return _view(account)

    async def use_link_to_set_password(self, secret: str, password: str, purpose: str = "welcome", *,
                                       code: str = "", ip: str = "") -> LoginOutcome | None:
        """Use a link once: set the account's password. None when the link is not (any more) valid; else an outcome
        as a login's: for an account whose second factor is on, the link alone is not enough — a current code is
        asked (`code_required`), checked and throttled like a login's (`invalid`, `throttled`), and the link stays
        usable until it is given. Two concurrent uses: one wins (the conditional update is atomic)."""
        now = self.clock()
        account = await self.link_account(secret, purpose)
        if account is None:
            return None
        step = None
        if account.totp_enabled:
            if not code.strip():
                return LoginOutcome("code_required", account_id=account.id)
            wait = await self._attempt(account.email, ip[:64], now)
            if wait is not None:
                return LoginOutcome("throttled", account_id=account.id, retry_after=wait)
            async with self._read() as session:
                row = await self._existing(session, account.id)
                factor, last_step = row.totp_secret, row.totp_last_step
            step = totp.accepted_step(factor, code, now, last_step) if factor is not None else None
            if step is None:
                log.info("link.code_refused", account_id=account.id)
                return LoginOutcome("invalid", account_id=account.id)
        hashed = await self.policy.passwords.hash_async(password)
        async with self._begin() as session:
            link = (await session.execute(select(OneTimeLink).where(
                OneTimeLink.token_hash == digest(secret), OneTimeLink.purpose == purpose))).scalar_one_or_none()
            if link is None:
                return None
            row = await session.get(StaffAccount, link.account_id)
            if row is None or row.disabled_at is not None:
                return None
            if step is not None and row.totp_last_step is not None and step <= row.totp_last_step:
                return LoginOutcome("invalid", account_id=row.id)  # the code was used a moment ago
            used = await session.execute(update(OneTimeLink).where(
                OneTimeLink.id == link.id, OneTimeLink.used_at.is_(None), OneTimeLink.expires_at > now)
                .values(used_at=now))
            if not used.rowcount:
                return None
            if step is not None:
                row.totp_last_step = step
                await self._forget_failures(session, row.email)
            row.password_hash = hashed
            await self._revoke_sessions(session, row.id, now)
        log.info("account.link_used", account_id=link.account_id)
        return LoginOutcome("ok", account_id=link.account_id)

    # --- second factor -------------------------------------------------------------------------------------------
    async def start_totp(self, account_id: int) -> str:
        """A new secret to confirm with a code (`confirm_totp`); the second factor is not on until then."""
        secret = totp.new_secret()
        async with self._begin() as session:
            (await self._existing(session, account_id)).totp_pending = secret
        return secret

    async def pending_totp(self, account_id: int) -> str | None:
        async with self._begin() as session:
            return (await self._existing(session, account_id)).totp_pending

    async def confirm_totp(self, account_id: int, code: str, current_code: str = "", *, ip: str = "") -> bool:
        """Turn the pending secret into the second factor, proven by a code of it. When a factor is on already (its
        replacement), a current code of *that* one is needed too: a session alone (a borrowed browser) must not be
        able to put its own authenticator in the phone's place. The codes of the factor in place are throttled like
        a login's."""
        async with self._read() as session:
            row = await self._existing(session, account_id)
            email, active, pending = row.email, row.totp_secret, row.totp_pending
        if pending is None:
            return False
        if active is not None:
            if not current_code.strip():
                return False
            if await self._attempt(email, ip[:64], self.clock()) is not None:
                return False
        now = self.clock()
        async with self._begin() as session:
            row = await self._existing(session, account_id)
            if row.totp_pending != pending or row.totp_secret != active:
                return False  # changed meanwhile by another request: start again
            if active is not None:
                if totp.accepted_step(active, current_code, now, row.totp_last_step) is None:
                    return False
                await self._forget_failures(session, email)
            step = totp.accepted_step(pending, code, now, None)
            if step is None:
                return False
            row.totp_secret, row.totp_pending, row.totp_last_step = pending, None, step
        log.info("account.totp_enabled", account_id=account_id, replaced=active is not None)
        return True

    async def disable_totp(self, account_id: int, code: str, *, ip: str = "") -> bool:
        """Turn the second factor off, proven by a current code (throttled like a login's)."""
        async with self._read() as session:
            row = await self._existing(session, account_id)
            email, active = row.email, row.totp_secret
        if active is None or await self._attempt(email, ip[:64], self.clock()) is not None:
            return False
        async with self._begin() as session:
            row = await self._existing(session, account_id)
            if row.totp_secret != active:
                return False
            step = totp.accepted_step(row.totp_secret, code, self.clock(), row.totp_last_step)
            if step is None:
                return False
            row.totp_secret = row.totp_pending = row.totp_last_step = None
            await self._forget_failures(session, email)
        log.info("account.totp_disabled", account_id=account_id)
        return True

    # --- single sign-on ------------------------------------------------------------------------------------------
    async def account_for_sso(self, issuer: str, subject: str, email: str | None, email_verified: bool
                              ) -> Account | None:
        """The enabled account an OpenID Connect identity logs into, or None: by (issuer, subject) once linked;
        on a first login by a verified email, linking it then. No account is ever created here."""
        async with self._begin() as session:
            linked = (await session.execute(select(StaffAccount).where(
                StaffAccount.oidc_issuer == issuer, StaffAccount.oidc_subject == subject))).scalar_one_or_none()
            if linked is None:
                if not email or not email_verified:
                    return None
                candidate = await self._row(session, normalise_email(email))
                if candidate is None or candidate.oidc_subject is not None:
                    return None  # unknown, or already linked to another identity
                candidate.oidc_issuer, candidate.oidc_subject = issuer, subject
                linked = candidate
                log.info("account.sso_linked", account_id=candidate.id)
            if linked.disabled_at is not None:
                return None
            return _view(linked)


def roles_of(values: Sequence[str]) -> tuple[Role, ...]:
    """Roles as typed by an administrator (validated, duplicates dropped)."""
    return tuple(Role(r) for r in _roles(values))
