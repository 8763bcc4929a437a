"""The audit trail's pure rules: the hash covers every field, the chain check names the first broken entry, what is
stored is bounded, who must give a reason, which address a request came from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from services.registry.access.audit_chain import (
    BODY_KEYS,
    DETAILS_MAX_BYTES,
    GENESIS,
    AuditRecord,
    ChainChecker,
    InvalidAction,
    bounded_details,
    check_action,
    client_ip,
    entry_hash,
    one_line,
    parse_networks,
    reason_required,
)
from services.registry.access.roles import Principal, Role

AT = datetime(2027, 2, 1, 9, 0, tzinfo=timezone.utc)


def chain(count: int) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for sequence in range(1, count + 1):
        fields = dict(at=AT + timedelta(seconds=sequence), account_id=sequence, actor=f"agent{sequence}@med.be",
                      roles="staff", action="file.read", number=f"MED-2027-{sequence:05d}", ip="192.0.2.1",
                      user_agent="Firefox", reason=None, details={"k": sequence})
        digest = entry_hash(sequence, prev, **fields)
        records.append(AuditRecord(sequence=sequence, prev_hash=prev, hash=digest, **fields))
        prev = digest
    return records


def check(records: list[AuditRecord], head: tuple[int, str]):
    checker = ChainChecker(*head)
    for record in records:
        if not checker.feed(record):
            break
    return checker.finish()


def test_the_hash_is_sha256_of_an_encoding_that_names_every_field():
    record = chain(1)[0]
    assert record.hash == hashlib.sha256(record.canonical()).hexdigest()
    encoded = json.loads(record.canonical())
    # Every value of the entry is in what is hashed, the previous hash and the sequence included.
    for value in (1, GENESIS, "2027-02-01T09:00:01.000000+00:00", "agent1@med.be", "staff", "file.read",
                  "MED-2027-00001", "192.0.2.1", "Firefox", {"k": 1}):
        assert value in encoded


@pytest.mark.parametrize("change", [
    {"at": AT}, {"account_id": 99}, {"account_id": None}, {"actor": "other@med.be"}, {"roles": "admin"},
    {"action": "file.denied"}, {"number": "MED-2027-00009"}, {"number": None}, {"ip": "198.51.100.7"},
    {"user_agent": "curl"}, {"reason": "curiosity"}, {"details": {"k": 2}}, {"details": {}},
    {"prev_hash": "f" * 64}, {"sequence": 7},
])
def test_changing_any_field_changes_the_hash(change):
    record = chain(1)[0]
    assert replace(record, **change).computed_hash() != record.hash


def test_a_whole_chain_verifies_and_its_end_must_match_the_head():
    records = chain(5)
    assert check(records, (5, records[-1].hash)).ok
    assert check([], (0, GENESIS)).ok
    result = check(records, (5, "a" * 64))
    assert (result.ok, result.first_broken, result.problem) == (False, 5, "head hash differs")


@pytest.mark.parametrize("index", [0, 2, 4])
def test_an_altered_entry_is_named(index):
    records = chain(5)
    records[index] = replace(records[index], reason="edited afterwards")
    result = check(records, (5, records[-1].hash))
    assert (result.ok, result.first_broken, result.problem) == (False, index + 1, "content altered")


def test_a_removed_entry_is_named_in_the_middle_and_at_the_end():
    records = chain(5)
    head = (5, records[-1].hash)
    middle = check(records[:2] + records[3:], head)
    assert (middle.first_broken, middle.problem) == (3, "missing")
    tail = check(records[:4], head)
    assert (tail.first_broken, tail.problem) == (5, "missing")


def test_an_entry_forged_in_place_breaks_the_link_of_the_next():
    records = chain(5)
    forged_fields = dict(at=AT, account_id=1, actor="x@med.be", roles="staff", action="file.read", number=None,
                         ip=None, user_agent=None, reason=None, details={})
    forged_hash = entry_hash(3, records[1].hash, **forged_fields)
    records[2] = AuditRecord(sequence=3, prev_hash=records[1].hash, hash=forged_hash, **forged_fields)
    result = check(records, (5, records[-1].hash))
    assert (result.first_broken, result.problem) == (4, "previous hash differs")


def test_an_entry_appended_behind_the_heads_back_is_named():
    records = chain(6)
    result = check(records, (5, records[4].hash))
    assert (result.first_broken, result.problem) == (6, "beyond the head")


def test_actions_outside_the_vocabulary_are_refused():
    for action in ("file.read", "change.assign", "change.register_manual", "account.created", "account.token.issued",
                   "login.failed", "audit.export", "held.read"):
        assert check_action(action) == action
    for action in ("file.write", "change.", "change.Assign", "change.a b", "", "login;drop", "x" * 100,
                   "account.a.b.c"):
        with pytest.raises(InvalidAction):
            check_action(action)


def test_details_are_plain_bounded_and_never_carry_message_text():
    details = bounded_details({"body": "Madame, ...", "text": "...", "new_text": "...", "held_id": 3,
                               "nested": {"a": [1, 2.5, float("inf"), None, True]}, "when": AT,
                               "nul": "a\x00b\x1b[31m"})
    assert not BODY_KEYS & set(details)
    assert details["nested"] == {"a": [1, 2.5, "inf", None, True]}
    assert details["when"] == str(AT) and details["nul"] == "ab[31m"
    huge = bounded_details({"query": "x" * (DETAILS_MAX_BYTES + 1), "other": 1})
    assert huge == {"truncated": True, "keys": ["other", "query"]}
    assert bounded_details(None) == {}


def test_single_line_fields_lose_controls_and_length():
    assert one_line("Mozilla\x00/5.0\r\n\x1b]8;;", 300) == "Mozilla/5.0]8;;"
    assert one_line("\ud800abc", 10) == "?abc"
    assert one_line("y" * 400, 300) == "y" * 300
    assert one_line("  ", 10) is None and one_line(None, 10) is None


def principal(*roles: Role, email: str = "agent@med.be") -> Principal:
    return Principal(account_id=1, email=email, roles=frozenset(roles))


def test_a_reason_is_asked_of_whoever_is_not_the_handler_except_supervisors():
    staff = principal(Role.STAFF)
    assert reason_required(staff, "colleague@med.be")
    assert not reason_required(staff, "Agent@Med.be ")  # the handler, whatever the case
    assert reason_required(staff, None) and reason_required(staff, "")  # nobody handles it: whoever reads says why
    assert reason_required(principal(Role.DPO), "colleague@med.be")
    assert reason_required(principal(Role.SUPERVISOR), "colleague@med.be")  # overseeing is a reason to give
    assert reason_required(principal(Role.STAFF, Role.SUPERVISOR), "colleague@med.be")


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    proxies = parse_networks(["10.0.0.0/8", "::1"])
    assert client_ip("203.0.113.5", "198.51.100.1", ()) == "203.0.113.5"
    assert client_ip("203.0.113.5", "198.51.100.1", proxies) == "203.0.113.5"  # the peer is no proxy of ours
    assert client_ip("10.0.0.2", "198.51.100.1", proxies) == "198.51.100.1"
    # The client's own entries (leftmost) are not believed past the first address that is no proxy of ours.
    assert client_ip("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", proxies) == "198.51.100.1"
    assert client_ip("::1", "garbage, 10.0.0.3", proxies) == "10.0.0.3"
    assert client_ip("10.0.0.2", "", proxies) == "10.0.0.2"
    assert client_ip(None, "198.51.100.1", proxies) is None
