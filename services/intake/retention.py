"""Intake's own retention (issue 16's schedule): what no register file will ever name, intake removes itself.

Two things intake holds that the register never sees, so no file's anonymisation or erasure reaches them:

- **quarantine entries** never replayed (a message the parser could not handle, kept for staff to look at):
  erased `quarantine_retention_days` after they were quarantined, every revision by secure erase
  (`Quarantine.erase`), with the raw original they point to — unless that message key was published after all (the
  seen-set holds it: the register then owns the raw original, and only the quarantine entry goes);
- **rejected letters** (`letters/rejected/`: scans a staff member was asked to fix, with the reason file):
  deleted, bytes zeroed first, `rejected_letters_retention_days` after they were rejected. The day a file was put
  there is its inode change time (a rename sets it; the modification time is the scanner's).

`due()` lists what a run would remove and why; `run()` removes that list (`ombudsdesk intake retention [--dry-run]`
and the service's periodic job), looking at each entry again just before it acts — an entry renewed or a message
published since the listing is left — and erasing a raw original before the entry that points to it, so a run cut
in between is finished by the next. Rejected letters are removed relative to directory descriptors and zeroed only
when a regular file has this one name (`safe_files.erase_file_at`: a planted hard link or link is only unlinked).
Each removal is idempotent, so two intake processes may both run it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import structlog
from nats.js import JetStreamContext

from shared import streams
from services.intake.letters.folder import REJECTED
from services.intake.letters.safe_files import (
    UnsafeEntry,
    erase_file_at,
    open_directory,
    own_directory,
    walk_regular_files,
)
from services.intake.privacy import IntakeErasure, erase_object
from services.intake.stores import Quarantine, SeenMessages, raw_object_name

log = structlog.get_logger(__name__)

# A run stops after this many removals (the next run goes on): a bound on one run's time, not on what is removed.
MAX_REMOVALS_PER_RUN = 10_000


@dataclass(frozen=True)
class DueQuarantineEntry:
    message_key: str
    quarantined_at: datetime
    raw_object: str  # "" when the raw original stays (published: the register's) or there is none
    revision: int  # the entry's latest revision when listed: a newer one (the mail came again) is not due


@dataclass(frozen=True)
class DueRejectedFile:
    folders: tuple[str, ...]  # below rejected/ (a dated sub-folder when a name was taken)
    name: str
    rejected_at: datetime

    @property
    def path(self) -> Path:
        return Path(REJECTED, *self.folders, self.name)


@dataclass
class IntakeRetentionList:
    """What a run removes (`due`) or removed (`run`); counts only go to logs and metrics."""

    quarantine: list[DueQuarantineEntry] = field(default_factory=list)
    rejected_letters: list[DueRejectedFile] = field(default_factory=list)
    removed_quarantine: int = 0
    removed_objects: int = 0
    removed_files: int = 0
    unreadable_entries: int = 0


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
        for key in await self.quarantine.keys():
            if len(listing.quarantine) >= MAX_REMOVALS_PER_RUN:
                break
            try:
                record = await self.quarantine.get(key)
                revision = await self.quarantine.revision(key)
            except (ValueError, TypeError) as error:  # a damaged entry must not stop every later run
                listing.unreadable_entries += 1
                log.warning("intake.retention_unreadable_entry", error=type(error).__name__)
                continue
            if record is None or revision is None or _aware(record.quarantined_at) > limit:
                continue
            published = await self.seen.contains(record.message_key)
            raw = "" if published else (record.raw_object or raw_object_name(record.message_key))
            listing.quarantine.append(DueQuarantineEntry(record.message_key, record.quarantined_at, raw, revision))
        if self.letters_root is not None:
            listing.rejected_letters = await asyncio.to_thread(
                rejected_files_due, self.letters_root, now - timedelta(days=self.rejected_letters_days))
        return listing

    async def run(self, *, dry_run: bool = False) -> IntakeRetentionList:
        listing = await self.due()
        if dry_run:
            return listing
        js = self._js()
        for entry in listing.quarantine:
            await self._remove_quarantined(js, entry, listing)
        if self.letters_root is not None:
            for due in listing.rejected_letters:
                listing.removed_files += await asyncio.to_thread(_remove_file, self.letters_root, due)
        log.info("intake.retention_run", quarantine_entries=listing.removed_quarantine,
                 objects=listing.removed_objects, rejected_files=listing.removed_files,
                 unreadable_entries=listing.unreadable_entries)
        return listing

    async def _remove_quarantined(self, js: JetStreamContext, entry: DueQuarantineEntry,
                                  listing: IntakeRetentionList) -> None:
        """The raw original first, the entry last: the entry is the only pointer to the raw original, so a run cut
        between the two leaves the entry for the next run. Each step is looked at again just before it: an entry
        renewed since the listing (the mail came again), or a message published meanwhile (a replay), is left."""
        if await self.quarantine.revision(entry.message_key) != entry.revision:
            return
        if entry.raw_object and not await self.seen.contains(entry.message_key):
            erased = IntakeErasure()
            await erase_object(js, streams.BUCKET_RAW_MESSAGES, entry.raw_object, erased)
            listing.removed_objects += erased.objects
        if await self.quarantine.erase(entry.message_key) is not None:
            listing.removed_quarantine += 1


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def rejected_files_due(letters_root: Path, limit: datetime) -> list[DueRejectedFile]:
    """Entries under `letters_root/rejected/` (its dated sub-folders included) put there before `limit`. Links are
    neither followed nor descended into (`safe_files.walk_regular_files`)."""
    found: list[DueRejectedFile] = []
    for folders, name, info in walk_regular_files(letters_root, REJECTED):
        # The later of the two: a rename into rejected/ sets ctime; mtime is when the scanner wrote it.
        put_there = datetime.fromtimestamp(max(info.st_ctime, info.st_mtime), timezone.utc)
        if put_there < limit:
            found.append(DueRejectedFile(folders, name, put_there))
        if len(found) >= MAX_REMOVALS_PER_RUN:
            break
    return found


def _remove_file(letters_root: Path, due: DueRejectedFile) -> int:
    """Zeroed then unlinked when it is a regular file with this one name; a link, a hard link to a file elsewhere
    or a FIFO is only unlinked (`safe_files.erase_file_at`): reached from the letters root one level at a time."""
    try:
        with open_directory(letters_root) as root, own_directory(root, REJECTED, *due.folders) as folder:
            return int(erase_file_at(folder, due.name))
    except (FileNotFoundError, UnsafeEntry):
        return 0  # removed meanwhile, or a folder swapped for a link: nothing of ours to remove


# The first run waits this long after start (or the interval, when shorter): a service restarted more often than
# the interval still runs it, and one crash-looping at start does not hammer NATS with it.
FIRST_RUN_SECONDS = 600.0


class RetentionJob:
    """Runs intake's retention `FIRST_RUN_SECONDS` after start, then every `interval_seconds`."""

    def __init__(self, retention: IntakeRetention, interval_seconds: float) -> None:
        self.retention = retention
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        wait = min(FIRST_RUN_SECONDS, self.interval_seconds)
        while True:
            await asyncio.sleep(wait)
            wait = self.interval_seconds
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
