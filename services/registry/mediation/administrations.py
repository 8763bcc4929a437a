"""The administration concerned as a party to the file (issue 15), pure rules without I/O.

- The directory of services and administrations: `DirectoryEntry` (a stable key, name, correspondence addresses,
  postal address, language, contact person, its own answer deadline in days), checked by `checked_entry` (every
  problem named, as a code staff read translated), read from TOML by `parse_directory_toml` (the example is
  `administrations.example.toml`), found for a file by `match_entry` from its free-text `service_concerned`.
- A request for its position: due `answer_days` calendar days after the request, a reminder to the administration
  `reminder_days` before that (`request_dates`), a "no answer" warning to the handler once the due date has passed
  (`alerts_due`): each at most once, the handler stores when it went out.
- How fast administrations answer (`answer_statistics`): count, answered, unanswered, median and 90th percentile of
  the days taken, per administration, for the annual indicators.

The administration's reply is filed in the file's thread with the party "administration" and is never shown to the
citizen unless staff decide so; `hidden_from_citizen` is the one rule every reader of the thread applies (the
References of a notice to the citizen never name it, nor our requests to the administration).
"""

from __future__ import annotations

import re
import statistics
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from services.registry.indicators import nearest_rank_percentile
from shared.events import clean_staff_text

LANGUAGES = ("fr", "nl", "de", "en")
# The party of a thread entry written by (or to) an administration (`models.ThreadMessage.party`), and the role its
# addresses have among the file's parties (`models.CaseParty.role`): admitted to that file only.
ADMINISTRATION = "administration"
# The notices of this correspondence (the notifier's kinds): to the administration, never to the citizen.
REQUEST_NOTICE = "position_request"
REMINDER_NOTICE = "position_reminder"
ADMINISTRATION_NOTICES = frozenset({REQUEST_NOTICE, REMINDER_NOTICE})
# `DeadlineApproaching` / `DeadlineMissed.deadline_kind` of a position request's deadline.
DEADLINE_KIND = "position_request"

KEY_MAX = 100
NAME_MAX = 300
EMAILS_MAX = 10
ANSWER_DAYS_MAX = 365
_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
# An address as the register keys it: one @, no spaces or angle brackets, a dotted domain (RFC 5321 limits).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@" + _LABEL + r"(?:\." + _LABEL + r")+")


class InvalidEntry(ValueError):
    """An entry of the directory that cannot be stored; `problems` maps each field to a code (translated by the
    back office, `administrations.error.<code>`)."""

    def __init__(self, problems: Mapping[str, str], where: str = "") -> None:
        self.problems = dict(problems)
        super().__init__(f"{where}{'; '.join(f'{name}: {code}' for name, code in self.problems.items())}")


@dataclass(frozen=True)
class DirectoryEntry:
    key: str
    name: str
    emails: tuple[str, ...] = ()
    postal_address: str | None = None
    language: str = "fr"
    contact_person: str = ""
    answer_days: int = 30
    active: bool = True

    @property
    def writable(self) -> bool:
        """A request can reach it: by email, else as a printed letter."""
        return bool(self.emails or self.postal_address)


def _clean_line(value: Any, limit: int) -> str:
    text = " ".join(str(value or "").split())
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")[:limit + 1]


def _clean_block(value: Any) -> str | None:
    lines = [_clean_line(line, NAME_MAX) for line in str(value or "").splitlines()]
    text = "\n".join(line for line in lines if line)
    return text or None


def split_emails(value: Any) -> list[str]:
    """Addresses given as a list or as one text (comma, semicolon, space or line separated), lower case, in order."""
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,;]+", str(value or ""))
    return list(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))


def valid_email(address: str) -> bool:
    return len(address) <= 254 and _EMAIL.fullmatch(address) is not None


