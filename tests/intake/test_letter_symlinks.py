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
    from services.intake.safe_files import UnsafeEntry

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
