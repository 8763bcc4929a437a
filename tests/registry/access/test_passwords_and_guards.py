"""Pure parts of staff identity: Argon2id hashes and their rehash when the cost changes, the password rules, the
throttling arithmetic, TOTP steps, the Host / Origin / next checks against hostile input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from services.registry.access import totp
from services.registry.access.accounts import AccountStore, IdentityPolicy, StaffAccount
from services.registry.access.guards import cross_site_reason, host_name, safe_next
from services.registry.access.passwords import Passwords, password_problem
from services.registry.access.throttling import retry_after
from tests.registry.access.conftest import PASSWORD

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=timezone.utc)


def test_hashes_are_argon2id_salted_and_verified():
    passwords = Passwords(time_cost=2, memory_kib=16384)
    first, second = passwords.hash(PASSWORD), passwords.hash(PASSWORD)
    assert first.startswith("$argon2id$v=19$m=16384,t=2,") and first != second  # a salt of its own each time
    assert passwords.verify(first, PASSWORD).valid and not passwords.verify(first, PASSWORD).needs_rehash
    assert not passwords.verify(first, PASSWORD + " ").valid
    assert not passwords.verify(None, PASSWORD).valid
    assert not passwords.verify("not a hash", PASSWORD).valid
    assert not passwords.verify(first, "x" * 5000).valid  # refused before hashing 5 kB
    assert Passwords(time_cost=3, memory_kib=16384).verify(first, PASSWORD).needs_rehash


async def test_a_login_rehashes_a_password_hashed_with_older_parameters(registry_on_db):
    registry, _published, _clock = registry_on_db
    engine = registry.store.engine
    old = AccountStore(engine, IdentityPolicy(passwords=Passwords(time_cost=1, memory_kib=8192)))
    account = await old.create_account("agent@med.be", roles=["staff"], password=PASSWORD)

    async def stored() -> str:
        async with old._begin() as session:
            return (await session.execute(select(StaffAccount.password_hash))).scalar_one()

    before = await stored()
    assert "m=8192,t=1" in before
    raised = AccountStore(engine, IdentityPolicy(passwords=Passwords(time_cost=2, memory_kib=9216)))
    assert (await raised.login("agent@med.be", "wrong password!")).result == "invalid"
    assert await stored() == before  # a failed login changes nothing
    assert (await raised.login("agent@med.be", PASSWORD)).result == "ok"
    after = await stored()
    assert "m=9216,t=2" in after and after != before
    assert (await raised.login("agent@med.be", PASSWORD)).account_id == account
    assert (await old.login("agent@med.be", PASSWORD)).result == "ok"  # an old process still verifies it


@pytest.mark.parametrize(("password", "email", "problem"), [
    ("short pass", "anna@med.be", "account.password.too_short"),
    ("anna@med.be-is-my-password", "anna@med.be", "account.password.contains_email"),
    ("my name is ANNA.PEETERS!", "anna.peeters@med.be", "account.password.contains_email"),
    ("aaaaaaaaaaaaaaaaaa", "anna@med.be", "account.password.too_simple"),
    ("x" * 1025, "anna@med.be", "account.password.too_long"),
    ("a sentence of some words", "anna@med.be", None),
    ("àèìòù ŷ çñ 漢字かな", "bo@med.be", None),
])
def test_password_rules(password, email, problem):
    assert password_problem(password, email) == problem


def test_throttling_waits_until_the_oldest_counted_failure_leaves_the_window():
    window = timedelta(minutes=15)
    failures = [NOW - timedelta(minutes=m) for m in (14, 10, 3)]
    assert retry_after(failures, limit=4, window=window, now=NOW) is None
    assert retry_after(failures, limit=3, window=window, now=NOW) == 60
    assert retry_after(failures, limit=2, window=window, now=NOW) == 5 * 60
    old = [NOW - timedelta(minutes=16)] * 10
    assert retry_after(old + failures[1:], limit=3, window=window, now=NOW) is None


def test_totp_codes_serve_within_their_window_once():
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(NOW)
    step = totp.accepted_step(secret, code, NOW, None)
    assert step is not None
    assert totp.accepted_step(secret, code, NOW + timedelta(seconds=30), None) == step  # clock drift of one step
    assert totp.accepted_step(secret, code, NOW + timedelta(seconds=90), None) is None
    assert totp.accepted_step(secret, code, NOW, step) is None  # replay
    for hostile in ("", "12345", "1234567", "abcdef", "１２３４５６", code + "\n0"):
        assert totp.accepted_step(secret, hostile, NOW, None) is None
    assert totp.qr_svg(totp.provisioning_uri(secret, "a@b.be")).startswith("<svg")


@pytest.mark.parametrize(("header", "name"), [
    ("localhost", "localhost"), ("LocalHost:8470", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
    ("[::1]:8470", "[::1]"), ("[::1]", "[::1]"), ("desk.example.be.", "desk.example.be"),
    ("", None), ("a@b", None), ("a b", None), ("x/y", None), ("[::1", None), ("[::1]x", None), ("h:p", None),
    ("évil.example", None),
])
def test_host_names(header, name):
    assert host_name(header) == name


def test_cross_site_requests_are_recognised():
    own = ("localhost:8470", "http")
    assert cross_site_reason({}, *own) is None
    assert cross_site_reason({"origin": "http://localhost:8470"}, *own) is None
    assert cross_site_reason({"referer": "http://localhost:8470/backoffice/x"}, *own) is None
    assert cross_site_reason({"sec-fetch-site": "same-origin"}, *own) is None
    for headers in ({"origin": "http://localhost:8471"}, {"origin": "https://localhost:8470"},
                    {"origin": "null"}, {"origin": "garbage"}, {"sec-fetch-site": "cross-site"},
                    {"referer": "https://evil.example/"}, {"origin": "http://localhost:8470.evil.example"}):
        assert cross_site_reason(headers, *own) is not None, headers
    # Behind a TLS proxy the public address is the origin browsers send.
    assert cross_site_reason({"origin": "https://desk.example.be"}, "desk.example.be", "http",
                             ("https://desk.example.be/backoffice/",)) is None


@given(st.text(max_size=60))
def test_next_is_always_a_local_back_office_path(value):
    target = safe_next(value, "/backoffice", "/backoffice/")
    assert target == "/backoffice/" or target == value
    assert target.startswith("/backoffice") and "//" not in target.split("?")[0][:2] and "\\" not in target
    assert target.isprintable()
