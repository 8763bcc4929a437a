"""The letters drop folder never follows a symbolic link (issue 10): a link planted in the folder is rejected with a
reason, its target is neither read nor moved, and reason files are written only inside the service's own folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.intake.letter_support import make_pdf, metadata
from tests.intake.test_letter_folder import folder_for, letters_in_stream, pipeline  # noqa: F401 - fixture

SECRET = "root:x:0:0:the target of a planted link:/root:/bin/bash\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the drop folder, like /etc/passwd: what a planted link points to."""
    target = tmp_path / "elsewhere" / "passwd"
    target.parent.mkdir()
    target.write_text(SECRET)
    os.chmod(target, 0o644)
    return target


def untouched(target: Path, before: os.stat_result) -> bool:
    after = os.stat(target)
    return target.read_text() == SECRET and after.st_ino == before.st_ino and after.st_atime == before.st_atime


async def test_a_sidecar_that_is_a_link_to_a_file_outside_is_rejected_unread(  # noqa: F811 - the fixture
        nats_server, pipeline, tmp_path, outside):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    (root / "scan.pdf").write_bytes(make_pdf(2))
    (root / "scan.json").symlink_to(outside)
    os.utime(outside, (1_000_000, 1_000_000))  # a read would move the access time on (relatime: it is older)
    before = os.stat(outside)
    report = await folder.scan_once()
    assert untouched(outside, before)
    assert "scan.json" in report.rejected
    # The link itself was moved into rejected/ (still a link, still pointing outside), with its reason.
    moved = root / "rejected" / "scan.json"
    assert moved.is_symlink() and os.readlink(moved) == str(outside)
    reason = (root / "rejected" / "scan.json.reason.txt").read_text()
    assert "lien symbolique refusé" in reason and SECRET not in reason
    assert await letters_in_stream(nats_server.url) == []


async def test_a_pdf_that_is_a_link_is_rejected_and_its_target_not_moved(nats_server, pipeline, tmp_path,  # noqa: F811
                                                                         outside):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    (root / "lettre.pdf").symlink_to(outside)
    (root / "lettre.json").write_text(json.dumps(metadata()))
    before = os.stat(outside)
    report = await folder.scan_once()
    assert untouched(outside, before) and outside.exists()
    assert "lettre.pdf" in report.rejected
    assert (root / "rejected" / "lettre.pdf").is_symlink()
    assert "symbolic" in (root / "rejected" / "lettre.pdf.reason.txt").read_text() or \
        "lien symbolique" in (root / "rejected" / "lettre.pdf.reason.txt").read_text()
    assert await letters_in_stream(nats_server.url) == []


async def test_a_rejected_folder_replaced_by_a_link_is_never_written_through(  # noqa: F811 - the fixture
        nats_server, pipeline, tmp_path, outside):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    elsewhere = outside.parent
    (root / "rejected").rmdir()
    (root / "rejected").symlink_to(elsewhere)  # someone with write access to the drop folder
    (root / "notes.txt").write_text("pas un courrier")
    os.utime(root / "notes.txt", (0, 0))  # old enough to be rejected as "not a letter" at once
    from services.intake.letters.safe_files import UnsafeEntry

    with pytest.raises(UnsafeEntry, match="not a directory of ours"):  # the scan fails, logged, retried later
        await folder.scan_once()
    assert sorted(os.listdir(elsewhere)) == ["passwd"]  # nothing written or moved there
    assert (root / "notes.txt").exists()


async def test_a_fifo_in_the_folder_does_not_block_the_scan(nats_server, pipeline, tmp_path):  # noqa: F811
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    os.mkfifo(root / "scan.json")
    (root / "scan.pdf").write_bytes(make_pdf(2))
    report = await folder.scan_once()
    assert "scan.json" in report.rejected
    assert "pas un fichier ordinaire" in (root / "rejected" / "scan.json.reason.txt").read_text()


# -- Security review of issue 10: races between a check and a use, and hard links ---------------------------------


def swap_for_link(folder: Path, elsewhere: Path) -> Path:
    """What someone with write access to the drop folder does between our check and our use: the folder moves aside
    and a link to `elsewhere` takes its name. Returns where the original folder went."""
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    folder.symlink_to(elsewhere, target_is_directory=True)
    return aside


def swap_rejected_once_checked(monkeypatch: pytest.MonkeyPatch, root: Path, elsewhere: Path) -> list[Path]:
    """Right after the folder answers "is this name taken in rejected/?", `rejected` is swapped for a link to
    `elsewhere` (once): the swap comes before the write and the move. Returns where the real folder went."""
    from services.intake.letters import folder as letter_folder, safe_files

    swapped: list[Path] = []
    real_exists = safe_files.lexists_at

    def swap_after_check(directory: int, name: str) -> bool:
        taken = real_exists(directory, name)
        if not swapped:
            swapped.append(swap_for_link(root / "rejected", elsewhere))
        return taken

    monkeypatch.setattr(letter_folder, "lexists_at", swap_after_check)
    return swapped


