"""File-system calls for a folder other people write into (the letters drop folder, often an SMB share): never follow
a symbolic link, never read anything but a regular file, never overwrite, write only inside our own directories.

Anyone who may drop a scan may also plant a symbolic link named `scan.pdf` pointing at `/etc/shadow` or at another
service's files, or replace `rejected/` by a link to somewhere else. Hence:
- an entry is examined with `lstat` (the link itself, not its target) before anything else;
- files are opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a planted FIFO cannot block the reader), then `fstat`
  checks that what was opened is a regular file;
- our sub-folders are opened with `O_DIRECTORY | O_NOFOLLOW`, and files are created and moved relative to those
  descriptors (`dir_fd`), so a folder swapped for a link between a check and a write cannot redirect the write;
- files are created with `O_EXCL`: an existing name (or a link planted under it) is never written through.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The largest file read from the drop folder: far above any scanned letter (a 2,000-page scan at 300 dpi).
MAX_READ_BYTES = 1024 * 1024 * 1024


class UnsafeEntry(OSError):
    """A directory entry that is not what it must be (a symbolic link, a device, a FIFO, a directory)."""


def entry_kind(path: Path) -> str:
    """'file', 'symlink', 'directory' or 'other', from `lstat` (the entry itself, never what a link points to)."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "other"


def lexists(path: Path) -> bool:
    return os.path.lexists(path)


def modified_at(path: Path) -> float:
    return os.lstat(path).st_mtime


def read_regular_file(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The content of `path`, only if it is a regular file itself (not a link to one); `UnsafeEntry` otherwise."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == 40:  # ELOOP: the last component is a symbolic link
            raise UnsafeEntry(f"{path.name} is a symbolic link") from None
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeEntry(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise UnsafeEntry(f"{path.name} is larger than {limit} bytes")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            raise UnsafeEntry(f"{path.name} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def ensure_own_directory(path: Path) -> None:
    """Create `path` as a directory, or check that it is one: a symbolic link in its place is refused."""
    try:
        os.mkdir(path, 0o750)
    except FileExistsError:
        pass
    if entry_kind(path) != "directory":
        raise UnsafeEntry(f"{path} is not a directory of ours (a symbolic link or a file is in its place)")


@contextmanager
def open_directory(path: Path) -> Iterator[int]:
    """A descriptor on the directory `path` itself (`O_NOFOLLOW`: never on what a link there points to)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def write_new_file(directory: int, name: str, content: bytes) -> None:
    """Create `name` in the open `directory`, refusing an existing name or link (`O_EXCL | O_NOFOLLOW`)."""
    descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640,
                         dir_fd=directory)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view):]
    finally:
        os.close(descriptor)


def move_entry(source: int, name: str, target: int) -> None:
    """Rename the entry `name` (a link is moved as the link, its target untouched) from one open directory to
    another, never replacing an entry already there."""
    try:
        os.lstat(name, dir_fd=target)
    except FileNotFoundError:
        os.rename(name, name, src_dir_fd=source, dst_dir_fd=target)
        return
    raise FileExistsError(f"{name} already exists where it was to be moved")
