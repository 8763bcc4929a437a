"""`record_access` from a request: who, when, from which address, with which user agent and reason."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
import structlog
from starlette.requests import Request

from services.registry.access import audit
from services.registry.access.audit import AuditTrail, record_access, record_request
from services.registry.access.audit_chain import InvalidAction, parse_networks
from services.registry.access.roles import Principal, Role

SUPERVISOR = Principal(account_id=42, email="sophie.martin@med.be", roles=frozenset({Role.SUPERVISOR, Role.STAFF}),
                       session_id=7)


def request_from(app: object, *, peer: str | None = "203.0.113.8", headers: dict[str, str] | None = None) -> Request:
    """A real Starlette request, as FastAPI hands one to a page, on a stand-in application."""
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
    scope = {"type": "http", "method": "GET", "path": "/backoffice/files/MED-2027-00001", "raw_path": b"",
             "query_string": b"", "headers": raw, "client": (peer, 51234) if peer else None, "app": app,
             "scheme": "http", "server": ("registry", 80), "root_path": ""}
    return Request(scope)


def app_with(trail: AuditTrail | None) -> object:
    state = SimpleNamespace() if trail is None else SimpleNamespace(audit=trail)
    return SimpleNamespace(state=state)


async def test_a_read_is_recorded_with_who_when_where_and_why(trail_on_db):
    trail, clock = trail_on_db
    clock.now = datetime(2027, 3, 4, 14, 5, 6, 789000, tzinfo=timezone.utc)
    request = request_from(app_with(trail), headers={"User-Agent": "Mozilla/5.0 (X11) Firefox/128.0",
                                                     "X-Forwarded-For": "198.51.100.23"})
    await record_access(request, SUPERVISOR, "file.read", number="MED-2027-00001",
                        reason="Citizen called the switchboard", details={"tab": "thread"})
    [entry] = await trail.recent()
    assert entry.account_id == 42 and entry.actor == "sophie.martin@med.be" and entry.roles == "staff,supervisor"
    assert entry.at == datetime(2027, 3, 4, 14, 5, 6, 789000, tzinfo=timezone.utc)
    # No trusted proxy configured: the address is the peer's, whatever the header claims.
    assert entry.ip == "203.0.113.8"
    assert entry.user_agent == "Mozilla/5.0 (X11) Firefox/128.0"
    assert (entry.action, entry.number, entry.reason) == ("file.read", "MED-2027-00001",
                                                          "Citizen called the switchboard")
    assert entry.details == {"tab": "thread"}
    assert (await trail.verify()).ok


async def test_behind_a_trusted_proxy_the_forwarded_address_is_recorded(trail_on_db):
    base, _clock = trail_on_db
    trail = AuditTrail(base.engine, clock=base.clock, trusted_proxies=parse_networks(["127.0.0.1/32"]))
    request = request_from(app_with(trail), peer="127.0.0.1",
                           headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.23", "User-Agent": "A" * 2000})
    await record_access(request, SUPERVISOR, "original.download", number="MED-2027-00001")
    [entry] = await trail.recent()
    assert entry.ip == "198.51.100.23" and entry.user_agent == "A" * 300


async def test_a_failed_login_is_recorded_without_an_account(trail_on_db):
    trail, _clock = trail_on_db
    request = request_from(app_with(trail), peer=None)
    await record_request(request, "login.failed", actor="Nobody@Example.org\r\nInjected: yes",
                         details={"reason": "unknown account"})
    [entry] = await trail.recent()
    assert (entry.account_id, entry.actor, entry.roles, entry.ip) == (
        None, "nobody@example.orginjected: yes", "", None)


async def test_an_action_outside_the_vocabulary_is_refused_and_not_recorded(trail_on_db):
    trail, _clock = trail_on_db
    with pytest.raises(InvalidAction):
        await record_access(request_from(app_with(trail)), SUPERVISOR, "file.peek", number="MED-2027-00001")
    assert await trail.recent() == []


async def test_without_a_trail_wired_it_warns_once_and_records_nothing(monkeypatch):
    monkeypatch.setattr(audit, "_warned_unwired", False)
    request = request_from(app_with(None))
    with structlog.testing.capture_logs() as logs:
        await record_access(request, SUPERVISOR, "file.read", number="MED-2027-00001")
        await record_access(request, SUPERVISOR, "file.read", number="MED-2027-00002")
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == ["audit_trail_not_wired"]
    assert "sophie" not in repr(logs) and "MED-2027" not in repr(logs)
