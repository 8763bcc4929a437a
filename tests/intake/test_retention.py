"""Intake's retention (issue 16's schedule) against a real NATS server and a real letters folder: a quarantine entry
never replayed is erased, every revision, with its raw original — unless its message was published (the register then
owns the raw original) — once past `quarantine_retention_days`; a rejected letter goes once past
`rejected_letters_retention_days`; what is younger stays; the dry run lists exactly what the run removes; the bytes
are gone from the NATS data folder; links in the rejected folder are neither followed nor removed."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from typer.testing import CliRunner

from shared import streams
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake.cli import app
from services.intake.stores import IntakeStores, QuarantineRecord, ensure_intake_buckets
from services.intake.wiring import intake_retention
from tests.intake.support import intake_settings
from tests.intake.test_privacy import files_containing, quarantine_record

NOW = datetime.now(timezone.utc)


def aged(record: QuarantineRecord, days: float) -> QuarantineRecord:
    return record.model_copy(update={"quarantined_at": NOW - timedelta(days=days)})


async def quarantined(stores: IntakeStores, marker: str, days: float, *, published: bool = False) -> str:
    """A quarantine entry `days` old (written twice: two revisions) whose raw original holds `marker`."""
    key = f"mid-{uuid.uuid4().hex}"
    raw = f"From: {marker} <{marker}@example.org>\r\n\r\n{marker}\r\n".encode()
    await stores.objects.put(streams.BUCKET_RAW_MESSAGES, f"{key}.eml", raw)
    for attempt in (1, 2):
        await stores.quarantine.put(aged(quarantine_record(key, f"{key}.eml", f"{marker}@example.org", attempt), days))
    if published:
        await stores.seen.mark(key, f"received:{key}")
    return key


def rejected_letter(letters: Path, marker: str) -> Path:
    folder = letters / "rejected"
    folder.mkdir(parents=True, exist_ok=True)
    pdf = folder / f"scan-{marker}.pdf"
    pdf.write_bytes(f"%PDF-1.4 {marker}".encode())
    (folder / f"scan-{marker}.pdf.reason.txt").write_text(f"{marker}: field missing\n")
    return pdf


async def test_quarantine_and_rejected_letters_past_their_retention_are_removed_for_good(nats_server, tmp_path):
    settings = intake_settings(nats_server.url, tmp_path, quarantine_retention_days=30,
                               rejected_letters_retention_days=30)
    letters = settings.letters_path()
    old_letter = rejected_letter(letters, "oldletter")
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"%PDF not ours")
    (letters / "rejected" / "link.pdf").symlink_to(outside)
    # A hard link planted by someone who may write into the folder: its file is another service's (a database...).
    precious = tmp_path / "registry.db"
    precious.write_bytes(b"SQLite format 3\0 precious")
    os.link(precious, letters / "rejected" / "hardlink.pdf")
    broker = make_broker(settings)
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        stores = IntakeStores(js)
        forgotten = await quarantined(stores, "forgottenq", 31)
        published = await quarantined(stores, "publishedq", 45, published=True)
        recent = await quarantined(stores, "recentq", 29)

        retention = intake_retention(settings, stores)
        retention.now = lambda: NOW
        dry = await retention.run(dry_run=True)
        assert dry.rejected_letters == []  # rejected just now
        assert sorted(entry.message_key for entry in dry.quarantine) == sorted([forgotten, published])
        assert {entry.message_key: bool(entry.raw_object) for entry in dry.quarantine} == {
            forgotten: True, published: False}
        assert sorted(await stores.quarantine.keys()) == sorted([forgotten, published, recent])  # dry: nothing gone

        done = await retention.run()
        assert sorted(entry.message_key for entry in done.quarantine) == sorted(
            entry.message_key for entry in dry.quarantine)
        assert (done.removed_quarantine, done.removed_objects) == (2, 1)
        assert await stores.quarantine.keys() == [recent]
        # The published message's raw original is the register's: still readable.
        assert b"publishedq" in await stores.objects.get_raw(f"{published}.eml")
        assert (await retention.run()).removed_quarantine == 0  # idempotent

        assert files_containing(nats_server.store_dir, b"forgottenq") == []
        assert files_containing(nats_server.store_dir, b"recentq") != []  # still in quarantine: on disk, as it should

        # Seen 31 days from now, the letters rejected today are past their retention (and "recent" too).
        retention.now = lambda: NOW + timedelta(days=31)
        later = await retention.run()
        assert sorted(due.path.name for due in later.rejected_letters) == [
            "hardlink.pdf", "link.pdf", "scan-oldletter.pdf", "scan-oldletter.pdf.reason.txt"]
        assert later.removed_files == 4 and later.removed_quarantine == 1

    assert not old_letter.exists() and not (letters / "rejected" / "link.pdf").is_symlink()
    assert not (letters / "rejected" / "hardlink.pdf").exists()
    # Neither the link's target nor the hard link's other name was written through.
    assert outside.read_bytes() == b"%PDF not ours"
    assert precious.read_bytes() == b"SQLite format 3\0 precious"


def test_the_retention_command_lists_then_removes(nats_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OMBUDSDESK_NATS_URL", nats_server.url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OMBUDSDESK_REJECTED_LETTERS_RETENTION_DAYS", "1")
    letter = rejected_letter(tmp_path / "var" / "letters", "cliletter")
    day_ago = (NOW - timedelta(days=2)).timestamp()
    os.utime(letter, (day_ago, day_ago))  # ctime is still today: the letter was rejected today, and stays
    runner = CliRunner()

    dry = runner.invoke(app, ["retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove: 0 quarantine entr(y/ies), 0 rejected letter file(s)" in dry.output
    real = runner.invoke(app, ["retention"])
    assert real.exit_code == 0, real.output
    assert "removed: 0 quarantine entr(y/ies), 0 raw original(s), 0 rejected letter file(s)" in real.output
    assert letter.exists()