def checked_entry(*, key: Any, name: Any, emails: Any = (), postal_address: Any = None, language: Any = "fr",
                  contact_person: Any = "", answer_days: Any = 30, active: Any = True) -> DirectoryEntry:
    """The entry as stored, or `InvalidEntry` naming every problem: a key of lower-case letters, digits, dots,
    dashes and underscores; a name; valid addresses (at most 10); one of the four languages; 1 to 365 days to
    answer; an email address or a postal address to write to."""
    problems: dict[str, str] = {}
    key_text = str(key or "").strip().lower()
    if not _KEY.fullmatch(key_text):
        problems["key"] = "key"
    name_text = _clean_line(name, NAME_MAX)
    if not name_text:
        problems["name"] = "required"
    elif len(name_text) > NAME_MAX:
        problems["name"] = "too_long"
    addresses = split_emails(emails)
    if len(addresses) > EMAILS_MAX or not all(valid_email(a) for a in addresses):
        problems["emails"] = "emails"
    postal = _clean_block(postal_address)
    if postal is not None and len(postal) > 1000:
        problems["postal_address"] = "too_long"
    language_text = str(language or "").strip().lower()
    if language_text not in LANGUAGES:
        problems["language"] = "language"
    contact = _clean_line(contact_person, NAME_MAX)
    if len(contact) > NAME_MAX:
        problems["contact_person"] = "too_long"
    try:
        days = int(str(answer_days).strip()) if not isinstance(answer_days, bool) else -1
    except ValueError:
        days = -1
    if not 1 <= days <= ANSWER_DAYS_MAX:
        problems["answer_days"] = "answer_days"
    if not addresses and postal is None and "emails" not in problems:
        problems["emails"] = "no_address"
    if not isinstance(active, bool):
        problems["active"] = "active"
    if problems:
        raise InvalidEntry(problems)
    return DirectoryEntry(key=key_text, name=name_text, emails=tuple(addresses), postal_address=postal,
                          language=language_text, contact_person=contact, answer_days=days, active=active)


def parse_directory_toml(text: str) -> list[DirectoryEntry]:
    """The `[[administration]]` entries of a TOML directory, each checked; `InvalidEntry` names the first entry that
    is not valid (by its position and key), a duplicated key too. Unknown fields are refused (a typo would
    otherwise silently drop a value)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidEntry({"file": "toml"}, f"not TOML ({error}): ") from None
    raw = document.get("administration", [])
    if not isinstance(raw, list) or set(document) - {"administration"}:
        raise InvalidEntry({"file": "layout"}, "expected only [[administration]] tables: ")
    known = {"key", "name", "emails", "postal_address", "language", "contact_person", "answer_days", "active"}
    entries: list[DirectoryEntry] = []
    seen: set[str] = set()
    for position, item in enumerate(raw, start=1):
        where = f"entry {position} ({str(item.get('key', '?'))[:KEY_MAX]}): " if isinstance(item, dict) else \
            f"entry {position}: "
        if not isinstance(item, dict):
            raise InvalidEntry({"entry": "layout"}, where)
        unknown = sorted(set(item) - known)
        if unknown:
            raise InvalidEntry({name[:40]: "unknown_field" for name in unknown[:5]}, where)
        try:
            entry = checked_entry(**item)
        except InvalidEntry as error:
            raise InvalidEntry(error.problems, where) from None
        if entry.key in seen:
            raise InvalidEntry({"key": "duplicate"}, where)
        seen.add(entry.key)
        entries.append(entry)
    return entries


def _folded(text: str) -> str:
    """Compared without case, accents or spacing differences ("SPF  Finances" = "spf finances")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def match_entry(service_concerned: str | None, entries: Iterable[DirectoryEntry]) -> DirectoryEntry | None:
    """The directory entry a file's free-text `service_concerned` names: by key (screening's service id) first,
    then by name; None when nothing (or more than one entry by name) matches: the text stays as it is."""
    wanted = _folded(service_concerned or "")
    if not wanted:
        return None
    candidates = [entry for entry in entries if entry.active]
    by_key = [entry for entry in candidates if entry.key == wanted]
    if by_key:
        return by_key[0]
    by_name = [entry for entry in candidates if _folded(entry.name) == wanted]
    return by_name[0] if len(by_name) == 1 else None


# --- a request for the administration's position --------------------------------------------------------------------
@dataclass(frozen=True)
class RequestDates:
    due: date
    remind_on: date | None


