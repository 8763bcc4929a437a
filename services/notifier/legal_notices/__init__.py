"""Legal notices per jurisdiction, versioned by effective date (issue 15): the appeal-deadline sentence and the
second-line ombudsman sentence of citizen notices.

Each jurisdiction has one TOML file in this folder (`be.toml`, `fr.toml`); a deployment replaces it with its own
file of the same name in `legal_notices_dir`. A file lists versions, each with an `id`, the date it takes effect
(`effective_from`), the sources its statements rest on, whether they were checked against those sources
(`verified`), and its texts in French, Dutch, German and English. The version in force on a day is the latest whose
`effective_from` is on or before it; a date before the first version takes the first (the file's oldest text is the
best known for earlier days).

A change of law is a *new* version with its date, never an edit of a version in use: each notice records the id of
the version it carried (`notices.legal_notice_version`), and `LegalNotices.version(id)` gives that text back.

Pure but for `load_legal_notices`, which reads the file once at start-up; every problem of a file raises
`LegalNoticesError` naming the file and what is wrong, so the notifier refuses to start instead of writing a blank.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

SHIPPED_DIR = Path(__file__).resolve().parent
LANGUAGES = ("fr", "nl", "de", "en")
# Where the second-line ombudsman's name and contact go in the `second_line` sentence.
NAME, CONTACT = "{name}", "{contact}"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class LegalNoticesError(ValueError):
    """A legal-notice file is missing or invalid (the message names the file and the problem)."""


class _Strict(BaseModel):
    # A typo in a key must not silently drop a legal sentence.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalTexts(_Strict):
    """One version's sentences in one language."""

    # What handling by our service does to the time limits of an appeal (printed as is).
    appeal_deadlines: Text
    # Where a citizen not satisfied with our answer may turn; `{name}` and `{contact}` are replaced by the
    # second-line ombudsman's (the deployment's `second_line_*` settings, else `second_line_name` and
    # `second_line_contact` below).
    second_line: Text
    second_line_name: Text
    second_line_contact: Text

    @field_validator("second_line")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        missing = [marker for marker in (NAME, CONTACT) if marker not in value]
        if missing:
            raise ValueError(f"must contain {' and '.join(missing)}")
        return value

    def second_line_sentence(self, name: str, contact: str) -> str:
        # str.replace, not str.format: a brace in a contact or a translation is text, not a field.
        return self.second_line.replace(NAME, name).replace(CONTACT, contact)


class LegalNoticeVersion(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    effective_from: date
    # The legal texts the statements rest on (for maintainers; never printed).
    sources: tuple[str, ...] = ()
    # Whether the statements were checked against those sources by someone able to; false is said in the docs.
    verified: bool = False
    fr: LegalTexts
    nl: LegalTexts
    de: LegalTexts
    en: LegalTexts

    def texts(self, language: str) -> LegalTexts:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        return getattr(self, language)


class LegalNotices(_Strict):
    """A jurisdiction's versions, oldest first (validated: at least one, unique ids and dates, in date order)."""

    jurisdiction: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    versions: tuple[LegalNoticeVersion, ...] = Field(min_length=1)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, versions: tuple[LegalNoticeVersion, ...]) -> tuple[LegalNoticeVersion, ...]:
        ids = [version.id for version in versions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate version id(s): {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
        dates = [version.effective_from for version in versions]
        if dates != sorted(set(dates)):
            raise ValueError("versions must be listed oldest first, one per effective_from date")
        return versions

    def in_force(self, on: date) -> LegalNoticeVersion:
        """The version in force on `on`: the latest taking effect on or before it (the first for earlier days)."""
        current = self.versions[0]
        for version in self.versions[1:]:
            if version.effective_from <= on:
                current = version
        return current

    def version(self, version_id: str) -> LegalNoticeVersion:
        """A version by the id a notice recorded (to reproduce what it said)."""
        for version in self.versions:
            if version.id == version_id:
                return version
        raise KeyError(f"{self.jurisdiction}: no legal-notice version {version_id!r}")


_JURISDICTION = re.compile(r"^[A-Za-z]{2}$")


def notices_file(jurisdiction: str, override_dir: Path | None = None) -> Path:
    """The file of `jurisdiction`: the deployment's `<code>.toml` when it has one, else the shipped one."""
    if not _JURISDICTION.match(jurisdiction):
        raise LegalNoticesError(f"jurisdiction must be a two-letter code (BE, FR); got {jurisdiction!r}")
    name = f"{jurisdiction.lower()}.toml"
    if override_dir is not None and (override_dir / name).is_file():
        return override_dir / name
    return SHIPPED_DIR / name


def parse_legal_notices(text: str, source: str) -> LegalNotices:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LegalNoticesError(f"{source}: invalid TOML: {error}") from error
    try:
        return LegalNotices.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in problem['loc']) or '(file)'}: {problem['msg']}"
                             for problem in error.errors(include_url=False, include_input=False))
        raise LegalNoticesError(f"{source}: {problems}") from None


def load_legal_notices(jurisdiction: str = "BE", override_dir: Path | None = None) -> LegalNotices:
    """Read and validate the jurisdiction's file (the deployment's, else the shipped one)."""
    path = notices_file(jurisdiction, override_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LegalNoticesError(f"no legal notices for jurisdiction {jurisdiction.upper()}: cannot read {path}: "
                                f"{error.strerror}") from error
    notices = parse_legal_notices(text, str(path))
    if notices.jurisdiction != jurisdiction.upper():
        raise LegalNoticesError(f"{path}: jurisdiction {notices.jurisdiction} where {jurisdiction.upper()} was asked")
    return notices
