"""Scanned postal letters: the metadata staff record with each scan, and its validation (pure, no I/O).

A letter's metadata comes from a JSON sidecar next to its PDF, a row of a CSV manifest for a batch, or the
`key: value` lines of a copier's scan-to-email (see `scan_to_email.py`); all three give the same flat mapping of
field names to values, validated here. Every invalid field is reported, each with a message naming the file and the
field, so that staff fix everything in one go. The legal start date of a letter is the date it was received (stamped
on arrival), never the time it was scanned or imported. The formats are documented in `docs/intake-letters.md`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from pypdf import PdfReader

from services.intake.letters.messages import render

LANGUAGES = ("fr", "nl", "de", "en")

# Field names, as written in sidecars, manifests and scan-to-email bodies; French aliases because the staff who fill
# them in work in French first (a Belgian or French mediation service).
FIELD_ALIASES: dict[str, str] = {
    "complainant_name": "complainant_name",
    "name": "complainant_name",
    "nom": "complainant_name",
    "postal_address": "postal_address",
    "address": "postal_address",
    "adresse": "postal_address",
    "email": "email",
    "courriel": "email",
    "language": "language",
    "langue": "language",
    "received_on": "received_on",
    "date_received": "received_on",
    "date_reception": "received_on",
    "postmarked_on": "postmarked_on",
    "postmark_date": "postmarked_on",
    "date_cachet": "postmarked_on",
    "pages": "pages",
    "archive_reference": "archive_reference",
    "reference_archive": "archive_reference",
    "staff_member": "staff_member",
    "agent": "staff_member",
    "subject": "subject",
    "objet": "subject",
    "notes": "notes",
    # Facts screening uses (docs/registry-rules.md), when the staff member who read the letter can state them.
    "facts_date": "facts_date",
    "date_faits": "facts_date",
    "last_step_date": "last_step_date",
    "date_derniere_demarche": "last_step_date",
    "first_line_contacted": "first_line_contacted",
    "premiere_ligne": "first_line_contacted",
    "file": "file",
    "fichier": "file",
}
REQUIRED_FIELDS = (
    "complainant_name", "postal_address", "language", "received_on", "pages", "archive_reference", "staff_member",
)
MAX_TEXT_LENGTH = 2000
MAX_PAGES = 2000
# A letter cannot have been posted long before it arrived; beyond this the date is surely mistyped.
MAX_POSTAL_DELAY_DAYS = 366
# Deliberately loose (RFC 5321 allows far more than any form should); the point is catching a mistyped field.
EMAIL_PATTERN = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")
# Yes and no as staff write them in a form or a spreadsheet, in the four languages.
YES = frozenset({"yes", "y", "true", "1", "oui", "o", "ja", "j", "vrai", "waar", "wahr"})
NO = frozenset({"no", "n", "false", "0", "non", "nee", "nein", "faux", "onwaar", "falsch"})


@dataclass(frozen=True)
class LetterProblem:
    """One invalid field of one letter: where (file, manifest line), which field, and what, as a message code with
    its parameters so that staff read it in their language (`letter_messages`)."""

    source: str
    field: str
    code: str
    params: Mapping[str, object] = field(default_factory=dict)
    line: int | None = None  # of a CSV manifest

    def message(self, language: str = "en") -> str:
        return render(self.code, language, **self.params)

    def describe(self, language: str = "en") -> str:
        where = self.source if self.line is None else f"{self.source}, {render('line', language, number=self.line)}"
        return f"{where}: {self.field}: {self.message(language)}"

    def __str__(self) -> str:
        return self.describe("en")


@dataclass(frozen=True)
class LetterMetadata:
    """The validated metadata of one scanned letter."""

    complainant_name: str
    postal_address: str
    language: str
    received_on: date
    pages: int
    archive_reference: str
    staff_member: str
    email: str | None = None
    postmarked_on: date | None = None
    subject: str = ""
    notes: str = ""
    facts_date: date | None = None
    last_step_date: date | None = None
    first_line_contacted: bool | None = None


class LetterInvalid(ValueError):
    """The metadata of a letter (or of a batch) is invalid; `problems` lists every invalid field."""

    def __init__(self, problems: list[LetterProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems))

    def report(self, language: str = "en") -> str:
        return "\n".join(problem.describe(language) for problem in self.problems) + "\n"


def letter_message_key(pdf: bytes) -> str:
    """The identity of a letter: its scan. The same PDF dropped twice (or mailed by the copier twice) is one letter."""
    return "letter-" + hashlib.sha256(pdf).hexdigest()


def normalise_fields(raw: Mapping[str, object]) -> tuple[dict[str, object], list[str]]:
    """Map aliases to canonical field names; return the unknown keys separately so they can be reported."""
    fields: dict[str, object] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        canonical = FIELD_ALIASES.get(str(key).strip().lower().replace("-", "_").replace(" ", "_"))
        if canonical is None:
            unknown.append(str(key))
        else:
            fields[canonical] = value
    return fields, unknown


def parse_date(value: object) -> date | None:
    """The date written in one of `DATE_FORMATS`, or None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def validate_letter(
    raw: Mapping[str, object], source: str, *, today: date, pdf_pages: int | None = None, line: int | None = None
) -> LetterMetadata:
    """Validate one letter's metadata; raise `LetterInvalid` listing every invalid field.

    `source` names the file (and `line` the manifest line) in every message. `today` is passed in so that this stays pure
    and testable; a receipt date in the future is a typing mistake. `pdf_pages`, when the PDF's page count is known,
    must agree with the declared number of pages (a page missing from the scan is a lost part of the complaint).
    """
    fields, unknown = normalise_fields(raw)
    problems: list[LetterProblem] = [LetterProblem(source, key, "unknown_field", line=line) for key in unknown]

    def problem(field: str, code: str, **params: object) -> None:
        problems.append(LetterProblem(source, field, code, params, line))

    for name in REQUIRED_FIELDS:
        if not _text(fields.get(name)):
            problem(name, "missing")
    for name in ("complainant_name", "postal_address", "archive_reference", "staff_member", "subject", "notes"):
        if len(_text(fields.get(name))) > MAX_TEXT_LENGTH:
            problem(name, "too_long", limit=MAX_TEXT_LENGTH)

    email = _text(fields.get("email")) or None
    if email is not None and not EMAIL_PATTERN.match(email):
        problem("email", "not_email", value=email)

    language = _text(fields.get("language")).lower()
    if language and language not in LANGUAGES:
        problem("language", "bad_language", value=language, choices=", ".join(LANGUAGES))

    received_on: date | None = None
    if _text(fields.get("received_on")):
        received_on = parse_date(fields["received_on"])
        if received_on is None:
            problem("received_on", "not_date", value=_text(fields["received_on"]))
        elif received_on > today:
            problem("received_on", "future", value=received_on.isoformat())

    postmarked_on: date | None = None
    if _text(fields.get("postmarked_on")):
        postmarked_on = parse_date(fields["postmarked_on"])
        if postmarked_on is None:
            problem("postmarked_on", "not_date", value=_text(fields["postmarked_on"]))
        elif received_on is not None and postmarked_on > received_on:
            problem("postmarked_on", "postmark_after_receipt", value=postmarked_on.isoformat(),
                    received=received_on.isoformat())
        elif received_on is not None and (received_on - postmarked_on).days > MAX_POSTAL_DELAY_DAYS:
            problem("postmarked_on", "postmark_too_old", value=postmarked_on.isoformat(),
                    received=received_on.isoformat())

    stated: dict[str, date | None] = {}
    for name in ("facts_date", "last_step_date"):
        stated[name] = None
        if _text(fields.get(name)):
            stated[name] = parse_date(fields[name])
            if stated[name] is None:
                problem(name, "not_date", value=_text(fields[name]))
            elif received_on is not None and stated[name] > received_on:
                problem(name, "after_receipt", value=stated[name].isoformat(), received=received_on.isoformat())
    first_line: bool | None = None
    answer = _text(fields.get("first_line_contacted")).lower()
    if answer:
        first_line = True if answer in YES else False if answer in NO else None
        if first_line is None:
            problem("first_line_contacted", "not_yes_no", value=answer)

    pages = 0
    if _text(fields.get("pages")):
        try:
            pages = int(_text(fields["pages"]))
        except ValueError:
            problem("pages", "not_whole_number", value=_text(fields["pages"]))
        else:
            if not 1 <= pages <= MAX_PAGES:
                problem("pages", "pages_out_of_range", value=pages, limit=MAX_PAGES)
            elif pdf_pages is not None and pdf_pages != pages:
                problem("pages", "pages_mismatch", value=pages, actual=pdf_pages)

    if problems:
        raise LetterInvalid(problems)
    assert received_on is not None  # guaranteed by the required-field check above
    return LetterMetadata(
        complainant_name=_text(fields["complainant_name"]),
        postal_address=_text(fields["postal_address"]),
        language=language,
        received_on=received_on,
        pages=pages,
        archive_reference=_text(fields["archive_reference"]),
        staff_member=_text(fields["staff_member"]),
        email=email,
        postmarked_on=postmarked_on,
        subject=_text(fields.get("subject")),
        notes=_text(fields.get("notes")),
        facts_date=stated["facts_date"],
        last_step_date=stated["last_step_date"],
        first_line_contacted=first_line,
    )


