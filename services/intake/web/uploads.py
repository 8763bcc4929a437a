"""Documents attached to the public form, checked before anything is kept (pure): how many, how large, and that
each is what its name says — a PDF starts with `%PDF-`, a PNG and a JPEG with their signatures, an office document
is a ZIP container, a text is UTF-8 — so that a file is never taken on its name's word (the browser's content type
is the sender's claim too, and is ignored). The stored content type is ours, from the check.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from services.intake.message.mime import Attachment

# Extension -> (content type we store, the signatures its content may start with; empty: checked otherwise).
ALLOWED: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    ".odt": ("application/vnd.oasis.opendocument.text", (b"PK\x03\x04",)),
    ".txt": ("text/plain; charset=utf-8", ()),
}
MAX_FILENAME = 120


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def safe_filename(name: str) -> str:
    """The last component of what the browser sent (some send a whole Windows path), without control characters,
    bounded; "document" when nothing is left."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    cleaned = cleaned.strip().lstrip(".")
    if len(cleaned) > MAX_FILENAME:
        stem, dot, extension = cleaned.rpartition(".")
        cleaned = (stem[: MAX_FILENAME - len(extension) - 1] + dot + extension) if dot and len(extension) <= 10 \
            else cleaned[:MAX_FILENAME]
    return cleaned or "document"


def check_upload(upload: Upload, max_bytes: int) -> tuple[Attachment | None, str | None]:
    """(the attachment, None) or (None, the error's message key)."""
    filename = safe_filename(upload.filename)
    extension = PurePosixPath(filename.lower()).suffix
    if extension not in ALLOWED:
        return None, "form.error.file_type"
    if not upload.data:
        return None, "form.error.file_empty"
    if len(upload.data) > max_bytes:
        return None, "form.error.file_too_large"
    content_type, signatures = ALLOWED[extension]
    if signatures and not upload.data.startswith(signatures):
        return None, "form.error.file_content"
    if not signatures:
        try:
            upload.data.decode("utf-8")
        except UnicodeDecodeError:
            return None, "form.error.file_content"
    return Attachment(filename=filename, content_type=content_type, data=upload.data), None


def check_uploads(uploads: list[Upload], *, max_count: int, max_bytes: int) -> tuple[list[Attachment], str | None]:
    """Every upload checked; the first error's key (the form then keeps nothing of the files and says why)."""
    if len(uploads) > max_count:
        return [], "form.error.too_many_files"
    attachments: list[Attachment] = []
    for upload in uploads:
        attachment, error = check_upload(upload, max_bytes)
        if error is not None:
            return [], error
        attachments.append(attachment)  # type: ignore[arg-type]
    return attachments, None
