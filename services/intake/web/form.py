"""The public complaint form, read and checked (pure, no I/O): what admissibility needs — who writes and how to
answer them, the service concerned, the facts and their date, whether the service was contacted first and what it
answered, what is asked — each field bounded, kept as typed when something is wrong, with one error key per field.

The citizen's words become the complaint's text under headings in their language, so that the register's screening
and staff read one document; the facts screening weighs also travel as fields (`facts_date`,
`first_line_contacted`, `last_step_date`), as for a scanned letter.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

from shared.i18n import Catalog
from shared.mailbox import MAX_MAILBOX, plain_mailbox

# Bounds of each text field, in characters (the complaint's own text fields are far larger than a letter's page).
LIMITS = {"name": 200, "email": MAX_MAILBOX, "postal_address": 500, "service": 200, "subject": 200, "facts": 20_000,
          "first_line_answer": 5_000, "request": 5_000}
REQUIRED = ("name", "email", "service", "subject", "facts", "first_line", "request", "consent")
TEXT_FIELDS = ("name", "email", "postal_address", "service", "subject", "facts", "first_line_answer", "request")
FIRST_LINE_CHOICES = ("yes", "no")
# Facts older than this are still taken (screening decides), but a date before it is surely a typing error.
OLDEST_FACTS = date(1950, 1, 1)
# Control characters a browser never sends in a text field (tabs and line breaks stay).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass
class ComplaintForm:
    """The submitted form: values as typed (trimmed), and the message key of each wrong field's error."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    facts_date: date | None = None
    first_line_contacted: bool | None = None
    first_line_date: date | None = None

    @property
    def valid(self) -> bool:
        return not self.errors


def clean_text(value: object, limit: int) -> str:
    """NFC, no control characters, CRLF as LF, trimmed; cut at `limit` + 1 so that "too long" is still seen."""
    text = unicodedata.normalize("NFC", str(value or "")[: limit * 4])
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()[: limit + 1]


def read_date(value: str, today: date) -> tuple[date | None, bool]:
    """(the date, whether it is acceptable): empty is acceptable (unknown), the future and before 1950 are not."""
    if not value:
        return None, True
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None, False
    return parsed, OLDEST_FACTS <= parsed <= today + timedelta(days=1)


def read_form(raw: dict[str, object], today: date) -> ComplaintForm:
    """The submitted fields checked; `raw` maps names to what the browser sent (files are checked elsewhere)."""
    values = {name: clean_text(raw.get(name), LIMITS[name]) for name in TEXT_FIELDS}
    values["email"] = values["email"].lower() if values["email"].isascii() else values["email"]
    values["first_line"] = str(raw.get("first_line") or "")[:8]
    values["consent"] = "yes" if str(raw.get("consent") or "") == "yes" else ""
    values["facts_date"] = str(raw.get("facts_date") or "").strip()[:10]
    values["first_line_date"] = str(raw.get("first_line_date") or "").strip()[:10]
    form = ComplaintForm(values)
    for name in REQUIRED:
        if not values.get(name):
            form.errors[name] = f"form.error.{name}_required"
    for name, limit in LIMITS.items():
        if len(values[name]) > limit:
            form.errors[name] = "form.error.too_long"
    if values["email"] and "email" not in form.errors and not plain_mailbox(values["email"]):
        form.errors["email"] = "form.error.email"
    if values["first_line"] and values["first_line"] not in FIRST_LINE_CHOICES:
        form.errors["first_line"] = "form.error.first_line_required"
    form.first_line_contacted = {"yes": True, "no": False}.get(values["first_line"])
    form.facts_date, facts_ok = read_date(values["facts_date"], today)
    if not facts_ok:
        form.errors["facts_date"] = "form.error.date"
    form.first_line_date, first_line_ok = read_date(values["first_line_date"], today)
    if not first_line_ok:
        form.errors["first_line_date"] = "form.error.date"
    return form


def complaint_text(form: ComplaintForm, catalog: Catalog, language: str) -> str:
    """The citizen's words under headings in their language: one text for screening and for staff."""
    t = catalog.translator(language)
    values = form.values
    first_line = t("form.answer.yes") if form.first_line_contacted else t("form.answer.no")
    parts = [
        f"{t('form.field.service')}: {values['service']}",
        f"{t('form.field.facts_date')}: {form.facts_date.isoformat() if form.facts_date else t('form.unknown')}",
        "",
        f"{t('form.field.facts')}:",
        values["facts"],
        "",
        f"{t('form.field.first_line')}: {first_line}"
        + (f" ({form.first_line_date.isoformat()})" if form.first_line_date else ""),
    ]
    if values["first_line_answer"]:
        parts += [f"{t('form.field.first_line_answer')}:", values["first_line_answer"]]
    parts += ["", f"{t('form.field.request')}:", values["request"]]
    return "\n".join(parts)