def looks_like_pdf(content: bytes) -> bool:
    """A PDF starts with `%PDF-` (ISO 32000-1 7.5.2), possibly after a little junk some scanners prepend."""
    return b"%PDF-" in content[:1024]


# Bounds on reading a scan's page count: a scan larger than this, or claiming more pages than a letter has
# (`MAX_PAGES`), is not believed, and the count staff declared stands.
MAX_PDF_BYTES = 200 * 1024 * 1024
# pypdf warns about every repair it makes on a malformed file; those are no news for our logs.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def count_pdf_pages(content: bytes) -> int | None:
    """The page count of a scan, read by pypdf from its page tree (ISO 32000-1 7.7.3.2, `/Count` of the root
    `/Pages`), compressed object streams (PDF 1.5) and incremental updates included; None when it cannot be told
    (not a PDF, encrypted, broken, or beyond the bounds above): the declared count is then trusted.

    pypdf reads only the cross-reference table, the catalog and the root of the page tree for this: no page is
    parsed, whatever the file's size."""
    if len(content) > MAX_PDF_BYTES:
        return None
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            return None
        count = len(reader.pages)
    except Exception:  # noqa: BLE001 - pypdf raises many kinds on malformed files; the declared count stands
        return None
    return count if 1 <= count <= MAX_PAGES else None


