"""MIME structure (pure): the readable text and the attachments of a message, whatever its shape.

Handles multipart/alternative (plain text preferred, HTML converted when it is the only version), mixed, related,
nested message/rfc822 (kept as an attachment and handed back for forward detection), RFC 2231 file names
(`filename*=utf-8''...`), RFC 2047 encoded names, uuencode, and TNEF `winmail.dat` (Outlook's rich text
transport, unpacked with tnefparse). Attachments are opaque bytes: never opened, unpacked or executed (the corpus
carries real malware in zip files). Limits on nesting, number of parts and decoded size raise `MimeLimitExceeded`,
which the pipeline turns into a quarantine.
"""

from __future__ import annotations

import binascii
import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from email.message import Message

from services.intake.message.charsets import decode_bytes, decode_header_value
from services.intake.message.html_text import html_to_text
from services.intake.message.large_parts import LargeParts
from services.intake.message.reports import REPORT_PARTS


class MimeLimitExceeded(Exception):
    """The message is beyond what intake parses (absurd nesting, too many parts, zip-bomb-like size)."""


@dataclass(frozen=True)
class MimeLimits:
    max_depth: int = 12
    max_parts: int = 500
    max_decoded_bytes: int = 100 * 1024 * 1024


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class MimeContent:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    embedded: list[Message] = field(default_factory=list)
    reports: list[Message] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        if self.plain:
            return "\n\n".join(part.strip("\n") for part in self.plain).strip()
        return "\n\n".join(html_to_text(part) for part in self.html).strip()


# Magic numbers of the types citizens attach; a declared type is kept when nothing here matches.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"WEBP", 8, "image/webp"),
    (b"{\\rtf", 0, "application/rtf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x78\x9f\x3e\x22", 0, "application/ms-tnef"),
)
_OOXML = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}


def sniff_content_type(data: bytes, declared: str, filename: str) -> str:
    """The type the bytes really are when recognisable; a zip keeps its office type from the name (never unpacked)."""
    for signature, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return content_type
    if data[:4] == b"PK\x03\x04":
        extension = filename.rpartition(".")[2].lower()
        return _OOXML.get(extension, "application/zip")
    declared = (declared or "").lower()
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


_UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]')


