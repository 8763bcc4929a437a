"""The administration concerned in the back office (issue 15):

- `/admin/administrations`: the directory of services and administrations, for admins (`MANAGE_DIRECTORY`): the list,
  adding an entry or changing one (`?edit=<id>` fills the form; an entry is kept by its key). Each save is recorded
  in the audit trail as "change.save_administration" with the entry's key.
- `/files/<number>/position-requests`: the file page's part (loaded by htmx from `file/_position_requests.html`): the
  requests for the administration's position with their deadline, reminder and answer, the administrations'
  messages with whether the citizen may see them, and the form to send a request (the directory entry that matches
  the file's service is proposed first). Reading it is a read of the file (same visibility, same reason, audited).
- `/deadlines/position-requests`: the deadline dashboard's part: unanswered requests overdue or due within a week,
  of the files this person may see.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.registry.mediation import administrations as rules
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.pages.file import file_for_reading, writable
from services.registry.backoffice.pages.file_access import file_path, may_see
from services.registry.backoffice.rendering import BASE_PATH, is_htmx, render
from services.registry.commands import (
    RequestPosition,
    SaveAdministration,
    ShareAdministrationMessage,
    new_request_key,
)
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.handlers.administrations import entry_of
from services.registry.models import Administration, Complaint, PositionRequest, ThreadMessage
from shared.database import read_only

router = APIRouter()
directory_access = page_require(Permission.MANAGE_DIRECTORY)
READ = page_require(Permission.READ_FILES)
DASHBOARD_DAYS = 7  # the dashboard shows requests due within a week, and every overdue one
DASHBOARD_ROWS = 200


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def _query(request: Request, query: Any) -> list[Any]:
    sessions = async_sessionmaker(read_only(_registry(request).store.engine), expire_on_commit=False)
    async with sessions() as session, session.begin():
        return list((await session.execute(query)).all())


async def directory(request: Request) -> list[Administration]:
    return [row for (row,) in await _query(request, select(Administration).order_by(Administration.name))]


# --- the directory, for admins ---------------------------------------------------------------------------------------
def _form_of(row: Administration | None) -> dict[str, Any]:
    if row is None:
        return {"language": "fr", "answer_days": "30", "active": True}
    return {"key": row.key, "name": row.name, "emails": "\n".join(row.emails or ()),
            "postal_address": row.postal_address or "", "language": row.language,
            "contact_person": row.contact_person, "answer_days": str(row.answer_days), "active": row.active}


async def _directory_page(request: Request, principal: Principal, *, form: dict[str, Any] | None = None,
                          errors: dict[str, str] | None = None, status_code: int = 200,
                          flash: str | None = None, editing: bool = False) -> HTMLResponse:
    return render(request, principal, "administrations/list.html", status_code=status_code, nav="administrations",
                  administrations=await directory(request), form=form or _form_of(None), errors=errors or {},
                  editing=editing, flash=Translator(principal.language)(flash) if flash else None)


@router.get("/admin/administrations", response_class=HTMLResponse)
async def list_directory(request: Request, edit: int | None = None,
                         principal: Principal = Depends(directory_access)) -> HTMLResponse:
    row = next((r for r in await directory(request) if r.id == edit), None) if edit is not None else None
    return await _directory_page(request, principal, form=_form_of(row), editing=row is not None)


@router.post("/admin/administrations", response_class=HTMLResponse)
async def save_entry(request: Request, principal: Principal = Depends(directory_access)) -> HTMLResponse:
    form = await request.form()
    kept = {name: str(form.get(name) or "")[:5000] for name in
            ("key", "name", "emails", "postal_address", "language", "contact_person", "answer_days")}
    kept["active"] = form.get("active") == "1"
    try:
        entry = rules.checked_entry(**{**kept, "emails": rules.split_emails(kept["emails"])})
    except rules.InvalidEntry as error:
        return await _directory_page(request, principal, form=kept, status_code=422,
                                     errors={name: f"administrations.error.{code}"
                                             for name, code in error.problems.items()},
                                     editing=bool(form.get("editing")))
    await _registry(request).handle(SaveAdministration(
        entry.key, entry.name, principal.email, emails=entry.emails, postal_address=entry.postal_address,
        language=entry.language, contact_person=entry.contact_person, answer_days=entry.answer_days,
        active=entry.active))
    await record_access(request, principal, "change.save_administration", details={"key": entry.key})
    return await _directory_page(request, principal, flash="administrations.done.saved")


# --- the file page's part --------------------------------------------------------------------------------------------
async def _file_part(request: Request, principal: Principal, complaint: Any, *, error: str | None = None,
                     flash: str | None = None, status_code: int = 200) -> Response:
    requests = await _query(request, select(PositionRequest, Administration)
                            .join(Administration, Administration.id == PositionRequest.administration_id)
                            .where(PositionRequest.complaint_id == complaint.id)
                            .order_by(PositionRequest.requested_at, PositionRequest.id))
    messages = [row for (row,) in await _query(request, select(ThreadMessage).where(
        ThreadMessage.complaint_id == complaint.id, ThreadMessage.party == rules.ADMINISTRATION)
        .order_by(ThreadMessage.occurred_at, ThreadMessage.id))]
    entries = await directory(request)
    matched = rules.match_entry(complaint.service_concerned, [entry_of(row) for row in entries])
    offered = [row for row in entries if row.active and (row.emails or row.postal_address)]
    offered.sort(key=lambda row: (matched is None or row.key != matched.key, row.name.casefold()))
    t = Translator(principal.language)
    return render(request, principal, "administrations/file_part.html", fragment=True, status_code=status_code,
                  number=complaint.number, request_key=new_request_key(), requests=requests, messages=messages, offered=offered,
                  matched=matched, today=_registry(request).today(),
                  reminder_days=request.app.state.settings.position_reminder_days,
                  error=t(error) if error else None, flash=t(flash) if flash else None, nav="register")


@router.get("/files/{number}/position-requests")
async def file_part(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    await record_access(request, principal, "file.read", number=found[0].number, reason=reason or None,
                        details={"part": "position_requests"})
    return await _file_part(request, principal, found[0])


def _done(request: Request, complaint: Any) -> Response:
    if is_htmx(request):
        return Response(status_code=204,
                        headers={"HX-Redirect": f"{file_path(complaint.number)}#position-requests"})
    return RedirectResponse(f"{file_path(complaint.number)}#position-requests", status_code=303)


@router.post("/files/{number}/position-requests")
async def send_request(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await writable(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    form = await request.form()
    try:
        administration_id = int(str(form.get("administration_id") or ""))
    except ValueError:
        return await _file_part(request, principal, found[0], error="administrations.error.choose", status_code=422)
    # The form's own key: the same form submitted twice is the same request (a fresh key if it has none).
    key = str(form.get("request_key") or "").strip()[:200]
    command = RequestPosition(found[0].number, administration_id, str(form.get("text") or ""), principal.email,
                              reminder_days=request.app.state.settings.position_reminder_days,
                              **({"request_key": key} if key else {}))
    try:
        await _registry(request).handle(command)
    except (Conflict, NotFound) as error:
        key = "administrations.error.request" if isinstance(error, Conflict) else "error.not_found"
        return await _file_part(request, principal, found[0], error=key, status_code=409)
    await record_access(request, principal, "change.request_position", number=found[0].number, reason=reason or None,
                        details={"administration_id": administration_id})
    return _done(request, found[0])


@router.post("/files/{number}/position-requests/share")
async def share_message(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await writable(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    form = await request.form()
    visible = form.get("visible") == "1"
    try:
        await _registry(request).handle(ShareAdministrationMessage(
            found[0].number, str(form.get("message_key") or "")[:600], visible, principal.email,
            " ".join(str(form.get("reason") or "").split())[:500] or None))
    except NotFound:
        return await _file_part(request, principal, found[0], error="error.not_found", status_code=404)
    await record_access(request, principal, "change.share_administration_message", number=found[0].number,
                        reason=reason or None, details={"visible": visible})
    return _done(request, found[0])


# --- the deadline dashboard's part -----------------------------------------------------------------------------------
@router.get("/deadlines/position-requests")
async def dashboard_part(request: Request, principal: Principal = Depends(READ)) -> Response:
    today = _registry(request).today()
    rows = await _query(request, select(PositionRequest, Administration, Complaint)
                        .join(Administration, Administration.id == PositionRequest.administration_id)
                        .join(Complaint, Complaint.id == PositionRequest.complaint_id)
                        .where(PositionRequest.answered_at.is_(None), Complaint.closed_at.is_(None),
                               PositionRequest.due <= today + timedelta(days=DASHBOARD_DAYS))
                        .order_by(PositionRequest.due, PositionRequest.id).limit(DASHBOARD_ROWS))
    visible = [(request_row, administration, complaint) for request_row, administration, complaint in rows
               if may_see(principal, complaint)]
    return render(request, principal, "administrations/deadlines_part.html", fragment=True, rows=visible,
                  today=today, nav="deadlines", base_path=BASE_PATH)
