"""Requests for information to the citizen in the back office (issue 15): the file page's part and the deadline
dashboard's part.

Routes (under `/backoffice`):

- `GET /files/{number}/information-requests`: the file's requests and their state (waiting until the reply date,
  reminded, answered, closed for lack of answer, no longer needed), and the form that sends one: what is missing as
  checkboxes, ticked as screening's proposal says (`information_requests.proposal_missing`), a text to the
  citizen, a reason. The file page includes `file/_information_requests.html`, which htmx fills from here when it
  is shown; without JavaScript the part links here, a page of its own. Read like the file (`pages.file`: the same
  visibility, the reason asked of whoever is not the handler), audited "file.read" with the part named.
- `POST /files/{number}/information-requests`: `commands.RequestInformation` with the person as actor (never a form
  field), once per form (`request_key`, a hidden field), audited "change.request_information"; a refusal of the
  register is shown in the part, never a 500. Done: back to the file (303; htmx: `HX-Redirect`), whose status and
  deadlines changed too.
- `GET /deadlines/information-requests`: the requests waiting for a citizen in the person's scope (a data-protection
  file only for a DPO), the nearest reply date first, for the deadline dashboard (its part
  `deadlines/_information_requests.html` is filled the same way).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.registry import commands
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.api import command_action
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.pages.file import file_for_reading, writable
from services.registry.backoffice.pages.file_access import file_path
from services.registry.backoffice.pages.file_view import text_context
from services.registry.backoffice.rendering import is_htmx, render
from services.registry.handlers import Conflict, NotFound
from services.registry.mediation.information_requests import MissingItem, proposal_missing
from services.registry.models import Complaint, InformationRequest
from services.registry.repository import scope_condition
from services.registry.views import TextContext
from services.registry.vocabulary import Status
from shared.database import read_only
from shared.events import STAFF_MESSAGE_MAX_CHARS

router = APIRouter()

READ = page_require(Permission.READ_FILES)
# The statuses a request may be sent from (`handlers.information_requests.request_information`).
REQUESTABLE = frozenset({Status.ACKNOWLEDGED, Status.IN_REVIEW, Status.WAITING_FOR_CITIZEN})
DASHBOARD_LIMIT = 200
REASON_MAX = 500
PART = "information_requests"


def _sessions(request: Request) -> async_sessionmaker[Any]:
    return async_sessionmaker(read_only(request.app.state.registry.store.engine), expire_on_commit=False)


async def requests_of(request: Request, complaint_id: int) -> list[InformationRequest]:
    async with _sessions(request)() as session, session.begin():
        rows = await session.execute(select(InformationRequest).where(InformationRequest.complaint_id == complaint_id)
                                     .order_by(InformationRequest.id.desc()))
        return list(rows.scalars())


def state_key(row: InformationRequest) -> str:
    """The request's state, as a key of `messages/information_requests.toml` (`information.state.<key>`)."""
    if row.resolution is None:
        return "reminded" if row.reminder_sent_at is not None else "waiting"
    return row.resolution


def request_view(row: InformationRequest, ctx: TextContext) -> dict[str, Any]:
    """One request as the page shows it, in the reader's language (`ctx`)."""
    ended = row.answered_at or row.closed_at
    return {
        "id": row.id,
        "state": state_key(row),
        "open": row.resolution is None,
        "requested_on": ctx.date(row.requested_on),
        "requested_by": ctx.actor(row.requested_by),
        "reply_by": ctx.date(row.reply_by),
        "reply_by_iso": row.reply_by.isoformat(),
        "missing": [ctx.term(code, "missing_information") for code in row.missing or ()],
        "text": row.text,
        "paused": row.paused,
        "reminder_sent": ctx.moment(row.reminder_sent_at) if row.reminder_sent_at else None,
        "ended": ctx.moment(ended) if ended else None,
    }


def _reachable(complaint: Complaint) -> bool:
    return bool(complaint.complainant_email or complaint.complainant_postal_address)