def safe_filename(name: str | None, index: int, content_type: str) -> str:
    """A name safe on any file system and in any header: no path, no control characters, no hidden file."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _UNSAFE_CHARACTERS.sub("_", text).strip().lstrip(".").strip()
    if len(text) > 150:
        stem, dot, extension = text.rpartition(".")
        text = (stem[: 150 - len(extension) - 1] + dot + extension) if dot and len(extension) <= 10 else text[:150]
    if not text:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        text = f"attachment-{index}{extension}"
    return text


class _Walker:
    def __init__(self, limits: MimeLimits, large: LargeParts) -> None:
        self.limits = limits
        self.large = large
        self.content = MimeContent()
        self.parts = 0
        self.decoded_bytes = 0

    def walk(self, part: Message, depth: int = 0, in_alternative: bool = False) -> None:
        self.parts += 1
        if depth > self.limits.max_depth:
            raise MimeLimitExceeded(f"MIME nesting deeper than {self.limits.max_depth} levels")
        if self.parts > self.limits.max_parts:
            raise MimeLimitExceeded(f"more than {self.limits.max_parts} MIME parts")
        for defect in getattr(part, "defects", []) or []:
            self.content.defects.append(f"mime: {type(defect).__name__}")
        content_type = part.get_content_type()
        if part.is_multipart():
            self._multipart(part, content_type, depth)
            return
        disposition = (part.get_content_disposition() or "").lower()
        filename = self._filename(part)
        if content_type in {"text/plain", "text/html"} and disposition != "attachment" and not filename:
            text = self._text(part)
            (self.content.plain if content_type == "text/plain" else self.content.html).append(text)
            return
        if content_type in REPORT_PARTS or content_type == "text/rfc822-headers":
            # RFC 6522 report parts (and the original's headers) for reports.py and bounces.py; a TLS report's
            # JSON stays an opaque attachment as well.
            self.content.reports.append(part)
        self._attachment(part, filename, content_type)

    def _multipart(self, part: Message, content_type: str, depth: int) -> None:
        children = part.get_payload()
        if not isinstance(children, list):
            self.content.defects.append(f"mime: {content_type} without parts")
            return
        if content_type == "message/rfc822" or content_type == "message/global":
            for inner in children:
                if isinstance(inner, Message):
                    self._embedded(inner, depth)
            return
        if content_type in REPORT_PARTS:
            # The parser stores a delivery-status part as header blocks and an MDN or ARF part as an embedded
            # message whose headers are the report's fields: report data, never text nor a forwarded original.
            self.content.reports.append(part)
            return
        if content_type == "multipart/alternative":
            self._alternative(children, depth)
            return
        for child in children:
            if isinstance(child, Message):
                self.walk(child, depth + 1)

    def _alternative(self, children: list[Message], depth: int) -> None:
        """Only the best version counts as text (RFC 2046 5.1.4: the last one the reader understands, plain wins)."""
        plain = [child for child in children if isinstance(child, Message) and child.get_content_type() == "text/plain"]
        others = [child for child in children if isinstance(child, Message) and child not in plain]
        if plain:
            for child in plain:
                self.walk(child, depth + 1)
            for child in others:
                if child.get_content_type() != "text/html" and child.is_multipart():
                    # multipart/related inside alternative carries the inline images of the HTML version.
                    self._attachments_only(child, depth + 1)
            return
        for child in others:
            self.walk(child, depth + 1)

    def _attachments_only(self, part: Message, depth: int) -> None:
        sub = _Walker(self.limits, self.large)
        sub.parts = self.parts
        sub.decoded_bytes = self.decoded_bytes
        sub.walk(part, depth)
        self.parts, self.decoded_bytes = sub.parts, sub.decoded_bytes
        self.content.attachments.extend(sub.content.attachments)
        self.content.embedded.extend(sub.content.embedded)
        self.content.defects.extend(sub.content.defects)

    def _embedded(self, inner: Message, depth: int) -> None:
        self.content.embedded.append(inner)
        try:
            data = inner.as_bytes()
        except Exception:  # noqa: BLE001 - an embedded message that cannot be re-serialised is kept as text
            data = str(inner).encode("utf-8", "surrogateescape")
        data = self.large.restore(data, self._budget())
        subject = decode_header_value(inner.get("Subject"), self.content.defects, "embedded subject")
        name = safe_filename(f"{subject[:80]}.eml" if subject else "", len(self.content.attachments) + 1, "message/rfc822")
        self._count(len(data))
        self.content.attachments.append(Attachment(name, "message/rfc822", data))
        # Walk the embedded message for its own attachments' limits (nesting counted), not for the outer text.
        probe = _Walker(self.limits, self.large)
        probe.parts, probe.decoded_bytes = self.parts, self.decoded_bytes
        probe.walk(inner, depth + 1)
        self.parts, self.decoded_bytes = probe.parts, probe.decoded_bytes

    def _filename(self, part: Message) -> str | None:
        try:
            name = part.get_filename()
        except Exception:  # noqa: BLE001 - a broken RFC 2231 parameter is a defect, not a crash
            self.content.defects.append("mime: unreadable file name")
            return None
        if name is None:
            return None
        return decode_header_value(name, self.content.defects, "file name") or None

    def _payload(self, part: Message) -> bytes:
        payload = part.get_payload()
        token = self.large.token_in(payload) if isinstance(payload, str) else None
        if token is not None:
            encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
            try:
                if encoding == "base64":
                    data = self.large.decode_base64(payload, token, self._budget())
                else:
                    data = self.large.restore(part.get_payload(decode=True) or b"", self._budget())
            except binascii.Error:
                self.content.defects.append("mime: undecodable transfer encoding")
                data = self.large.restore(payload.encode("ascii", "replace"), self._budget())
            self._count(len(data))
            return data
        try:
            data = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - bad base64/uuencode: keep the raw payload
            self.content.defects.append("mime: undecodable transfer encoding")
            data = None
        if data is None:
            raw = part.get_payload()
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        self._count(len(data))
        return data

    def _budget(self) -> int:
        """The bytes a cut-out part may still expand to (large_parts checks it before expanding anything)."""
        return self.limits.max_decoded_bytes - self.decoded_bytes

    def _count(self, size: int) -> None:
        self.decoded_bytes += size
        if self.decoded_bytes > self.limits.max_decoded_bytes:
            raise MimeLimitExceeded(f"decoded content larger than {self.limits.max_decoded_bytes} bytes")

    def _text(self, part: Message) -> str:
        data = self._payload(part)
        return decode_bytes(data, part.get_content_charset(), self.content.defects, part.get_content_type())

    def _attachment(self, part: Message, filename: str | None, declared: str) -> None:
        data = self._payload(part)
        if declared == "application/ms-tnef" or (filename or "").lower() == "winmail.dat":
            if self._tnef(data):
                return
        index = len(self.content.attachments) + 1
        content_type = sniff_content_type(data, declared, filename or "")
        self.content.attachments.append(Attachment(safe_filename(filename, index, content_type), content_type, data))

    def _tnef(self, data: bytes) -> bool:
        """Unpack Outlook's winmail.dat into its body and files; on failure it stays one opaque attachment."""
        try:
            from tnefparse.tnef import TNEF

            tnef = TNEF(data)
        except Exception as error:  # noqa: BLE001 - tnefparse raises many kinds on malformed streams
            self.content.defects.append(f"tnef: unreadable winmail.dat ({type(error).__name__})")
            return False
        body = getattr(tnef, "body", None)
        if body:
            self.content.plain.append(body.decode("cp1252", "replace") if isinstance(body, bytes) else str(body))
        elif getattr(tnef, "htmlbody", None):
            html = tnef.htmlbody
            self.content.html.append(html.decode("cp1252", "replace") if isinstance(html, bytes) else str(html))
        for item in tnef.attachments:
            try:
                name = item.long_filename() or item.name
            except Exception:  # noqa: BLE001
                name = getattr(item, "name", None)
            if isinstance(name, bytes):
                name = name.decode("cp1252", "replace")
            payload = item.data if isinstance(item.data, bytes) else bytes(item.data or b"")
            self._count(len(payload))
            index = len(self.content.attachments) + 1
            content_type = sniff_content_type(payload, "application/octet-stream", name or "")
            self.content.attachments.append(Attachment(safe_filename(name, index, content_type), content_type, payload))
        return True


def extract_content(message: Message, limits: MimeLimits, large: LargeParts | None = None) -> MimeContent:
    walker = _Walker(limits, large or LargeParts())
    walker.walk(message)
    return walker.content
