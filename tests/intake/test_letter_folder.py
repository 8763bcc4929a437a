"""The scanned-letters drop folder over a real NATS and the real pipeline: sidecars, CSV batches, rejections, crashes."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.intake.letters.folder import LetterFolder
from services.intake.letters.intake import accept_letter
from services.intake.letters.metadata import letter_message_key, validate_letter
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.settings import IntakeSettings
from shared import streams
from shared.events import Channel, MessageReceived
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from tests.intake.letter_support import make_pdf, metadata
from tests.intake.support import read_object, stream_events

TODAY = date(2026, 11, 24)


@pytest.fixture
async def pipeline(nats_server) -> AsyncIterator[IntakePipeline]:
    settings = IntakeSettings(nats_url=nats_server.url)
    broker = make_broker(settings)
    await broker.connect()
    await ensure_streams(broker.connection.jetstream())
    intake = IntakePipeline(broker, settings)
    yield intake
    await intake.drain()
    intake.close()
    await broker.stop()


def folder_for(root: Path, pipeline: IntakePipeline, **kwargs: Any) -> LetterFolder:
    options: dict[str, Any] = {"today": lambda: TODAY, "settle_seconds": 0, "incomplete_seconds": 600}
    options.update(kwargs)
    folder = LetterFolder(root, pipeline, **options)
    folder.prepare()
    return folder


async def letters_in_stream(nats_url: str) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(data)
            for data in await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]


def drop(root: Path, name: str, content: bytes | str) -> Path:
    path = root / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


async def test_pdf_with_sidecar_becomes_a_letter_event_and_moves_to_processed(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    pdf = make_pdf(2)
    drop(root, "scan0001.pdf", pdf)
    drop(root, "scan0001.json", json.dumps(metadata()))

    report = await folder.scan_once()

    assert report.imported == ["scan0001"] and report.rejected == []
    [event] = await letters_in_stream(nats_server.url)
    assert event.channel is Channel.LETTER
    assert event.message_key == letter_message_key(pdf)
    assert event.letter_received_on == date(2026, 11, 20)  # the legal start: receipt, not scan time
    assert event.received_at.date() == date(2026, 11, 20)
    assert (event.letter_postmarked_on, event.letter_pages) == (date(2026, 11, 18), 2)
    assert (event.letter_archive_reference, event.letter_scanned_by) == ("BOX-2026-117/3", "m.peeters")
    assert event.sender.name == "Jeanne Dupont" and event.sender.postal_address.startswith("Rue de la Loi")
    assert (event.sender.email, event.sender.language, event.language) == ("jeanne@example.org", "fr", "fr")
    assert event.source == "letters:scan0001.pdf"
    [attachment] = event.attachments
    assert attachment.content_type == "application/pdf" and attachment.filename == "scan0001.pdf"
    assert await read_object(nats_server.url, streams.BUCKET_ATTACHMENTS, attachment.object_name) == pdf
    record = json.loads(await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, event.raw_object))
    assert record["submitted"]["archive_reference"] == "BOX-2026-117/3"
    assert sorted(path.name for path in (root / "processed").iterdir()) == ["scan0001.json", "scan0001.pdf"]
    assert [path.name for path in root.iterdir() if path.is_file()] == []


async def test_invalid_sidecar_is_rejected_whole_with_every_problem_named(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    drop(root, "scan0002.pdf", make_pdf(3))
    drop(root, "scan0002.json", json.dumps(metadata(received_on="2026-13-01", email="jeanne@", language="it")))

    report = await folder.scan_once()

    assert report.rejected == ["scan0002"] and report.imported == []
    assert await letters_in_stream(nats_server.url) == []
    rejected = root / "rejected"
    assert sorted(path.name for path in rejected.iterdir()) == ["scan0002.json", "scan0002.pdf",
                                                               "scan0002.reason.txt"]
    reason = (rejected / "scan0002.reason.txt").read_text()
    assert reason.startswith("Refusé le ") and "4 problème(s)" in reason  # staff read French by default
    for field in ("received_on", "email", "language", "pages"):
        assert f"scan0002.json: {field}:" in reason
    assert "2 déclarée(s) mais le PDF a 3 page(s)" in reason


def manifest(rows: list[dict[str, Any]], delimiter: str = ";") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["file", *metadata().keys()], delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def test_csv_batch_is_all_or_nothing(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    pdfs = {f"lettre-{number}.pdf": make_pdf(1, f"Lettre {number}") for number in range(3)}
    for name, content in pdfs.items():
        drop(root, name, content)
    rows = [{"file": name, **metadata(pages=1, complainant_name=f"Citoyen {index}")}
            for index, name in enumerate(pdfs)]
    rows[2]["staff_member"] = ""
    drop(root, "lot-novembre.csv", manifest(rows))

    report = await folder.scan_once()

    assert report.rejected == ["lot-novembre"]
    assert await letters_in_stream(nats_server.url) == []  # two valid rows, yet nothing half-imported
    reason = (root / "rejected" / "lot-novembre.reason.txt").read_text()
    assert "lot-novembre.csv, ligne 4: staff_member: manquant (obligatoire)" in reason
    assert sorted(path.name for path in (root / "rejected").iterdir()) == sorted(
        [*pdfs, "lot-novembre.csv", "lot-novembre.reason.txt"])

    rows[2]["staff_member"] = "m.peeters"
    for name, content in pdfs.items():
        drop(root, name, content)
    drop(root, "lot-novembre.csv", manifest(rows, delimiter=","))
    report = await folder.scan_once()

    assert report.imported == ["lot-novembre"]
    events = await letters_in_stream(nats_server.url)
    assert sorted(event.sender.name for event in events) == ["Citoyen 0", "Citoyen 1", "Citoyen 2"]
    assert {event.message_key for event in events} == {letter_message_key(pdf) for pdf in pdfs.values()}
    assert sorted(path.name for path in (root / "processed").iterdir()) == sorted([*pdfs, "lot-novembre.csv"])


async def test_manifest_listing_the_same_scan_twice_is_rejected(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    pdf = make_pdf(1)
    drop(root, "a.pdf", pdf)
    drop(root, "b.pdf", pdf)
    drop(root, "batch.csv", manifest([{"file": name, **metadata(pages=1)} for name in ("a.pdf", "b.pdf")]))
    assert (await folder.scan_once()).rejected == ["batch"]
    assert "batch.csv, ligne 3: file: b.pdf est le même scan que a.pdf" in (root / "rejected" / "batch.reason.txt").read_text()
    assert await letters_in_stream(nats_server.url) == []


async def test_manifest_may_not_reach_outside_the_drop_folder(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    drop(tmp_path, "secret.pdf", make_pdf(1))
    drop(root, "batch.csv", manifest([{"file": "../secret.pdf", **metadata(pages=1)}]))
    report = await folder.scan_once()
    assert report.rejected == ["batch"]
    assert "doit être le nom d'un PDF du dossier de dépôt" in (root / "rejected" / "batch.reason.txt").read_text()
    assert (tmp_path / "secret.pdf").exists()


async def test_crash_after_publish_before_move_gives_no_second_event(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    pdf = make_pdf(2)
    drop(root, "scan0003.pdf", pdf)
    drop(root, "scan0003.json", json.dumps(metadata()))
    # The previous run published the letter, then died before moving its files.
    letter = validate_letter(metadata(), "scan0003.json", today=TODAY)
    first = await accept_letter(pipeline, pdf, "scan0003.pdf", letter, source="letters:scan0003.pdf")
    assert first.status is AcceptStatus.PROCESSED

    report = await folder.scan_once()

    assert report.imported == ["scan0003"]
    assert len(await letters_in_stream(nats_server.url)) == 1
    assert pipeline.counters["duplicate"] == 1
    assert (root / "processed" / "scan0003.pdf").exists()


async def test_files_wait_until_settled_and_complete_then_orphans_are_rejected(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    now = [time.time()]
    folder = folder_for(root, pipeline, settle_seconds=5, incomplete_seconds=600, clock=lambda: now[0])
    drop(root, "scan0004.pdf", make_pdf(2))
    drop(root, "scan0004.json", json.dumps(metadata()))
    drop(root, "orphan.pdf", make_pdf(1))
    drop(root, "batch.csv", manifest([{"file": "late.pdf", **metadata(pages=1)}]))
    drop(root, "copy-in-progress.pdf.part", b"%PDF-1.4 ...")

    report = await folder.scan_once()
    assert report.imported == [] and report.rejected == []  # still being copied (changed less than 5 s ago)

    now[0] += 10
    report = await folder.scan_once()
    assert report.imported == ["scan0004"]
    assert sorted(report.waiting) == ["batch.csv", "orphan.pdf"]  # late.pdf may still be on its way

    now[0] += 600
    report = await folder.scan_once()
    assert sorted(report.rejected) == ["batch", "orphan.pdf"]
    assert "late.pdf n'est pas dans le dossier de dépôt" in (root / "rejected" / "batch.reason.txt").read_text()
    assert "pas de métadonnées" in (root / "rejected" / "orphan.pdf.reason.txt").read_text()
    assert (root / "copy-in-progress.pdf.part").exists()  # never touched
    assert len(await letters_in_stream(nats_server.url)) == 1


async def test_a_reused_scanner_file_name_does_not_overwrite_the_processed_one(nats_server, pipeline, tmp_path):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    for text in ("premier", "second"):
        drop(root, "scan.pdf", make_pdf(2, text))
        drop(root, "scan.json", json.dumps(metadata()))
        assert (await folder.scan_once()).imported == ["scan"]
    assert len(await letters_in_stream(nats_server.url)) == 2
    assert len(list((root / "processed").rglob("scan.pdf"))) == 2


async def test_a_letter_that_fails_to_publish_stays_and_does_not_stop_the_others(nats_server, pipeline, tmp_path,
                                                                                 monkeypatch):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline, incomplete_seconds=0)
    for name in ("a", "b"):
        drop(root, f"{name}.pdf", make_pdf(2, name))
        drop(root, f"{name}.json", json.dumps(metadata()))
    storage = pipeline.objects
    original = storage.put_attachment

    async def flaky_put(attachment):  # noqa: ANN001, ANN202 - the object store refuses a.pdf only
        if attachment.filename == "a.pdf":
            raise TimeoutError("object store timed out")
        return await original(attachment)

    monkeypatch.setattr(storage, "put_attachment", flaky_put)
    report = await folder.scan_once()
    assert report.imported == ["b"] and list(report.failed) == ["a.json"]
    assert report.rejected == []  # a.pdf is not mistaken for an orphan, even with no grace period
    assert (root / "a.pdf").exists() and (root / "a.json").exists()

    monkeypatch.setattr(storage, "put_attachment", original)
    assert (await folder.scan_once()).imported == ["a"]
    assert len(await letters_in_stream(nats_server.url)) == 2


async def test_file_system_calls_stay_off_the_event_loop(nats_server, pipeline, tmp_path, monkeypatch):
    """The drop folder is often an SMB share where one stat can take a second: every listing, stat, move and
    reason file runs in a worker thread, never on the loop that also serves SMTP (review of issue 3)."""
    import os
    import threading

    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    drop(root, "good.pdf", make_pdf(1))
    drop(root, "good.json", json.dumps(metadata(pages=1)))
    drop(root, "bad.pdf", make_pdf(1))
    drop(root, "bad.json", json.dumps(metadata(language="klingon")))
    loop_thread = threading.current_thread()
    on_loop: list[str] = []

    def watched(name: str, real):  # noqa: ANN001, ANN202
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if threading.current_thread() is loop_thread and str(root) in str(args[0]):
                on_loop.append(f"{name} {args[0]}")
            return real(*args, **kwargs)
        return call

    for name in ("stat", "iterdir", "write_text", "mkdir", "read_bytes"):
        monkeypatch.setattr(Path, name, watched(name, getattr(Path, name)))
    monkeypatch.setattr(os, "replace", watched("replace", os.replace))

    report = await folder.scan_once()

    assert (report.imported, report.rejected) == (["good"], ["bad"])
    assert on_loop == []
