"""File-system calls for a folder other people write into (the letters drop folder, often an SMB share): never follow
a symbolic link, never read anything but a regular file, never overwrite, write only inside our own directories.

Anyone who may drop a scan may also plant a symbolic link named `scan.pdf` pointing at `/etc/shadow` or at another
service's files, or replace `rejected/` by a link to somewhere else. Hence:
- an entry is examined with `lstat` (the link itself, not its target) before anything else;
- files are opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a planted FIFO cannot block the reader), then `fstat`
  checks that what was opened is a regular file;
- a regular file with more than one name (`st_nlink > 1`) is refused unread: someone who may write into the folder
  can plant a hard link to a file elsewhere on the same file system, which no `O_NOFOLLOW` can tell apart;
- our sub-folders are reached from a descriptor on the letters root, one level at a time: `mkdirat` then `openat`
  with `O_DIRECTORY | O_NOFOLLOW` relative to the parent's descriptor (`dir_fd`), never by a path of several
  components, whose earlier components the kernel would follow (O_NOFOLLOW covers the last one only). A folder
  swapped for a link after any check cannot redirect a write: the swap makes the open fail (ELOOP / ENOTDIR);
- files are created with `O_EXCL`: an existing name (or a link planted under it) is never written through;
- entries are moved without any check-then-act: `renameat2(RENAME_NOREPLACE)` where the kernel and the file system
  have it, else `linkat` (which never replaces a name) then `unlinkat`, all relative to directory descriptors.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The largest file read from the drop folder: far above any scanned letter (a 2,000-page scan at 300 dpi).
MAX_READ_BYTES = 1024 * 1024 * 1024


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeEntry(OSError):
    """A directory entry that is not what it must be (a symbolic link, a hard link, a device, a FIFO, a directory)."""


def entry_kind(path: Path) -> str:
    """'file', 'hardlink' (a regular file with other names), 'symlink', 'directory' or 'other', from `lstat` (the
    entry itself, never what a link points to)."""
    info = os.lstat(path)
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "hardlink" if info.st_nlink > 1 else "file"
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
        if info.st_nlink > 1:  # checked on what was opened: a link made after a listing is caught too
            raise UnsafeEntry(f"{path.name} is a hard link (the file has other names)")
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


def _not_ours(name: str) -> UnsafeEntry:
    return UnsafeEntry(f"{name} is not a directory of ours (a symbolic link or a file is in its place)")


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


@contextmanager
def open_directory(path: Path) -> Iterator[int]:
    """A descriptor on the directory `path` itself (`O_NOFOLLOW`: never on what a link there points to). For the
    folder the operator configured (the letters root); what is below it is reached with `own_directory`."""
    try:
        descriptor = os.open(path, _DIRECTORY_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_ours(path.name) from None
        raise
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def open_own_directory(parent: int, name: str) -> int:
    """A new descriptor on the sub-folder `name` of the open directory `parent`, created if missing (`mkdirat`),
    opened relative to `parent` with `O_DIRECTORY | O_NOFOLLOW`: a link or a file in its place is refused, whenever
    it was put there. The caller closes the descriptor."""
    if not _is_plain_name(name):
        raise UnsafeEntry(f"{name!r} is not a single folder name")
    try:
        os.mkdir(name, 0o750, dir_fd=parent)
    except FileExistsError:
        pass
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_ours(name) from None
        raise


@contextmanager
def own_directory(parent: int, *names: str) -> Iterator[int]:
    """A descriptor on `parent/names[0]/names[1]/…`, each level created if missing and opened relative to the one
    above (`open_own_directory`), never through a link; `parent` itself when no name is given."""
    opened: list[int] = []
    try:
        current = parent
        for name in names:
            current = open_own_directory(current, name)
            opened.append(current)
        yield current
    finally:
        for descriptor in reversed(opened):
            os.close(descriptor)


def ensure_own_directory(path: Path) -> None:
    """Create `path` (its parent being the folder the operator configured) as a directory of ours, or check that it
    is one: a symbolic link or a file in its place is refused."""
    with open_directory(path.parent) as parent, own_directory(parent, path.name):
        pass


def lexists_at(directory: int, name: str) -> bool:
    """Whether the open `directory` has an entry `name` (a dangling link exists too)."""
    try:
        os.lstat(name, dir_fd=directory)
    except FileNotFoundError:
        return False
    return True


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


# renameat2(2) flag (linux/fs.h): fail with EEXIST rather than replace the target.
_RENAME_NOREPLACE = 1
# The answers of a kernel or file system without renameat2 / RENAME_NOREPLACE (CIFS, NFS, old kernels).
_NOREPLACE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def _libc_renameat2() -> object | None:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28, or not Linux
        return None


_renameat2 = _libc_renameat2()


def _rename_noreplace(source: int, name: str, target: int) -> bool:
    """renameat2(source, name, target, name, RENAME_NOREPLACE); False where it is not available."""
    if _renameat2 is None:
        return False
    encoded = os.fsencode(name)
    if _renameat2(source, encoded, target, encoded, _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NOREPLACE_UNSUPPORTED:
        return False
    if code == errno.EEXIST:
        raise FileExistsError(code, f"{name} already exists where it was to be moved")
    raise OSError(code, os.strerror(code), name)


def move_entry(source: int, name: str, target: int) -> None:
    """Move the entry `name` (a link is moved as the link, its target untouched) from one open directory to another,
    never replacing an entry already there (`FileExistsError`), with no check-then-act in between: renameat2 with
    RENAME_NOREPLACE, else linkat (which fails on an existing name; AT_SYMLINK_FOLLOW not given, so a link is
    linked as itself) then unlinkat of the old name."""
    if _rename_noreplace(source, name, target):
        return
    os.link(name, name, src_dir_fd=source, dst_dir_fd=target, follow_symlinks=False)
    os.unlink(name, dir_fd=source)


def _zero(descriptor: int, size: int) -> None:
    block = b"\0" * (1024 * 1024)
    written = 0
    os.lseek(descriptor, 0, os.SEEK_SET)
    while written < size:
        written += os.write(descriptor, block[:min(len(block), size - written)])
    os.fsync(descriptor)


def erase_file_at(directory: int, name: str) -> bool:
    """Remove the entry `name` of the open `directory`; a regular file with this one name has its bytes zeroed first
    (on a file system that writes in place the old blocks then hold no personal data: docs/privacy.md). Anything
    else — a symbolic link, a hard link (a file with other names, perhaps outside the folder), a FIFO — is only
    unlinked, never written through. The zeroing goes through the descriptor whose `fstat` was checked, so a name
    swapped after a listing cannot redirect it. False when there was no such entry (or it is a directory)."""
    if not _is_plain_name(name):
        raise UnsafeEntry(f"{name!r} is not a single file name")
    try:
        descriptor: int | None = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                                         dir_fd=directory)
    except FileNotFoundError:
        return False
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EACCES, errno.EPERM, errno.ETXTBSY):
            raise
        descriptor = None  # a link (ELOOP), a FIFO nobody reads (ENXIO), a directory...: not written to
    if descriptor is not None:
        try:
            info = os.fstat(descriptor)
            if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                _zero(descriptor, info.st_size)
        finally:
            os.close(descriptor)
    try:
        os.unlink(name, dir_fd=directory)
    except (FileNotFoundError, IsADirectoryError):
        return False
    except OSError as error:
        if error.errno == errno.EISDIR:
            return False
        raise
    return True


def walk_regular_files(root: Path, top: str) -> Iterator[tuple[tuple[str, ...], str, os.stat_result]]:
    """(sub-folder names below `root/top`, file name, lstat) of every entry under `root/top` that is not a directory,
    its own sub-folders included; links are neither followed nor descended into (each level opened with
    `O_NOFOLLOW` relative to the one above). Nothing when `top` is missing or not a directory of ours."""
    try:
        root_descriptor = os.open(root, _DIRECTORY_FLAGS)
    except OSError:
        return  # no letters folder (yet), or a link in its place
    try:
        try:
            top_descriptor = os.open(top, _DIRECTORY_FLAGS, dir_fd=root_descriptor)
        except OSError:
            return
        yield from _walk_at(top_descriptor, ())
    finally:
        os.close(root_descriptor)


def _walk_at(descriptor: int, folders: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, os.stat_result]]:
    try:
        names = sorted(os.listdir(descriptor))
        for name in names:
            try:
                info = os.lstat(name, dir_fd=descriptor)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                try:
                    below = os.open(name, _DIRECTORY_FLAGS, dir_fd=descriptor)
                except OSError:
                    continue  # swapped for a link or removed since the listing
                yield from _walk_at(below, (*folders, name))
            else:
                yield folders, name, info
    finally:
        os.close(descriptor)