async def test_rejected_swapped_for_a_link_after_it_was_opened_receives_nothing(  # noqa: F811 - the fixture
        nats_server, pipeline, tmp_path, outside, monkeypatch):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    elsewhere = outside.parent
    (root / "notes.txt").write_text("pas un courrier")
    os.utime(root / "notes.txt", (0, 0))
    swapped = swap_rejected_once_checked(monkeypatch, root, elsewhere)
    report = await folder.scan_once()
    assert "notes.txt" in report.rejected and swapped
    assert sorted(os.listdir(elsewhere)) == ["passwd"]  # nothing written or moved through the link
    # Both landed in the folder that was opened, wherever it went.
    assert sorted(os.listdir(swapped[0])) == ["notes.txt", "notes.txt.reason.txt"]
    assert not (root / "notes.txt").exists()


async def test_rejected_swapped_for_a_link_before_the_dated_sub_folder_receives_nothing(  # noqa: F811
        nats_server, pipeline, tmp_path, outside, monkeypatch):
    """A name already taken in rejected/ sends the batch into a dated sub-folder: the reviewer's race was between the
    check of `rejected` and the creation of `rejected/<stamp>` by its full path, which followed the link (before the
    fix, this test found notes.txt and its reason file in elsewhere/<stamp>/)."""
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    elsewhere = outside.parent
    (root / "rejected" / "notes.txt").write_text("rejected last week")
    (root / "notes.txt").write_text("pas un courrier")
    os.utime(root / "notes.txt", (0, 0))
    swapped = swap_rejected_once_checked(monkeypatch, root, elsewhere)
    report = await folder.scan_once()
    assert "notes.txt" in report.rejected and swapped
    assert sorted(os.listdir(elsewhere)) == ["passwd"]
    [stamp] = [entry for entry in os.listdir(swapped[0]) if entry != "notes.txt"]
    assert sorted(os.listdir(swapped[0] / stamp)) == ["notes.txt", "notes.txt.reason.txt"]
    assert (swapped[0] / "notes.txt").read_text() == "rejected last week"  # never replaced


async def test_a_hard_link_to_a_file_outside_is_rejected_unread(nats_server, pipeline, tmp_path,  # noqa: F811
                                                                 outside):
    root = tmp_path / "letters"
    folder = folder_for(root, pipeline)
    (root / "scan.pdf").write_bytes(make_pdf(2))
    os.link(outside, root / "scan.json")  # same file system: the drop folder's name for /etc/passwd
    os.utime(outside, (1_000_000, 1_000_000))  # a read would move the access time on
    before = os.stat(outside)
    report = await folder.scan_once()
    assert untouched(outside, before)
    assert "scan.json" in report.rejected
    reason = (root / "rejected" / "scan.json.reason.txt").read_text()
    assert "lien physique" in reason and SECRET not in reason
    assert await letters_in_stream(nats_server.url) == []


def test_a_hard_link_made_after_the_listing_is_refused_when_opened(tmp_path, outside):
    from services.intake.letters.safe_files import UnsafeEntry, read_regular_file

    os.link(outside, tmp_path / "scan.json")
    with pytest.raises(UnsafeEntry, match="hard link"):
        read_regular_file(tmp_path / "scan.json")


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-unlink"])
def test_move_entry_never_replaces_and_moves_a_link_as_itself(tmp_path, outside, monkeypatch, renameat2):
    from services.intake.letters import safe_files

    if not renameat2:
        monkeypatch.setattr(safe_files, "_renameat2", None)
    elif safe_files._renameat2 is None:
        from tests.conftest import require_or_skip

        require_or_skip("this libc has no renameat2 (glibc >= 2.28 has it)")
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    target.mkdir()
    (source / "taken.pdf").write_text("new")
    (target / "taken.pdf").write_text("already there")
    (source / "link.pdf").symlink_to(outside)
    with safe_files.open_directory(source) as src, safe_files.open_directory(target) as dst:
        with pytest.raises(FileExistsError):
            safe_files.move_entry(src, "taken.pdf", dst)
        safe_files.move_entry(src, "link.pdf", dst)
    assert (source / "taken.pdf").read_text() == "new"
    assert (target / "taken.pdf").read_text() == "already there"
    assert (target / "link.pdf").is_symlink() and os.readlink(target / "link.pdf") == str(outside)
    assert not os.path.lexists(source / "link.pdf")
    assert outside.read_text() == SECRET and os.stat(outside).st_nlink == 1


def test_own_directory_walks_one_level_at_a_time_and_refuses_a_link_at_any_level(tmp_path, outside):
    from services.intake.letters.safe_files import UnsafeEntry, open_directory, own_directory

    root = tmp_path / "letters"
    root.mkdir()
    with open_directory(root) as descriptor:
        with own_directory(descriptor, "rejected", "20261124T100000000000") as stamped:
            assert stamped >= 0
        assert (root / "rejected" / "20261124T100000000000").is_dir()
        (root / "processed").symlink_to(outside.parent, target_is_directory=True)
        with pytest.raises(UnsafeEntry, match="not a directory of ours"):
            with own_directory(descriptor, "processed", "x") as never:
                raise AssertionError(f"a link was followed ({never})")
        with pytest.raises(UnsafeEntry):
            with own_directory(descriptor, "../elsewhere") as never:
                raise AssertionError(f"a parent was reached ({never})")
    assert sorted(os.listdir(outside.parent)) == ["passwd"]
