"""Intake's own retention (issue 16's schedule): what no register file will ever name, intake removes itself.

Two things intake holds that the register never sees, so no file's anonymisation or erasure reaches them:

- **quarantine entries** never replayed (a message the parser could not handle, kept for staff to look at):
  erased `quarantine_retention_days` after they were quarantined, every revision by secure erase
  (`Quarantine.erase`), with the raw original they point to — unless that message key was published after all (the
  seen-set holds it: the register then owns the raw original, and only the quarantine entry goes);
- **rejected letters** (`letters/rejected/`: scans a staff member was asked to fix, with the reason file):
  deleted, bytes zeroed first, `rejected_letters_retention_days` after they were rejected. The day a file was put
  there is its inode change time (a rename sets it; the modification time is the scanner's).

`due()` lists what a run would remove and why; `run()` removes exactly that list (`ombudsdesk intake retention
[--dry-run]` and the service's periodic job). Each removal is idempotent: what is gone is not found again, so two
intake processes may both run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import structlog
from nats.js import JetStreamContext

from shared import streams
from services.intake.letters.folder import REJECTED
from services.intake.privacy import IntakeErasure, erase_object, overwrite_and_unlink
from services.intake.stores import Quarantine, SeenMessages, raw_object_name

log = structlog.get_logger(__name__)

# A run stops after this many removals (the next run goes on): a bound on one run's time, not on what is removed.
MAX_REMOVALS_PER_RUN = 10_000


@dataclass(frozen=True)
class DueQuarantineEntry:
    message_key: str
    quarantined_at: datetime
    raw_object: str  # "" when the raw original stays (published: the register's) or there is none


@dataclass(frozen=True)
class DueRejectedFile:
    path: Path
    rejected_at: datetime


@dataclass
class IntakeRetentionList:
    """What a run removes (`due`) or removed (`run`); counts only go to logs and metrics."""

    quarantine: list[DueQuarantineEntry] = field(default_factory=list)
    rejected_letters: list[DueRejectedFile] = field(default_factory=list)
    removed_quarantine: int = 0
    removed_objects: int = 0
    removed_files: int = 0


class IntakeRetention:
    def __init__(self, js: Callable[[], JetStreamContext], quarantine: Quarantine, seen: SeenMessages,
                 letters_root: Path | None, *, quarantine_days: int, rejected_letters_days: int,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._js = js
        self.quarantine = quarantine
        self.seen = seen
        self.letters_root = letters_root
        self.quarantine_days = quarantine_days
        self.rejected_letters_days = rejected_letters_days
        self.now = now

    async def due(self) -> IntakeRetentionList:
        listing = IntakeRetentionList()
        now = self.now()
        limit = now - timedelta(days=self.quarantine_days)
        for record in await self.quarantine.records():
            if len(listing.quarantine) >= MAX_REMOVALS_PER_RUN:
                break
            if record.quarantined_at > limit:
                continue  # records() is oldest first, but a clock may lie: look at each
            published = await self.seen.contains(record.message_key)
            raw = "" if published else (record.raw_object or raw_object_name(record.message_key))
            listing.quarantine.append(DueQuarantineEntry(record.message_key, record.quarantined_at, raw))
        if self.letters_root is not None:
            listing.rejected_letters = await asyncio.to_thread(
                rejected_files_due, self.letters_root / REJECTED, now - timedelta(days=self.rejected_letters_days))
        return listing

    async def run(self, *, dry_run: bool = False) -> IntakeRetentionList:
        listing = await self.due()
        if dry_run:
            return listing
        js = self._js()
        for entry in listing.quarantine:
            if await self.quarantine.erase(entry.message_key) is not None:
                listing.removed_quarantine += 1
            if entry.raw_object:
                report = IntakeErasure()
                await erase_object(js, streams.BUCKET_RAW_MESSAGES, entry.raw_object, report)
                listing.removed_objects += report.objects
        for due in listing.rejected_letters:
            listing.removed_files += await asyncio.to_thread(_remove_file, due.path)
        log.info("intake.retention_run", quarantine_entries=listing.removed_quarantine,
                 objects=listing.removed_objects, rejected_files=listing.removed_files)
        return listing


def rejected_files_due(folder: Path, limit: datetime) -> list[DueRejectedFile]:
    """Regular files under `folder` (its dated sub-folders included) put there before `limit`. Links are neither
    followed nor listed (a link in the folder is someone's trick, not a letter: safe_files.py)."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found: list[DueRejectedFile] = []
    for directory, subfolders, files in os.walk(folder, followlinks=False):
        here = Path(directory)
        subfolders[:] = [name for name in subfolders if not (here / name).is_symlink()]
        for name in sorted(files):
            path = here / name
            try:
                status = path.lstat()
            except FileNotFoundError:
                continue
            if not path.is_file() or path.is_symlink():
                continue
            # The later of the two: a rename into rejected/ sets ctime; mtime is when the scanner wrote it.
            put_there = datetime.fromtimestamp(max(status.st_ctime, status.st_mtime), timezone.utc)
            if put_there < limit:
                found.append(DueRejectedFile(path, put_there))
            if len(found) >= MAX_REMOVALS_PER_RUN:
                return found
    return found


def _remove_file(path: Path) -> int:
    try:
        if path.is_symlink() or not path.is_file():
            return 0
        overwrite_and_unlink(path)
    except FileNotFoundError:
        return 0  # removed meanwhile (another intake process, a staff member)
    return 1


class RetentionJob:
    """Runs intake's retention every `interval_seconds` (the first run one interval after start: a restart loop
    must not turn into an erasure loop, and tests start intake far more often than a day)."""

    def __init__(self, retention: IntakeRetention, interval_seconds: float) -> None:
        self.retention = retention
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.retention.run()
            except Exception as error:  # noqa: BLE001 - NATS away for a moment: the next run does it
                log.warning("intake.retention_failed", error=repr(error))

    async def start(self) -> None:
        if self.interval_seconds > 0:
            self._task = asyncio.create_task(self._loop(), name="intake-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
