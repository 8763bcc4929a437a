"""The scanned-letters drop folder: staff (or the scanner) drop a PDF with a JSON sidecar, or a batch of PDFs with a CSV
manifest; each valid letter becomes a durable `MessageReceived(channel=LETTER)` and its files move to `processed/`;
anything invalid moves whole to `rejected/` with a `<name>.reason.txt` naming every invalid field.

Rules (issue 3; formats in docs/intake-letters.md):
- a file is read only once it has not changed for `settle_seconds` (a copy over the network may still be running);
- nothing half-imported: a manifest is validated whole (every row, every PDF) before the first letter of it is
  published; if anything is wrong, nothing of it is published and the whole batch is rejected;
- files move only after their events are durable; a crash before the move redoes the import at the next scan, and
  the letter's key (the PDF's sha256) makes the second publish a duplicate;
- a PDF nobody describes, or a manifest naming a PDF that never arrives, is rejected after `incomplete_seconds`;
- symbolic links are never followed (safe_files.py): a link planted in the folder is rejected as such, its target
  neither read nor moved; reason files are created new (`O_EXCL`) inside the service's own `rejected/` folder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from shared import observability
from shared.logging import log_digest

from services.intake.letters.intake import accept_letter
from services.intake.letters.metadata import (
    LetterInvalid,
    LetterMetadata,
    LetterProblem,
    count_pdf_pages,
    looks_like_pdf,
    parse_manifest,
    parse_sidecar,
    validate_letter,
)
from services.intake.letters.messages import DEFAULT_LANGUAGE, render
from services.intake.channels.acceptor import MessageAcceptor
from services.intake.letters.safe_files import (
    UnsafeEntry,
    ensure_own_directory,
    entry_kind,
    lexists,
    lexists_at,
    modified_at,
    move_entry,
    open_directory,
    own_directory,
    read_regular_file,
    write_new_file,
)
from services.intake.settings import IntakeSettings

log = structlog.get_logger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"
REASON_SUFFIX = ".reason.txt"
# Names that office software and copy tools use while a file is still being written.
TEMPORARY_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".filepart")


@dataclass
class ScanReport:
    imported: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file -> error; retried at the next scan


@dataclass(frozen=True)
class ValidLetter:
    pdf_path: Path
    pdf: bytes
    metadata: LetterMetadata
    fields: dict[str, object]


def letters_today(settings: IntakeSettings) -> Callable[[], date]:
    """Today where staff stamp the letters (a receipt date after it is a typing mistake)."""
    zone = ZoneInfo(settings.letters_timezone)
    return lambda: datetime.now(zone).date()


def _is_candidate(path: Path) -> bool:
    """A file dropped for us, judged by its name only; its kind is checked with `lstat` by the caller."""
    name = path.name
    return not name.startswith((".", "~$")) and not name.lower().endswith(TEMPORARY_SUFFIXES)


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(lexists, path)  # the entry itself: a dangling link exists too


_UNSAFE_CODES = {"symlink": "symlink", "hardlink": "hard_link"}


def _unsafe_problem(path: Path, kind: str) -> LetterProblem:
    return LetterProblem(path.name, "(file)", _UNSAFE_CODES.get(kind, "not_regular_file"))


def _is_plain_name(name: str) -> bool:
    """A manifest may only name files of the drop folder itself (no `../`, no absolute or nested paths)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\x00" not in name