@dataclass(frozen=True)
class ManifestRow:
    """One letter of a CSV manifest: the PDF it names and its raw fields; `source` and `line` say where it is."""

    source: str
    line: int
    file: str
    fields: dict[str, str]


def parse_sidecar(content: bytes, source: str) -> dict[str, object]:
    """The fields of a JSON sidecar: one JSON object."""
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LetterInvalid([LetterProblem(source, "(file)", "bad_json", {"error": str(error)})]) from None
    if not isinstance(data, dict):
        raise LetterInvalid([LetterProblem(source, "(file)", "not_json_object")])
    return data


def parse_manifest(content: bytes, source: str) -> list[ManifestRow]:
    """The rows of a CSV manifest: a header line naming the fields, then one letter per line.

    Spreadsheets in French locales save CSV with `;`, others with `,`: both are accepted. A byte-order mark
    (Excel's UTF-8) is ignored. Excel's plain "CSV" on Windows is Windows-1252: UTF-8 is tried first, since accented
    Windows-1252 text is almost never valid UTF-8, then Windows-1252.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("cp1252")
        except UnicodeDecodeError as error:
            raise LetterInvalid([LetterProblem(source, "(file)", "bad_text", {"error": str(error)})]) from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    file_columns = [name for name in reader.fieldnames or [] if normalise_fields({name: ""})[0].keys() == {"file"}]
    if not file_columns:
        raise LetterInvalid([LetterProblem(source, "file", "no_file_column")])
    rows: list[ManifestRow] = []
    for row in reader:
        values = {key: (value or "") for key, value in row.items() if key is not None}
        if not any(value.strip() for value in values.values()):
            continue  # a trailing blank line of a spreadsheet export
        file = values.pop(file_columns[0]).strip()
        rows.append(ManifestRow(source, reader.line_num, file, values))
    if not rows:
        raise LetterInvalid([LetterProblem(source, "(file)", "empty_manifest")])
    return rows
