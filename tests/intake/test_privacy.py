"""Intake's erasure (issue 16) against a real NATS server: on `PersonalDataErased` the file's raw original (named
from a spool entry still waiting), its attachment, its quarantine entry (every revision) and its scanned letter in
`processed/` are gone — and gone from the bytes of the NATS data folder, not only from what NATS shows — while
another citizen's copies are intact; a second delivery of the event changes nothing. The quarantine entry's bytes
(every revision) are gone from the block files too: intake makes the quarantine's stream without `deny_delete`, so
its entries are erased by sequence (tests/intake/test_secure_erase.py covers a quarantine made before, migrated)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from nats.js.errors import ObjectNotFoundError

from shared import streams
from shared.events import Channel, PersonalDataErased
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake.arrival import Arrival
from services.intake.channels.spool import Spool, ensure_spool, read_envelope
from services.intake.letters.metadata import letter_message_key
from services.intake.privacy import IntakePrivacy
from services.intake.stores import IntakeStores, QuarantineRecord, ensure_intake_buckets, settle
from tests.intake.support import intake_settings


def files_containing(root: Path, needle: bytes) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")
                  if path.is_file() and needle in path.read_bytes())


def quarantine_record(key: str, raw_object: str, sender: str, attempts: int) -> QuarantineRecord:
    now = datetime.now(timezone.utc)
    return QuarantineRecord(message_key=key, reason="parse_failed", raw_object=raw_object, size=10,
                            channel=Channel.EMAIL, received_at=now, envelope_sender=sender, quarantined_at=now,
                            attempts=attempts)


async def store_citizen(stores: IntakeStores, spool: Spool, marker: str) -> tuple[str, str]:
    """One citizen's copies: a spooled raw original named `<key>.eml`, an attachment, a quarantine entry written
    twice (two revisions). Returns (message key, attachment object name)."""
    key = f"mid-{uuid.uuid4().hex}"
    raw = f"From: {marker} <{marker}@example.org>\r\nSubject: {marker}\r\n\r\n{marker} body\r\n".encode()
    arrival = Arrival.of(received_at=datetime.now(timezone.utc), envelope_sender=f"{marker}@example.org",
                         envelope_recipients=("plaintes@example.org",), source="smtp")
    await spool.put(raw, arrival=arrival)
    # The pipeline names the spooled chunks once it knows the key (services/intake/channels/spool.py).
    entry = await stores.js_context().get_last_msg(streams.STREAM_INTAKE_SPOOL, streams.SUBJECT_INTAKE_SPOOL)
    chunks = read_envelope(entry.headers).stored_raw
    await settle(stores.objects.start_name(streams.BUCKET_RAW_MESSAGES, f"{key}.eml", chunks))
    attachment = f"sha256-{uuid.uuid4().hex}"
    await stores.objects.put(streams.BUCKET_ATTACHMENTS, attachment, f"%PDF {marker} attachment".encode())
    for attempt in (1, 2):
        await stores.quarantine.put(quarantine_record(key, f"{key}.eml", f"{marker}@example.org", attempt))
    return key, attachment


@pytest.mark.slow
async def test_erasure_removes_intake_copies_from_the_bytes_on_disk(nats_server, tmp_path):
    settings = intake_settings(nats_server.url, tmp_path)
    erased, kept = f"Erasedcitizen{uuid.uuid4().hex[:8]}", f"Keptcitizen{uuid.uuid4().hex[:8]}"
    letters = tmp_path / "letters"
    (letters / "processed").mkdir(parents=True)
    pdf = f"%PDF-1.4 scanned letter of {erased}".encode()
    (letters / "processed" / "scan0001.pdf").write_bytes(pdf)
    (letters / "processed" / "scan0001.json").write_text(f'{{"sender_name": "{erased}"}}')
    other_pdf = f"%PDF-1.4 scanned letter of {kept}".encode()
    (letters / "processed" / "scan0002.pdf").write_bytes(other_pdf)
    broker = make_broker(settings)
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        await ensure_spool(js, 1, 30)
        stores = IntakeStores(js)
        spool = Spool(lambda: js, stores.objects)
        key, attachment = await store_citizen(stores, spool, erased)
        other_key, other_attachment = await store_citizen(stores, spool, kept)
        assert files_containing(nats_server.store_dir, erased.encode())  # the copies are there, on disk

        event = PersonalDataErased(complaint_number="MED-2026-00001", erasure_id="e-1", mode="erased",
                                   reason="request", message_keys=(key, letter_message_key(pdf)),
                                   raw_objects=(f"{key}.eml",), attachment_objects=(attachment,))
        privacy = IntakePrivacy(lambda: js, letters)
        report = await privacy.erase(event)
        assert (report.objects, report.quarantine_entries, report.spool_entries) == (2, 1, 1)
        assert report.letter_files == 2  # the PDF and its sidecar
        again = await privacy.erase(event)  # the event delivered twice
        assert (again.objects, again.quarantine_entries, again.spool_entries, again.letter_files) == (0, 0, 0, 0)

        raw_bucket = await js.object_store(streams.BUCKET_RAW_MESSAGES)
        with pytest.raises(ObjectNotFoundError):
            await raw_bucket.get(f"{key}.eml")
        assert await stores.quarantine.get(key) is None
        assert kept.encode() in (await raw_bucket.get(f"{other_key}.eml")).data
        assert (await stores.quarantine.get(other_key)).envelope_sender == f"{kept}@example.org"
        attachments = await js.object_store(streams.BUCKET_ATTACHMENTS)
        assert kept.encode() in (await attachments.get(other_attachment)).data
        spool_left = (await js.stream_info(streams.STREAM_INTAKE_SPOOL)).state.messages
        assert spool_left == 1  # the other citizen's entry still waits

    # Everything erased for good, the quarantine entry's two revisions (its envelope sender) included: no file of
    # the NATS data folder holds the name any more, while the other citizen's quarantine entry is still on disk.
    assert files_containing(nats_server.store_dir, erased.encode()) == []
    kept_files = files_containing(nats_server.store_dir, kept.encode())
    assert any(f"KV_{streams.BUCKET_INTAKE_QUARANTINE}" in path for path in kept_files), kept_files
    assert any(f"OBJ_{streams.BUCKET_RAW_MESSAGES}" in path for path in kept_files), kept_files
    assert files_containing(letters, erased.encode()) == []
    assert (letters / "processed" / "scan0002.pdf").read_bytes() == other_pdf