class LetterFolder:
    def __init__(
        self,
        root: Path,
        pipeline: MessageAcceptor,
        *,
        today: Callable[[], date],
        poll_seconds: float = 2.0,
        settle_seconds: float = 2.0,
        incomplete_seconds: float = 600.0,
        language: str = DEFAULT_LANGUAGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.pipeline = pipeline
        self.today = today
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.incomplete_seconds = incomplete_seconds
        # The language of the reason files staff read.
        self.language = language
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self.totals = {"imported": 0, "rejected": 0}
        self.waiting = 0
        self.last_error: str | None = None

    @property
    def processed_dir(self) -> Path:
        return self.root / PROCESSED

    @property
    def rejected_dir(self) -> Path:
        return self.root / REJECTED

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)  # where the operator configured it
        for directory in (self.processed_dir, self.rejected_dir):
            ensure_own_directory(directory)  # never a symbolic link planted in the drop folder

    # -- one scan ---------------------------------------------------------------------------------------------------

    # Every file-system call below runs in a worker thread (`asyncio.to_thread`): the drop folder is often an SMB
    # share, where one stat can take as long as a whole SMTP conversation, and the event loop also serves SMTP.

    async def _age(self, path: Path) -> float:
        return self.clock() - await asyncio.to_thread(modified_at, path)

    def _list_candidates(self) -> tuple[dict[str, Path], dict[str, tuple[Path, str]]]:
        """The regular files dropped in the folder, and the other entries (links, FIFOs, devices) to reject."""
        files: dict[str, Path] = {}
        unsafe: dict[str, tuple[Path, str]] = {}
        for path in sorted(self.root.iterdir()):
            if not _is_candidate(path):
                continue
            try:
                kind = entry_kind(path)
            except FileNotFoundError:
                continue
            if kind == "file":
                files[path.name] = path
            elif kind != "directory":
                unsafe[path.name] = (path, kind)
        return files, unsafe

    async def _read(self, path: Path) -> bytes:
        """A dropped file's content; a link or anything but a regular file is a problem of the letter, never read."""
        try:
            return await asyncio.to_thread(read_regular_file, path)
        except UnsafeEntry:
            kind = await asyncio.to_thread(entry_kind, path)
            raise LetterInvalid([_unsafe_problem(path, kind)]) from None

    async def scan_once(self) -> ScanReport:
        """Handle every complete, settled letter or batch now in the folder.

        A failure on one letter or batch (NATS unreachable, a file locked by the scanner) leaves its files in place for
        the next scan and does not stop the others; it is listed in `report.failed`.
        """
        report = ScanReport()
        files, unsafe = await asyncio.to_thread(self._list_candidates)
        for name, (path, kind) in unsafe.items():
            # A symbolic link (or a FIFO, a device) is rejected at once: moved as the link itself, its target is
            # never read, moved nor written (docs/intake-letters.md).
            await self._reject([path], name, [_unsafe_problem(path, kind)], report)
        claimed: set[str] = set()
        for name, path in files.items():
            if path.suffix.lower() == ".csv":
                claimed.add(name)
                claimed.update(await self._guarded(self._manifest, path, files, report))
        for name, path in files.items():
            if path.suffix.lower() == ".json" and name not in claimed and await _exists(path):
                claimed.add(name)
                claimed.update(await self._guarded(self._sidecar, path, files, report))
        if report.failed:
            return report  # a failed batch's PDFs are not claimed this time: they must not look like orphans
        for name, path in files.items():
            if name in claimed or not await _exists(path):
                continue
            if await self._age(path) < self.incomplete_seconds:
                report.waiting.append(name)
                continue
            if path.suffix.lower() == ".pdf":
                problem = LetterProblem(name, "(file)", "no_metadata", {"name": f"{path.stem}.json"})
            else:
                problem = LetterProblem(name, "(file)", "not_a_letter")
            await self._reject([path], name, [problem], report)
        return report

    async def _guarded(
        self,
        handler: Callable[[Path, dict[str, Path], ScanReport], Awaitable[set[str]]],
        path: Path,
        files: dict[str, Path],
        report: ScanReport,
    ) -> set[str]:
        try:
            return await handler(path, files, report)
        except Exception as error:  # noqa: BLE001 - one letter's failure must never stop the others
            report.failed[path.name] = f"{type(error).__name__}: {error}"
            # A scan's file name may carry a person's name: a digest tells repeats apart without writing it.
            log.warning("letters.failed", file=log_digest(path.name), error=report.failed[path.name])
            return set()

    async def _pdf_named(self, name: str, files: dict[str, Path]) -> Path | None:
        """The file of that name (case-insensitively: `SCAN.PDF` from a scanner), unless already moved this scan."""
        found = files.get(name) or {key.lower(): value for key, value in files.items()}.get(name.lower())
        return found if found is not None and await _exists(found) else None

    async def _sidecar(self, path: Path, files: dict[str, Path], report: ScanReport) -> set[str]:
        pdf_path = await self._pdf_named(f"{path.stem}.pdf", files)
        group = [p for p in (pdf_path, path) if p is not None]
        if any([await self._age(member) < self.settle_seconds for member in group]):
            report.waiting.append(path.name)
            return {member.name for member in group}
        if pdf_path is None and await self._age(path) < self.incomplete_seconds:
            report.waiting.append(path.name)
            return set()
        try:
            if pdf_path is None:
                raise LetterInvalid([LetterProblem(path.name, "(file)", "pdf_missing", {"name": f"{path.stem}.pdf"})])
            fields = parse_sidecar(await self._read(path), path.name)
            letter = await self._validate(pdf_path, fields, path.name)
        except LetterInvalid as invalid:
            await self._reject(group, path.stem, invalid.problems, report)
            return {member.name for member in group}
        await self._import([letter], group, path.stem, report)
        return {member.name for member in group}

    async def _manifest(self, path: Path, files: dict[str, Path], report: ScanReport) -> set[str]:
        if await self._age(path) < self.settle_seconds:
            report.waiting.append(path.name)
            return set()
        try:
            rows = parse_manifest(await self._read(path), path.name)
        except LetterInvalid as invalid:
            await self._reject([path], path.stem, invalid.problems, report)
            return set()
        listed = {await self._pdf_named(row.file, files) for row in rows if _is_plain_name(row.file)}
        present = [pdf for pdf in listed if pdf is not None]
        claimed = {pdf.name for pdf in present}
        if any([await self._age(pdf) < self.settle_seconds for pdf in present]):
            report.waiting.append(path.name)
            return claimed
        missing = [row for row in rows if _is_plain_name(row.file) and await self._pdf_named(row.file, files) is None]
        if missing and await self._age(path) < self.incomplete_seconds:
            report.waiting.append(path.name)  # the scanner may still be copying the PDFs in
            return claimed
        problems: list[LetterProblem] = []
        letters: list[ValidLetter] = []
        seen_files: set[str] = set()
        for row in rows:
            if not _is_plain_name(row.file):
                code = "not_plain_name" if row.file else "missing"
                problems.append(LetterProblem(row.source, "file", code, {"value": row.file}, row.line))
                continue
            if row.file.lower() in seen_files:
                problems.append(LetterProblem(row.source, "file", "listed_twice", {"value": row.file}, row.line))
                continue
            seen_files.add(row.file.lower())
            pdf_path = await self._pdf_named(row.file, files)
            if pdf_path is None:
                problems.append(LetterProblem(row.source, "file", "not_in_folder", {"value": row.file}, row.line))
                continue
            try:
                letter = await self._validate(pdf_path, row.fields, row.source, row.line)
            except LetterInvalid as invalid:
                problems.extend(invalid.problems)
                continue
            twin = next((other for other in letters if other.pdf == letter.pdf), None)
            if twin is not None:  # one scan is one letter (its key is the PDF's hash): a copy would vanish silently
                problems.append(LetterProblem(row.source, "file", "same_scan",
                                              {"value": row.file, "other": twin.pdf_path.name}, row.line))
                continue
            letters.append(letter)
        group = [path, *sorted(present)]
        if problems:
            await self._reject(group, path.stem, problems, report)
        else:
            await self._import(letters, group, path.stem, report)
        return claimed | {path.name}

    async def _validate(
        self, pdf_path: Path, fields: Mapping[str, object], source: str, line: int | None = None
    ) -> ValidLetter:
        pdf = await self._read(pdf_path)
        if not looks_like_pdf(pdf):
            raise LetterInvalid([LetterProblem(pdf_path.name, "(file)", "not_pdf")])
        metadata = validate_letter(fields, source, today=self.today(), pdf_pages=count_pdf_pages(pdf), line=line)
        return ValidLetter(pdf_path, pdf, metadata, dict(fields))

    # -- outcomes ---------------------------------------------------------------------------------------------------

    async def _import(self, letters: list[ValidLetter], group: list[Path], name: str, report: ScanReport) -> None:
        for letter in letters:
            await accept_letter(self.pipeline, letter.pdf, letter.pdf_path.name, letter.metadata,
                                source=f"letters:{letter.pdf_path.name}", submitted_fields=letter.fields)
        # Only now, every event durable: move the files out of the drop folder.
        destination = await asyncio.to_thread(self._move, group, PROCESSED)
        report.imported.append(name)
        log.info("letters.imported", batch=name, letters=len(letters), moved_to=str(destination))

    async def _reject(self, group: list[Path], name: str, problems: list[LetterProblem], report: ScanReport) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines = [render("folder_reason_header", self.language, stamp=stamp, count=len(problems)), ""]
        lines += [problem.describe(self.language) for problem in problems]
        reason = (f"{name}{REASON_SUFFIX}", "\n".join(lines) + "\n")
        await asyncio.to_thread(self._move, group, REJECTED, reason)
        report.rejected.append(name)
        # Field and problem code only: the values (an address, a name) are personal data and stay in the reason file.
        log.warning("letters.rejected", batch=name,
                    problems=[f"{problem.field}: {problem.code}" for problem in problems])

    def _move(self, group: list[Path], base: str, reason: tuple[str, str] | None = None) -> Path:
        """Move the entries still there into our folder `base` (processed/ or rejected/), or into a dated sub-folder
        of it when a name is taken there (scanners reuse names like scan0001.pdf), next to the reason file if one
        is given; the folder it went to.

        The letters root is opened once; `base` and the dated sub-folder are created and opened one level at a time
        relative to it, never through a link (safe_files.own_directory): swapping `rejected` for a link at any
        moment makes the move fail, never land elsewhere. The reason file is created new, entries are moved
        without replacing anything, and a link is moved as the link."""
        names = [member.name for member in group] + ([reason[0]] if reason else [])
        with open_directory(self.root) as root, own_directory(root, base) as base_fd:
            if not any(lexists_at(base_fd, name) for name in names):
                self._move_into(root, base_fd, group, reason)
                return self.root / base
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            with own_directory(base_fd, stamp) as target:
                self._move_into(root, target, group, reason)
            return self.root / base / stamp

    @staticmethod
    def _move_into(root: int, target: int, group: list[Path], reason: tuple[str, str] | None) -> None:
        if reason is not None:
            write_new_file(target, reason[0], reason[1].encode("utf-8"))
        for member in group:
            if lexists_at(root, member.name):
                move_entry(root, member.name, target)

    # -- the watcher ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                report = await self.scan_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - NATS down or a file locked: keep the files, try again
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("letters.scan_failed", error=self.last_error)
            else:
                self.totals["imported"] += len(report.imported)
                self.totals["rejected"] += len(report.rejected)
                observability.mail_refused("letters", "letter_rejected", len(report.rejected))
                self.waiting = len(report.waiting)
                self.last_error = "; ".join(f"{name}: {error}" for name, error in report.failed.items()) or None
            await asyncio.sleep(self.poll_seconds)

    def status(self) -> dict[str, object]:
        """For the health endpoint: batches imported and rejected since start, files waiting, the last failure."""
        return {"letters": {"folder": str(self.root), **{f"{key}_since_start": value for key, value in
                                                          self.totals.items()},
                            "waiting": self.waiting, "last_error": self.last_error}}

    async def start(self) -> None:
        await asyncio.to_thread(self.prepare)
        self._task = asyncio.create_task(self.run(), name="letters-folder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
