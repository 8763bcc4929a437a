"""`ombudsdesk audit verify|export` against a real register (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timezone

from sqlalchemy import delete, update
from typer.testing import CliRunner

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.audit_models import AuditEntry
from services.registry.audit_cli import app
from services.registry.repository import migrate
from shared.database import create_engine
from tests.registry.audit.conftest import tamper
from tests.registry.conftest import Clock


def on_trail(database_url: str, action):
    async def main():
        engine = create_engine(database_url)
        try:
            await migrate(engine)
            return await action(AuditTrail(engine, clock=Clock(datetime(2027, 2, 1, 8, 0, tzinfo=timezone.utc))))
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def seed(trail: AuditTrail) -> None:
    for day, actor, number in ((1, "anne@med.be", "MED-2027-00001"), (2, "bart@med.be", "MED-2027-00001"),
                               (3, "anne@med.be", "MED-2027-00002"), (4, "anne@med.be", "MED-2027-00001")):
        trail.clock.now = datetime(2020, 2, day, 22, 30, tzinfo=timezone.utc)  # 23:30 in Brussels
        await trail.append("file.read", actor=actor, account_id=1, number=number, reason="@cmd formula-looking")


def test_verify_and_export(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    on_trail(database_url, seed)
    runner = CliRunner()

    verified = runner.invoke(app, ["verify"])
    assert verified.exit_code == 0, verified.output
    head_hash = on_trail(database_url, lambda trail: trail.head())[1]
    assert "verified: 4 entries" in verified.output and f"sequence 4, sha256 {head_hash}" in verified.output

    exported = runner.invoke(app, ["export", "--number", "med-2027-00001", "--account", "anne@med.be",
                                   "--since", "2020-02-02"])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    # Day 1 at 23:30 in Brussels is before 2 February there; day 4's entry is anne's on that file.
    assert [row["sequence"] for row in rows] == ["4"]
    assert rows[0]["reason"] == "'@cmd formula-looking"
    everything = list(csv.DictReader(io.StringIO(runner.invoke(app, ["export"]).stdout)))
    assert [row["sequence"] for row in everything] == ["1", "2", "3", "4", "5"]  # 5: the first export
    until = list(csv.DictReader(io.StringIO(runner.invoke(app, ["export", "--until", "2020-02-02"]).stdout)))
    assert [row["sequence"] for row in until] == ["1", "2"]

    exports = on_trail(database_url, lambda trail: trail.search(AuditFilter(action="audit.export")))
    assert len(exports) == 3 and exports[-1].actor.startswith("cli:")
    assert exports[-1].details == {"via": "cli", "number": "MED-2027-00001", "account": "anne@med.be",
                                   "since": "2020-02-02T00:00:00+01:00"}

    bad_date = runner.invoke(app, ["export", "--since", "2 Feb"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output


def test_verify_fails_with_the_first_broken_entry(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    on_trail(database_url, seed)
    runner = CliRunner()

    async def edit(trail: AuditTrail) -> None:
        await tamper(trail.engine, update(AuditEntry).where(AuditEntry.sequence == 3)
                     .values(actor="someone.else@med.be\x1b[2J"))

    on_trail(database_url, edit)
    broken = runner.invoke(app, ["verify"])
    assert broken.exit_code == 1
    assert "BROKEN at entry 3: content altered" in broken.output
    assert '"actor": "someone.else@med.be\\u001b[2J"' in broken.output  # the entry, no escape reaching a terminal
    assert "\x1b" not in broken.output

    async def remove(trail: AuditTrail) -> None:
        await tamper(trail.engine, delete(AuditEntry).where(AuditEntry.sequence.in_([2, 3])))

    on_trail(database_url, remove)
    broken = runner.invoke(app, ["verify"])
    assert broken.exit_code == 1 and "BROKEN at entry 2: missing" in broken.output
