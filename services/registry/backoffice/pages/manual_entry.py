"""Manual entry: a complaint received by phone, at the counter (in person) or by post without a scan, typed in by
staff. The register screens and numbers it like any mail (`commands.RegisterManual`, the domain does both); this
page only checks the form, keeps what was typed when something is wrong (each error next to its field), and opens
the new file.

The person who typed it is the actor (the account), never a form field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shared.mailbox import plain_mailbox
from services.registry import commands
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.rendering import BASE_PATH, render
from services.registry.handlers import Conflict, Registry
from services.registry.vocabulary import LANGUAGES, Kind

router = APIRouter()
manual_entry_access = page_require(Permission.MANUAL_ENTRY)

# The channels a complaint can reach the office by without intake seeing it (the others arrive as mail).
CHANNELS = ("phone", "in_person", "letter")
KINDS = tuple(kind.value for kind in Kind)
# Bounds of what a person types (a pasted novel is refused with a message, not stored).
LIMITS = {"name": 200, "email": 254, "postal_address": 1000, "subject": 500, "text": 50_000}
# The form's own key (drawn when it is shown, kept across corrections): submitting the same form twice, a double
# click or a reload, registers one complaint (`RegisterManual.request_key`).
REQUEST_KEY = re.compile(r"[0-9a-f]{32}")
# The earliest date of receipt accepted: the deadline rules and holiday data do not reach further back.
EARLIEST = date(2000, 1, 1)


@dataclass
class ManualForm:
    """What the form holds, as typed, and the message key of each field's error."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    received_on: date | None = None


def read_form(raw: dict[str, Any], today: date) -> ManualForm:
    """The submitted form checked: kept as typed (trimmed), with an error key per wrong field."""
    values = {name: str(raw.get(name) or "").strip() for name in
              ("channel", "received_on", "name", "email", "postal_address", "language", "kind", "subject", "text",
               "request_key")}
    if not REQUEST_KEY.fullmatch(values["request_key"]):
        values["request_key"] = commands.new_request_key()
    form = ManualForm(values)
    errors = form.errors
    if values["channel"] not in CHANNELS:
        errors["channel"] = "manual_entry.error.channel"
    if values["language"] not in LANGUAGES:
        errors["language"] = "manual_entry.error.language"
    if values["kind"] not in KINDS:
        errors["kind"] = "manual_entry.error.kind"
    try:
        form.received_on = date.fromisoformat(values["received_on"])
    except ValueError:
        errors["received_on"] = "manual_entry.error.date"
    else:
        if form.received_on > today:
            errors["received_on"] = "manual_entry.error.date_future"
        elif form.received_on < EARLIEST:
            errors["received_on"] = "manual_entry.error.date_too_old"
    if values["email"] and not plain_mailbox(values["email"]):
        errors["email"] = "manual_entry.error.email"
    if not values["text"]:
        errors["text"] = "manual_entry.error.text_required"
    for name, limit in LIMITS.items():
        if name not in errors and len(values[name]) > limit:
            errors[name] = "manual_entry.error.too_long"
    return form


def _page(request: Request, principal: Principal, form: ManualForm, *, status_code: int = 200,
          error: str | None = None) -> HTMLResponse:
    registry: Registry = request.app.state.registry
    return render(request, principal, "manual_entry/form.html", flash=None, status_code=status_code, nav="new",
                  values=form.values, errors=form.errors, error=error, channels=CHANNELS, kinds=KINDS,
                  today=registry.today().isoformat(), limits=LIMITS)


@router.get("/new", response_class=HTMLResponse)
async def new_complaint(request: Request, principal: Principal = Depends(manual_entry_access)) -> HTMLResponse:
    registry: Registry = request.app.state.registry
    blank = ManualForm({"channel": "phone", "received_on": registry.today().isoformat(), "name": "", "email": "",
                        "postal_address": "", "language": principal.language, "kind": "complaint", "subject": "",
                        "text": "", "request_key": commands.new_request_key()})
    return _page(request, principal, blank)


@router.post("/new", response_model=None)
async def register_manual(request: Request, principal: Principal = Depends(manual_entry_access)) -> Response:
    registry: Registry = request.app.state.registry
    form = read_form(dict(await request.form()), registry.today())
    if form.errors or form.received_on is None:
        return _page(request, principal, form, status_code=422, error="manual_entry.error.summary")
    values = form.values
    try:
        complaint = await registry.handle(commands.RegisterManual(
            values["channel"], principal.actor, name=values["name"], email=values["email"] or None,
            postal_address=values["postal_address"] or None, language=values["language"],
            subject=values["subject"], body=values["text"], received_on=form.received_on, kind=values["kind"],
            request_key=values["request_key"]))
    except (Conflict, ValueError):
        # The register refused what the form let through (a rule of its own): say so, keep what was typed.
        return _page(request, principal, form, status_code=409, error="manual_entry.error.refused")
    await record_access(request, principal, "change.register_manual", number=complaint.number,
                        details={"channel": values["channel"]})
    return RedirectResponse(f"{BASE_PATH}/files/{complaint.number}", status_code=303)
