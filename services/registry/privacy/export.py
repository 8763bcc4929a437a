"""The citizen's own data on request (GDPR art. 15, issue 16): one archive with everything the register holds about
one person, found by their email address.

What the archive (a zip) holds:

- `export.json`: every file where the person is the complainant or a party (`case_parties`: complainant,
  correspondent), whole — the complaint's record, its parties, every message in and out (the notices sent are the
  outgoing entries of the thread, as the notifier reported them), the change log, staff's notes, the requests for
  information and for an administration's position, recommendations, links, merges, legal holds and the personal
  links issued (their selector only: the hashed verifiers are secrets, not data about the person); the messages the
  person wrote into files that are not theirs (only those messages: the rest of such a file is another person's);
  the messages of theirs still in the holding pen; and which stored objects could not be read.
- `originals/<message key digest>.eml`: the raw original of each message, as intake stored it;
  `attachments/<object name>/<file name>`: each attachment, read from intake's object store over NATS
  (`backoffice.pages.file_originals.OriginalStore`, the same reads the file page makes).
- `summary.pdf`: a readable summary in the person's language (the language of their latest file), for the DPO to
  send with the rest.

Every read is bounded and indexed: the person's files by `complaints.complainant_email` and `case_parties.email`,
their messages elsewhere by `thread_messages.sender_email`, their held messages by `holding_pen.sender_email`
(the last two indexed by migration `0018_privacy_export`), then each table by its indexed `complaint_id`, in chunks
of `CHUNK` ids. A person with more than `MAX_FILES` files is refused (`TooManyFiles`): that is not a citizen but a
mailbox of an administration, and its export would be a copy of the register.

The audit trail gets one `export` entry per file exported (so that "who looked at this citizen's file?" shows the
export) and one for the export as a whole, none of them naming the person: the trail outlives an erasure and must
not become a copy of who asked (`details.kind = "personal_data"`, the export's id, the number of files).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tomllib
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import (
    Base,
    CaseParty,
    ChangeLogEntry,
    CitizenLink,
    Complaint,
    ComplaintLink,
    ComplaintMerge,
    ComplaintNote,
    HeldMessage,
    InformationRequest,
    LegalHold,
    PositionRequest,
    Recommendation,
    SurveyInvitation,
    ThreadMessage,
)
from services.registry.repository import RegistryStore
from services.registry.vocabulary import DEFAULT_LANGUAGE, LANGUAGES, label, primary_language

__all__ = ["ExportResult", "OriginalReader", "PersonData", "TooManyFiles", "audit_entries", "collect", "export_person",
           "normalise_email", "summary_pdf"]

FORMAT = "ombudsdesk-personal-data-export"
FORMAT_VERSION = 1
MAX_FILES = 2000
CHUNK = 500
# Columns never exported: secrets (hashed verifiers of personal links), or the whole event JSON a held message keeps
# besides its fields (its text is exported as `text`).
_SECRET_COLUMNS = frozenset({"verifier_hash"})
# SQLAlchemy's bookkeeping for multi-row inserts (migration 0020): nothing about the person.
_BOOKKEEPING_COLUMNS = frozenset({"insert_sentinel"})
_MESSAGES = tomllib.loads((Path(__file__).with_name("export_messages.toml")).read_text(encoding="utf-8"))
# The expression of migration 0018's index, written out: a bound parameter in its place would not match the index.
SENDER_PREFIX = literal_column("substr(thread_messages.sender_email, 1, 320)")
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


class TooManyFiles(ValueError):
    """More files than a person has: the address is a shared or an administration's mailbox (`MAX_FILES`)."""


class OriginalReader(Protocol):
    """Reads intake's stored objects by name (`OriginalStore`); raises `LookupError` for an object not there."""

    async def raw(self, name: str) -> bytes: ...

    async def attachment(self, object_name: str) -> bytes: ...


def normalise_email(email: str) -> str:
    """The address as the register keys it (lower case, no spaces around)."""
    return email.strip().lower()