async def _part(request: Request, principal: Principal, found: Sequence[Any], *, error: str | None = None,
                error_detail: str | None = None, ticked: Sequence[str] | None = None, text: str = "",
                status: int = 200) -> Response:
    """The file's part (htmx, or inside the page of its own without JavaScript)."""
    complaint: Complaint = found[0]
    registry = request.app.state.registry
    ctx = text_context(principal.language, registry.policy)
    rows = await requests_of(request, complaint.id)
    proposed = [item.value for item in proposal_missing(complaint.screening_proposal)]
    can_send = (principal.can(Permission.ACT_ON_FILES) and complaint.status in REQUESTABLE
                and _reachable(complaint))
    context = {
        "number": complaint.number,
        "information_requests": [request_view(row, ctx) for row in rows],
        "information_items": [(item.value, ctx.term(item.value, "missing_information")) for item in MissingItem],
        "information_proposed": proposed,
        "information_ticked": list(ticked) if ticked is not None else proposed,
        "information_text": text,
        "information_can_send": can_send,
        "information_unreachable": not _reachable(complaint),
        "information_status": complaint.status,
        "information_error": error,
        "information_error_detail": error_detail,
        "information_policy": registry.policy.information,
        "form_key": uuid.uuid4().hex,
    }
    if is_htmx(request):
        return render(request, principal, "file/_information_requests.html", status_code=status, **context)
    return render(request, principal, "information_requests/file.html", status_code=status, nav="register",
                  **context)


@router.get("/files/{number}/information-requests")
async def show_requests(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    await record_access(request, principal, "file.read", number=found[0].number, reason=reason or None,
                        details={"part": PART})
    return await _part(request, principal, found)


def _request_key(principal: Principal, value: str) -> str:
    """The form's own key (written when the part was rendered), scoped to the person: the same form sent twice is
    one request. A fresh key if it is missing or not one of ours."""
    key = value.strip()
    if not re.fullmatch(r"[0-9a-f]{16,64}", key):
        key = commands.new_request_key()
    return f"{principal.account_id}:{key}"


@router.post("/files/{number}/information-requests")
async def send_request(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await writable(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, _reason = readable
    t = Translator(principal.language)
    form = await request.form()
    missing = tuple(str(v).strip() for v in form.getlist("missing") if isinstance(v, str) and v.strip())[:20]
    text = str(form.get("text") or "").replace("\r\n", "\n")
    reason = " ".join(str(form.get("reason") or "").split()) or None
    error_status = 200 if is_htmx(request) else 422
    if len(text) > STAFF_MESSAGE_MAX_CHARS or (reason and len(reason) > REASON_MAX):
        return await _part(request, principal, found, error=t("file.error.too_long"), ticked=missing, text=text,
                           status=error_status)
    command = commands.RequestInformation(found[0].number, missing, text, principal.actor, reason,
                                          request_key=_request_key(principal, str(form.get("request_key") or "")))
    try:
        await request.app.state.registry.handle(command)
    except (Conflict, NotFound) as error:
        refreshed = await request.app.state.registry.store.complaint_file(found[0].number) or found
        return await _part(request, principal, refreshed, error=t("information.refused"), error_detail=str(error),
                           ticked=missing, text=text, status=200 if is_htmx(request) else 409)
    await record_access(request, principal, command_action(command), number=found[0].number, reason=reason,
                        details={"action": "request_information", "missing": list(missing)})
    target = f"{file_path(found[0].number)}#information-requests"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# --- the deadline dashboard's part -----------------------------------------------------------------------------------
async def waiting_requests(request: Request, principal: Principal, limit: int = DASHBOARD_LIMIT
                           ) -> list[tuple[InformationRequest, Complaint]]:
    """Open requests within the person's scope, the nearest reply date first (at most `limit`)."""
    engine = request.app.state.registry.store.engine
    query = (select(InformationRequest, Complaint).join(Complaint, Complaint.id == InformationRequest.complaint_id)
             .where(InformationRequest.resolution.is_(None))
             .order_by(InformationRequest.reply_by, InformationRequest.id).limit(limit))
    admitted = scope_condition(Complaint, principal.scope, engine.dialect.name)
    if admitted is not None:
        query = query.where(admitted)
    async with _sessions(request)() as session, session.begin():
        return [(row, complaint) for row, complaint in (await session.execute(query)).all()]


@router.get("/deadlines/information-requests")
async def dashboard_part(request: Request, mine: str = "", principal: Principal = Depends(READ)) -> Response:
    registry = request.app.state.registry
    today: date = registry.today()
    mine_only = mine == "1"
    ctx = text_context(principal.language, registry.policy)
    entries = [{**request_view(row, ctx), "number": complaint.number,
                "subject": complaint.subject_line, "handler": complaint.handler,
                "days_left": (row.reply_by - today).days}
               for row, complaint in await waiting_requests(request, principal)
               if not mine_only or complaint.handler == principal.actor]
    context = {"information_waiting": entries, "mine_only": mine_only, "today": today}
    if is_htmx(request):
        return render(request, principal, "deadlines/_information_requests.html", **context)
    return render(request, principal, "information_requests/dashboard.html", nav="deadlines", **context)