def request_dates(requested_on: date, answer_days: int, reminder_days: int) -> RequestDates:
    """The answer is due `answer_days` calendar days after the request (the administration's own deadline); the
    reminder goes `reminder_days` before that, unless that day is not after the request (no reminder: a reminder
    on the day of the request, or 0 days, would say nothing)."""
    if answer_days < 1:
        raise ValueError("an administration is given at least one day to answer")
    due = requested_on + timedelta(days=answer_days)
    remind_on = due - timedelta(days=reminder_days) if reminder_days > 0 else None
    return RequestDates(due=due, remind_on=remind_on if remind_on and remind_on > requested_on else None)


class AlertKind(StrEnum):
    REMINDER = "reminder"  # a reminder to the administration, and the handler told the deadline approaches
    NO_ANSWER = "no_answer"  # the deadline passed without an answer: the handler is warned


@dataclass(frozen=True)
class OpenRequest:
    """What `alerts_due` needs of a stored request."""

    due: date
    remind_on: date | None
    answered: bool = False
    reminded: bool = False
    missed: bool = False


def alerts_due(request: OpenRequest, today: date) -> tuple[AlertKind, ...]:
    """What is due today and not yet sent: the reminder from its day until the due date (a reminder after the
    deadline would only say it passed: the handler's warning says that), the warning once the due date is over.
    An answered request raises nothing."""
    if request.answered:
        return ()
    due: list[AlertKind] = []
    if request.remind_on is not None and not request.reminded and request.remind_on <= today <= request.due:
        due.append(AlertKind.REMINDER)
    if not request.missed and today > request.due:
        due.append(AlertKind.NO_ANSWER)
    return tuple(due)


def hidden_from_citizen(*, party: str | None, citizen_visible: bool | None, notice_kind: str | None) -> bool:
    """A thread entry the citizen must not learn of: the administration's messages staff did not share, and our
    requests and reminders to it."""
    if notice_kind in ADMINISTRATION_NOTICES:
        return True
    return party == ADMINISTRATION and not citizen_visible


def request_text(value: str) -> str:
    """The questions staff put to the administration, cleaned and bounded by the very rule the notifier applies to
    staff's text (`shared.events.clean_staff_text`), so that a request is refused here rather than dead-lettered
    there (`ValueError` says why)."""
    try:
        return clean_staff_text(value)
    except ValueError as error:
        raise ValueError(f"a request for a position: {error}") from None


# --- how fast administrations answer (annual indicators) -------------------------------------------------------------
@dataclass(frozen=True)
class RequestOutcome:
    """One request of the year: to whom, and after how many days it was answered (None: not answered)."""

    administration: str
    answer_days: int | None
    overdue: bool = False  # unanswered and its deadline passed


@dataclass(frozen=True)
class AnswerFigures:
    requests: int
    answered: int
    unanswered: int
    overdue: int
    median_days: float | None
    p90_days: int | None
    by_administration: Mapping[str, AnswerFigures] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "answered": self.answered, "unanswered": self.unanswered,
                "overdue": self.overdue, "median_days": self.median_days, "p90_days": self.p90_days,
                **({"by_administration": {name: figures.as_dict() for name, figures in self.by_administration.items()}}
                   if self.by_administration else {})}


def _figures(outcomes: Sequence[RequestOutcome]) -> AnswerFigures:
    days = [o.answer_days for o in outcomes if o.answer_days is not None]
    return AnswerFigures(requests=len(outcomes), answered=len(days), unanswered=len(outcomes) - len(days),
                         overdue=sum(1 for o in outcomes if o.answer_days is None and o.overdue),
                         median_days=round(float(statistics.median(days)), 1) if days else None,
                         p90_days=nearest_rank_percentile(days, 90))


def answer_statistics(outcomes: Sequence[RequestOutcome]) -> AnswerFigures:
    """Count, answered, unanswered (and overdue among them), median and 90th percentile (nearest rank, as the
    handling time of `indicators`) of the calendar days taken, in all and per administration (by name, in
    alphabetical order)."""
    total = _figures(outcomes)
    names = sorted({o.administration for o in outcomes}, key=_folded)
    per = {name: _figures([o for o in outcomes if o.administration == name]) for name in names}
    return AnswerFigures(**{**total.__dict__, "by_administration": per})