def _value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _row(record: Base, *, leave_out: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of a row, as JSON values, but the secrets and what the caller leaves out."""
    skipped = _SECRET_COLUMNS | _BOOKKEEPING_COLUMNS | set(leave_out)
    return {column.key: _value(getattr(record, column.key)) for column in record.__table__.columns  # type: ignore[attr-defined]
            if column.key not in skipped}


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


@dataclass
class PersonData:
    """What the register holds about one address (rows, read in one snapshot)."""

    email: str
    complaints: list[Complaint] = field(default_factory=list)
    by_complaint: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    elsewhere: list[tuple[str, ThreadMessage]] = field(default_factory=list)  # (file number, their message)
    held: list[HeldMessage] = field(default_factory=list)

    @property
    def numbers(self) -> list[str]:
        return [c.number for c in self.complaints]

    def language(self) -> str:
        """The language of the person's latest file that names one; French otherwise."""
        for complaint in sorted(self.complaints, key=lambda c: c.received_at, reverse=True):
            if complaint.complainant_language and primary_language(complaint.complainant_language) in LANGUAGES:
                return primary_language(complaint.complainant_language)
        return DEFAULT_LANGUAGE


# The tables read per file, by their indexed `complaint_id` (links and merges by either side).
_PER_FILE: dict[str, tuple[type[Base], tuple[Any, ...]]] = {
    "parties": (CaseParty, (CaseParty.complaint_id,)),
    "thread": (ThreadMessage, (ThreadMessage.complaint_id,)),
    "changes": (ChangeLogEntry, (ChangeLogEntry.complaint_id,)),
    "notes": (ComplaintNote, (ComplaintNote.complaint_id,)),
    "information_requests": (InformationRequest, (InformationRequest.complaint_id,)),
    "position_requests": (PositionRequest, (PositionRequest.complaint_id,)),
    "recommendations": (Recommendation, (Recommendation.complaint_id,)),
    "legal_holds": (LegalHold, (LegalHold.complaint_id,)),
    "personal_links": (CitizenLink, (CitizenLink.complaint_id,)),
    "survey_invitations": (SurveyInvitation, (SurveyInvitation.complaint_id,)),
    "links": (ComplaintLink, (ComplaintLink.first_id, ComplaintLink.second_id)),
    "merges": (ComplaintMerge, (ComplaintMerge.source_id, ComplaintMerge.target_id)),
}


async def _file_ids(session: AsyncSession, email: str) -> list[int]:
    as_complainant = select(Complaint.id).where(Complaint.complainant_email == email)
    as_party = select(CaseParty.complaint_id).where(CaseParty.email == email)
    ids = sorted(set((await session.execute(as_complainant.union(as_party).limit(MAX_FILES + 1))).scalars()))
    if len(ids) > MAX_FILES:
        raise TooManyFiles(f"more than {MAX_FILES} files for one address")
    return ids


async def collect(store: RegistryStore, email: str) -> PersonData:
    """Read everything held about `email` (normalised here), in one read-only transaction."""
    data = PersonData(normalise_email(email))
    if not data.email:
        return data
    async with store.reading() as tx:
        session = tx.session
        ids = await _file_ids(session, data.email)
        data.by_complaint = {complaint_id: {key: [] for key in _PER_FILE} for complaint_id in ids}
        for chunk in _chunks(ids):
            data.complaints += (await session.execute(select(Complaint).where(Complaint.id.in_(chunk)))).scalars()
            for key, (entity, columns) in _PER_FILE.items():
                rows = (await session.execute(select(entity).where(or_(*(c.in_(chunk) for c in columns)))
                                              .order_by(entity.id))).scalars()  # type: ignore[attr-defined]
                for row in rows:
                    for column in columns:
                        owner = getattr(row, column.key)
                        if owner in data.by_complaint and (len(columns) == 1 or row not in data.by_complaint[owner][key]):
                            data.by_complaint[owner][key].append(row)
        data.complaints.sort(key=lambda c: (c.year, c.sequence))
        # Their messages in files that are not theirs (a message attached without admitting them as a party).
        mine = set(ids)
        rows = (await session.execute(
            select(Complaint.number, ThreadMessage).join(Complaint, Complaint.id == ThreadMessage.complaint_id)
            .where(SENDER_PREFIX == data.email).order_by(ThreadMessage.id).limit(MAX_FILES * 10)
        )).all()
        # The whole address compared here: with it in the WHERE clause, SQLite's planner scans instead of seeking.
        data.elsewhere = [(number, message) for number, message in rows
                          if message.complaint_id not in mine and message.sender_email == data.email]
        data.held = list((await session.execute(
            select(HeldMessage).where(HeldMessage.sender_email == data.email).order_by(HeldMessage.id)
            .limit(MAX_FILES * 10))).scalars())
    for parts in data.by_complaint.values():
        parts["thread"].sort(key=lambda m: (m.occurred_at, m.id))
    return data


# --- the archive -----------------------------------------------------------------------------------------------------
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def _safe_filename(name: str) -> str:
    """An attachment's name as a zip member: no directories, no controls, bounded (the name was a stranger's)."""
    cleaned = _UNSAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return cleaned[:120] or "attachment"


def _original_path(raw_object: str) -> str:
    # Object names are intake's (message-key based); a digest keeps the member name short and free of separators.
    return f"originals/{hashlib.sha256(raw_object.encode()).hexdigest()[:32]}.eml"


class _Objects:
    """The stored objects an export reads, each once, with those that could not be read."""

    def __init__(self, reader: OriginalReader | None, archive: zipfile.ZipFile) -> None:
        self.reader, self.archive = reader, archive
        self.read: dict[tuple[str, str], str | None] = {}  # (kind, name) -> its path, None when missing
        self.missing: list[dict[str, str]] = []

    async def _copy(self, kind: str, name: str, path: str) -> str | None:
        # A complaint's first message is both the complaint's and its thread's first entry: read once.
        if (kind, name) not in self.read:
            self.read[kind, name] = await self._read(kind, name, path)
        return self.read[kind, name]

    async def _read(self, kind: str, name: str, path: str) -> str | None:
        if self.reader is None:
            self.missing.append({"kind": kind, "object": name, "why": "object store not reachable"})
            return None
        try:
            data = await (self.reader.raw(name) if kind == "original" else self.reader.attachment(name))
        except LookupError:
            self.missing.append({"kind": kind, "object": name, "why": "not in the object store"})
            return None
        self.archive.writestr(path, data)
        return path

    async def message(self, values: dict[str, Any]) -> dict[str, Any]:
        """A message's JSON with the archive paths of its raw original and attachments."""
        raw = values.get("raw_object")
        values["raw_original_path"] = await self._copy("original", raw, _original_path(raw)) if raw else None
        attachments = []
        for attachment in values.get("attachments") or ():
            entry = dict(attachment) if isinstance(attachment, dict) else {"value": attachment}
            name = str(entry.get("object_name") or "")
            if name:
                path = f"attachments/{_safe_filename(name)}/{_safe_filename(str(entry.get('filename') or ''))}"
                entry["path"] = await self._copy("attachment", name, path)
            attachments.append(entry)
        values["attachments"] = attachments
        return values


async def _file_json(complaint: Complaint, parts: dict[str, list[Any]], objects: _Objects) -> dict[str, Any]:
    record = await objects.message(_row(complaint))
    record["parties"] = [_row(p) for p in parts["parties"]]
    thread = [await objects.message(_row(m)) for m in parts["thread"]]
    record["messages_received"] = [m for m in thread if m["direction"] == "in"]
    record["notices_sent"] = [m for m in thread if m["direction"] == "out"]
    for key in _PER_FILE:
        if key not in ("parties", "thread"):
            record[key] = [_row(row) for row in parts[key]]
    return record


async def _party_file_json(complaint: Complaint, parts: dict[str, list[Any]], objects: _Objects,
                           email: str) -> dict[str, Any]:
    """A file where the person is only a correspondent: their admission, their messages and the notices sent to
    them — the rest is the complainant's (and other parties') data, not theirs to receive (GDPR art. 15(4))."""
    thread = [m for m in parts["thread"]
              if (m.direction == "in" and (m.sender_email or "").lower() == email)
              or (m.direction == "out" and (m.recipient or "").lower() == email)]
    messages = [await objects.message(_row(m)) for m in thread]
    return {"number": complaint.number, "role": "correspondent", "status": complaint.status,
            "parties": [_row(p) for p in parts["parties"] if (p.email or "").lower() == email],
            "messages_received": [m for m in messages if m["direction"] == "in"],
            "notices_sent": [m for m in messages if m["direction"] == "out"]}


def _is_complainant(complaint: Complaint, parts: dict[str, list[Any]], email: str) -> bool:
    return (complaint.complainant_email or "").lower() == email or any(
        (p.email or "").lower() == email and p.role == "complainant" for p in parts["parties"])


@dataclass(frozen=True)
class ExportResult:
    archive: bytes
    export_id: str
    numbers: list[str]
    missing: list[dict[str, str]]
    language: str


async def export_person(store: RegistryStore, email: str, originals: OriginalReader | None, *, now: datetime,
                        zone: ZoneInfo, organisation: str = "", language: str | None = None) -> ExportResult:
    """The archive of everything held about `email`. `originals` None: the object store is not reachable (the
    archive then lists every original and attachment as missing, and says so)."""
    data = await collect(store, email)
    chosen = language if language in LANGUAGES else data.language()
    export_id = uuid.uuid4().hex
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        objects = _Objects(originals, archive)
        files = [await _file_json(c, data.by_complaint[c.id], objects)
                 if _is_complainant(c, data.by_complaint[c.id], data.email)
                 else await _party_file_json(c, data.by_complaint[c.id], objects, data.email)
                 for c in data.complaints]
        elsewhere = [{"number": number, **(await objects.message(_row(m)))} for number, m in data.elsewhere]
        held = [{**_row(h, leave_out=("event",)), "text": _held_text(h)} for h in data.held]
        document = {
            "format": FORMAT, "version": FORMAT_VERSION, "export_id": export_id, "generated_at": now.isoformat(),
            "email": data.email, "language": chosen, "files": files, "messages_in_other_files": elsewhere,
            "held_messages": held, "missing_objects": objects.missing,
        }
        archive.writestr("export.json", json.dumps(document, ensure_ascii=False, indent=2, default=str))
        archive.writestr("summary.pdf", summary_pdf(document, chosen, organisation=organisation,
                                                    day=now.astimezone(zone).date()))
    return ExportResult(buffer.getvalue(), export_id, data.numbers, objects.missing, chosen)


def audit_entries(result: ExportResult) -> list[tuple[str | None, dict[str, Any]]]:
    """The audit trail's entries of an export, as (number, details): one per file (so that the file's own trail shows
    it), then the export as a whole. None names the person: the trail outlives an erasure."""
    common = {"kind": "personal_data", "export_id": result.export_id}
    return [*((number, common) for number in result.numbers),
            (None, {**common, "files": len(result.numbers), "missing_objects": len(result.missing),
                    "language": result.language})]


def _held_text(held: HeldMessage) -> str:
    try:
        event = json.loads(held.event)
    except (TypeError, ValueError):
        return ""
    return str(event.get("text") or "") if isinstance(event, dict) else ""


# --- the readable summary --------------------------------------------------------------------------------------------
def _t(key: str, language: str, **values: Any) -> str:
    texts = _MESSAGES[key]
    return str(texts.get(language) or texts[DEFAULT_LANGUAGE]).format(**values)


def _day(value: str | None) -> str:
    return value[:10] if value else "-"


def _font(pdf: Any) -> tuple[str, bool]:
    """DejaVu Sans (every script a name may be written in) when installed; else the core font, Latin-1 only."""
    for folder in _FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdf.add_font("DejaVu", "", str(regular))
            pdf.add_font("DejaVu", "B", str(bold))
            return "DejaVu", True
    return "Helvetica", False


def summary_pdf(document: dict[str, Any], language: str, *, organisation: str, day: date) -> bytes:
    """The summary a citizen reads: each file's number, dates, kind, status, subject, the notices sent and the
    counts of what the JSON holds (pure: bytes out)."""
    from fpdf import FPDF  # loaded when a summary is made

    pdf = FPDF(format="A4", unit="mm")
    family, unicode_font = _font(pdf)

    def text(value: str) -> str:
        # Controls out (a stranger's subject line); the core font only knows Latin-1.
        cleaned = "".join(ch if ch == "\n" or ch >= " " else " " for ch in value)
        return cleaned if unicode_font else cleaned.encode("latin-1", "replace").decode("latin-1")

    def line(value: str, size: float = 10, style: str = "", height: float = 5) -> None:
        pdf.set_font(family, style, size)
        pdf.multi_cell(0, height, text(value), new_x="LMARGIN", new_y="NEXT")

    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(text(_t("title", language)))
    pdf.add_page()
    line(_t("title", language), 15, "B", 8)
    line(_t("intro", language, organisation=organisation, email=document["email"], day=day.isoformat(),
            files=len(document["files"])))
    pdf.ln(2)
    line(_t("contents", language), 9)
    for file in document["files"]:
        pdf.ln(3)
        line(f"{file['number']} - {file.get('subject_line') or _t('no_subject', language)}", 11, "B", 6)
        facts = [
            (_t("received", language), _day(file.get("received_at"))),
            (_t("kind", language), label(file["kind"], language) if file.get("kind") else "-"),
            (_t("status", language), label(file["status"], language)),
            (_t("service", language), file.get("service_concerned") or "-"),
            (_t("answer_due", language), _day(file.get("answer_due"))),
            (_t("outcome", language), label(file["outcome"], language) if file.get("outcome") else "-"),
            (_t("counts", language), _t("counts_value", language, received=len(file["messages_received"]),
                                        sent=len(file["notices_sent"]), changes=len(file.get("changes", [])))),
        ]
        for name, value in facts:
            line(f"{name}: {value}", 9.5)
        for notice in file["notices_sent"]:
            line(f"  - {_t('notice', language)} {_day(notice.get('occurred_at'))}: "
                 f"{notice.get('subject_line') or notice.get('notice_kind') or ''}", 9)
    if document["messages_in_other_files"] or document["held_messages"]:
        pdf.ln(3)
        line(_t("other_messages", language, elsewhere=len(document["messages_in_other_files"]),
                held=len(document["held_messages"])), 9.5)
    if document["missing_objects"]:
        pdf.ln(3)
        line(_t("missing", language, count=len(document["missing_objects"])), 9.5, "B")
    return bytes(pdf.output())
