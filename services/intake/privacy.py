"""Intake's part of an erasure (issue 16): on `PersonalDataErased` it erases its own copies of the file's messages —
the raw originals and attachments in the object store, the quarantine entries, the spool entries still waiting, the
scanned letters in the letters folder's `processed/` and `rejected/` — and nothing else.

Why by sequence, with JetStream's secure erase: a NATS file store keeps the bytes of a message removed by a purge,
a key-value delete, an object-store `delete` or a work-queue acknowledgment in its block file until the block is
compacted (measured with nats-server 2.15: a purged payload is still in `msgs/1.blk`, also after a restart). The
`STREAM.MSG.DELETE` request without `no_erase` (nats-py's `delete_msg`) overwrites the whole record — subject,
headers and payload — with random bytes on disk. So every message holding the file's data is deleted one by one
that way: the object's chunks, its metadata, each revision of a quarantine entry (`Quarantine.erase`: intake makes
the quarantine's stream without nats-py's `deny_delete`; one made before is migrated once by `ombudsdesk intake
quarantine migrate-stream`, and until then its entries can only be purged), each spool entry.

What stays, and why: the seen-set keys (`mid-<sha256>`, `letter-<sha256>`) are digests, not personal data, and they
are what keeps an SMTP retry or an IMAP re-fetch of the erased mail from bringing it back; the original mail in the
organisation's own mailboxes (IMAP) is the mail server's, not intake's (docs/privacy.md, "Erasure in every copy").
Idempotent: what is already gone is simply not found again.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared import streams
from shared.events import PersonalDataErased
from shared.messaging import durable_subscriber
from shared.settings import CommonSettings
from services.intake import jetstream_internals as layout
from services.intake.channels.spool import SpoolEntryInvalid, read_envelope
from services.intake.letters.folder import PROCESSED, REJECTED
from services.intake.letters.safe_files import (
    UnsafeEntry,
    erase_file_at,
    open_directory,
    own_directory,
    read_regular_file,
    walk_regular_files,
    write_new_file,
)
from services.intake.letters.metadata import letter_message_key
from services.intake.message.message_key import message_key as mail_message_key
from services.intake.stores import Quarantine, erase_message, erase_subject, raw_object_name

log = structlog.get_logger(__name__)

# A JetStream API answer that is "no such message" (10037) or "no message found" (10044...): nothing (more) to erase.
_GONE = (NotFoundError,)


@dataclass
class IntakeErasure:
    """What one erasure removed from intake's stores (counts only: the report names no person)."""

    objects: int = 0
    stream_messages: int = 0
    quarantine_entries: int = 0
    spool_entries: int = 0
    letter_files: int = 0
    chunk_tokens: set[str] = field(default_factory=set)


async def erase_object(js: JetStreamContext, bucket: str, name: str, report: IntakeErasure) -> None:
    """Erase an object-store object: its chunks and every metadata message of its name."""
    stream, meta_subject = layout.object_stream(bucket), layout.meta_subject(bucket, name)
    try:
        meta = await js.get_last_msg(stream, meta_subject)
    except _GONE:
        return
    nuid = layout.meta_nuid(meta.data)
    if nuid:
        report.chunk_tokens.add(nuid)
        report.stream_messages += await erase_subject(js, stream, layout.chunk_subject(bucket, nuid))
    report.stream_messages += await erase_subject(js, stream, meta_subject)
    report.objects += 1


def _raw_names(event: PersonalDataErased) -> list[str]:
    """The raw originals to erase: those named, and each message key's mail (`.eml`) and letter record (`.json`)
    in case the register's list is short of one (a message attached before it recorded raw objects)."""
    names = list(event.raw_objects)
    for key in event.message_keys:
        names += [raw_object_name(key), raw_object_name(key, ".json")]
    return list(dict.fromkeys(names))


class IntakePrivacy:
    """Erases intake's copies of a file's messages (the handler of `PersonalDataErased`)."""

    def __init__(self, js: Callable[[], JetStreamContext], letters_root: Path | None) -> None:
        self._js = js
        self.letters_root = letters_root
        self._quarantine = Quarantine(js)

    async def erase(self, event: PersonalDataErased) -> IntakeErasure:
        js = self._js()
        report = IntakeErasure()
        keys = set(event.message_keys)
        quarantined_raw = await self._erase_quarantine(keys, report)
        for name in dict.fromkeys([*_raw_names(event), *quarantined_raw]):
            await erase_object(js, streams.BUCKET_RAW_MESSAGES, name, report)
        # Attachments are content-addressed: the register lists only those no other file refers to.
        for name in event.attachment_objects:
            await erase_object(js, streams.BUCKET_ATTACHMENTS, name, report)
        await self._erase_spool(js, keys, report)
        if self.letters_root is not None:
            report.letter_files += await asyncio.to_thread(erase_letters, self.letters_root, keys)
        log.info("privacy.intake_erased", complaint_number=event.complaint_number, erasure_id=event.erasure_id,
                 objects=report.objects, stream_messages=report.stream_messages,
                 quarantine_entries=report.quarantine_entries, spool_entries=report.spool_entries,
                 letter_files=report.letter_files)
        return report

    async def _erase_quarantine(self, keys: set[str], report: IntakeErasure) -> list[str]:
        """Erase every revision of the quarantine entries of `keys` (secure erase, `Quarantine.erase`); the raw
        objects they pointed to."""
        raw = []
        for key in sorted(keys):
            value = await self._quarantine.erase(key)
            if value is None:
                continue  # never quarantined, or erased before
            raw.append(_quarantined_raw(value))
            report.quarantine_entries += 1
        return [name for name in raw if name]

    async def _erase_spool(self, js: JetStreamContext, keys: set[str], report: IntakeErasure) -> None:
        """Erase spool entries still waiting whose raw original is one of the erased objects (or, for entries of
        the older layout carrying the raw itself, whose message key is one of `keys`). Delivered entries are gone
        already: the spool is a work queue, and an emptied block file is removed by the server."""
        stream, sequence = streams.STREAM_INTAKE_SPOOL, 1
        while True:
            try:
                message = await js.get_msg(stream, seq=sequence, subject=streams.SUBJECT_INTAKE_SPOOL, next=True)
            except _GONE:
                return
            sequence = (message.seq or 0) + 1
            if _spool_entry_matches(message.headers, message.data or b"", keys, report.chunk_tokens):
                if await erase_message(js, stream, message.seq or 0):
                    report.spool_entries += 1


def _quarantined_raw(data: bytes) -> str:
    try:
        return str(json.loads(data).get("raw_object") or "")
    except (ValueError, AttributeError):
        return ""


def _spool_entry_matches(headers: dict[str, str] | None, data: bytes, keys: set[str], tokens: set[str]) -> bool:
    try:
        envelope = read_envelope(headers)
    except SpoolEntryInvalid:
        return False
    if envelope.stored_raw is not None:
        return envelope.stored_raw.nuid in tokens
    try:
        return mail_message_key(data) in keys
    except Exception:  # noqa: BLE001 - a damaged entry is not ours to judge here; it stays for the worker
        return False


def erase_letters(root: Path, keys: Iterable[str]) -> int:
    """Delete, under `processed/` and `rejected/`, each scanned PDF whose letter key is one of `keys`, with its JSON
    sidecar, and drop its line from a CSV manifest beside it; how many files were deleted or rewritten. As the
    folder watcher (safe_files.py): links are never followed, a hard link or a FIFO is never read nor written
    through, every folder is reached from the letters root one level at a time."""
    wanted = {key for key in keys if key.startswith("letter-")}
    if not wanted:
        return 0
    changed = 0
    for base in (PROCESSED, REJECTED):
        for folders, name, _info in list(walk_regular_files(root, base)):
            if not name.lower().endswith(".pdf"):
                continue
            try:
                content = read_regular_file(root.joinpath(base, *folders, name))
            except OSError:  # a link, a hard link, a FIFO, gone meanwhile: not a letter of ours
                continue
            if letter_message_key(content) in wanted:
                changed += _erase_letter_files(root, (base, *folders), name)
    return changed


def _erase_letter_files(root: Path, folders: tuple[str, ...], pdf: str) -> int:
    changed = 0
    stem = pdf.rsplit(".", 1)[0]
    try:
        with open_directory(root) as root_descriptor, own_directory(root_descriptor, *folders) as folder:
            for companion in (pdf, f"{stem}.json", f"{stem}.JSON"):
                changed += int(erase_file_at(folder, companion))
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(".csv"):
                    changed += _drop_manifest_line(root.joinpath(*folders, name), folder, name, pdf)
    except (FileNotFoundError, UnsafeEntry):
        return changed  # a folder swapped for a link, or removed: nothing more of ours there
    return changed


def _drop_manifest_line(path: Path, folder: int, name: str, pdf: str) -> int:
    """Rewrite a CSV manifest without the lines naming `pdf`: the old file zeroed and removed, a new one created
    (never written through a link or a hard link)."""
    try:
        lines = read_regular_file(path).decode("utf-8", errors="replace").splitlines(keepends=True)
    except OSError:
        return 0
    kept = [line for line in lines if pdf not in line]
    if len(kept) == len(lines):
        return 0
    erase_file_at(folder, name)
    write_new_file(folder, name, "".join(kept).encode("utf-8"))
    return 1


def subscribe_privacy(broker: NatsBroker, settings: CommonSettings, privacy: IntakePrivacy) -> None:
    """Declare intake's durable consumer of `PersonalDataErased` (no I/O: it starts with the broker)."""

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_PERSONAL_DATA_ERASED,
                        durable=streams.CONSUMER_INTAKE_PRIVACY)
    async def personal_data_erased(event: PersonalDataErased) -> None:
        """Erase intake's copies of an erased file's messages (object store, quarantine, spool, letters)."""
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await privacy.erase(event)
