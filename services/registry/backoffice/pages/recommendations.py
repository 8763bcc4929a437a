"""Recommendations followed up in the back office (issue 15).

Routes (under `/backoffice`):

- `GET /recommendations`: every recommendation the person may see (general ones, and those of files within their
  visibility), newest first, filtered by follow-up status and by addressee (the administration), a page at a time;
  with the form adding a general recommendation.
- `GET /files/{number}/recommendations`: the file's recommendations with their follow-up forms. The file page shows
  the texts and loads this panel in their place (htmx, `file/_recommendations.html`); without JavaScript it is a
  page of its own. Read like the file: the same visibility, the same reason asked of anyone but the handler, audited
  "file.read".
- `POST /files/{number}/recommendations`: a recommendation of the file (`commands.AddRecommendation`).
- `POST /recommendations`: a general recommendation (`commands.IssueRecommendation` without a file).
- `POST /recommendations/{id}/status` and `/review`: what the administration did with it, its review date.

Every change needs `ACT_ON_FILES` (and, for a file's recommendation, that the file is visible: else the answer of an
unknown recommendation), is handled by the register with the person as actor, and audited like the file page's
actions (`change.<command>`, under the file's number when there is one). A refusal of the register is shown on the
page, never a 500.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from services.registry import commands
from services.registry.mediation import recommendation_store
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.api import command_action
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.pages.file import file_for_reading
from services.registry.backoffice.pages.file_access import file_path, may_see
from services.registry.backoffice.pages.file_actions import TEXT_MAX_CHARS
from services.registry.backoffice.rendering import BASE_PATH, is_htmx, render
from services.registry.handlers import Conflict, NotFound
from services.registry.mediation.recommendations import FollowUp

router = APIRouter()

READ = page_require(Permission.READ_FILES)
ACT = page_require(Permission.ACT_ON_FILES)
PAGE_SIZE = 50
LIST_PATH = f"{BASE_PATH}/recommendations"
STATUSES = tuple(s.value for s in FollowUp)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value).strip()) if value and str(value).strip() else None
    except ValueError:
        return None


def _line(value: Any, limit: int = 500) -> str | None:
    text = " ".join(str(value or "").split())
    return text[:limit] or None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _view(recommendation: Any, number: str | None, t: Translator) -> dict[str, Any]:
    return {"id": recommendation.id, "number": number, "addressee": recommendation.addressee,
            "text": recommendation.text, "issued_on": recommendation.issued_on, "status": recommendation.status,
            "status_reason": recommendation.status_reason, "review_date": recommendation.review_date,
            "reminded": recommendation.reminded_for is not None
            and recommendation.reminded_for == recommendation.review_date,
            "history": recommendation.history or [],
            "next_statuses": [s for s in ("accepted", "implemented", "refused") if s != recommendation.status
                              and recommendation.status != "implemented"
                              and not (s == "refused" and recommendation.status == "refused")]}


# --- a file's recommendations ----------------------------------------------------------------------------------------
async def _file_panel(request: Request, principal: Principal, complaint: Any, *, error: str | None = None,
                      flash: str | None = None, status: int = 200) -> Response:
    t = Translator(principal.language)
    listed = await recommendation_store.of_complaint(request.app.state.registry.store, complaint.id)
    template = "recommendations/_file_panel.html" if is_htmx(request) else "recommendations/file.html"
    return render(request, principal, template, status_code=status, nav="register", number=complaint.number,
                  recommendations=[_view(r, complaint.number, t) for r in listed], statuses=STATUSES,
                  service=complaint.service_concerned or "", error=error, flash=flash,
                  back=file_path(complaint.number))


@router.get("/files/{number}/recommendations")
async def file_recommendations(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    await record_access(request, principal, "file.read", number=found[0].number, reason=reason or None,
                        details={"part": "recommendations"})
    return await _file_panel(request, principal, found[0])


@router.post("/files/{number}/recommendations")
async def add_to_file(request: Request, number: str, principal: Principal = Depends(ACT)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, _reason = readable
    form = await request.form()
    text = str(form.get("text") or "").strip()
    t = Translator(principal.language)
    if not text or len(text) > TEXT_MAX_CHARS:
        return await _file_panel(request, principal, found[0], error=t("recommendations.error.text"),
                                 status=200 if is_htmx(request) else 422)
    command = commands.AddRecommendation(
        found[0].number, text, principal.actor, addressee=_line(form.get("addressee"), 300),
        review_date=_day(form.get("review_date")),
        request_key=f"{principal.account_id}:{_line(form.get('request_key'), 64) or commands.new_request_key()}")
    return await _act(request, principal, command, found[0])


# --- the list and general recommendations ----------------------------------------------------------------------------
@router.get("/recommendations")
async def list_page(request: Request, status: str = "", addressee: str = "", general: str = "", page: int = 1,
                    principal: Principal = Depends(READ)) -> Response:
    return await _list(request, principal, status=status, addressee=addressee, general=general, page=page)


async def _list(request: Request, principal: Principal, *, status: str = "", addressee: str = "", general: str = "",
                page: int = 1, error: str | None = None, http_status: int = 200) -> Response:
    store = request.app.state.registry.store
    page = max(1, min(page, 10_000))
    criteria = recommendation_store.RecommendationFilter(
        status=status if status in STATUSES else None, addressee=_line(addressee, 300),
        general_only=general == "1", scope=principal.scope, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    rows = await recommendation_store.list_recommendations(store, criteria)
    t = Translator(principal.language)
    return render(request, principal, "recommendations/list.html", nav="recommendations", status_code=http_status,
                  recommendations=[_view(r.recommendation, r.number, t) for r in rows[:PAGE_SIZE]],
                  more=len(rows) > PAGE_SIZE, page=page, statuses=STATUSES,
                  addressees=await recommendation_store.addressees(store, scope=principal.scope),
                  chosen={"status": criteria.status or "", "addressee": criteria.addressee or "",
                          "general": general == "1"},
                  flash=t(f"recommendations.done.{request.query_params.get('done')}")
                  if request.query_params.get("done") in {"added", "status", "review"} else None,
                  error=error, form_key=commands.new_request_key())


@router.post("/recommendations")
async def add_general(request: Request, principal: Principal = Depends(ACT)) -> Response:
    form = await request.form()
    text = str(form.get("text") or "").strip()[:TEXT_MAX_CHARS + 1]
    command = commands.IssueRecommendation(
        None, text, principal.actor, addressee=_line(form.get("addressee"), 301),
        issued_on=_day(form.get("issued_on")), review_date=_day(form.get("review_date")),
        administration_id=_int(form.get("administration_id")),
        request_key=f"{principal.account_id}:{_line(form.get('request_key'), 64) or commands.new_request_key()}")
    return await _act(request, principal, command, None, done="added")


# --- status and review date ------------------------------------------------------------------------------------------
async def _visible_recommendation(request: Request, principal: Principal, recommendation_id: int
                                  ) -> tuple[Any, Any] | None:
    """(the recommendation, its file or None) if the person may see it; None as for an unknown one."""
    store = request.app.state.registry.store
    rows = await recommendation_store.list_recommendations(store, recommendation_store.RecommendationFilter(
        scope=principal.scope, limit=1, recommendation_id=recommendation_id))
    if not rows:
        return None
    complaint = await store.complaint(rows[0].number) if rows[0].number else None
    if complaint is not None and not may_see(principal, complaint):
        return None
    return rows[0].recommendation, complaint


def _follow_up(form: Any, recommendation_id: int, actor: str) -> commands.Command[Any]:
    return commands.FollowUpRecommendation(recommendation_id, str(form.get("status") or ""), actor,
                                           _line(form.get("reason"), 2000))


def _review(form: Any, recommendation_id: int, actor: str) -> commands.Command[Any]:
    return commands.SetRecommendationReview(recommendation_id, _day(form.get("review_date")), actor,
                                            _line(form.get("reason")))


# The forms of one recommendation: `/recommendations/{id}/<name>`.
CHANGES = {"status": _follow_up, "review": _review}


@router.post("/recommendations/{recommendation_id}/{name}")
async def change(request: Request, recommendation_id: int, name: str, principal: Principal = Depends(ACT)
                 ) -> Response:
    build = CHANGES.get(name)
    found = await _visible_recommendation(request, principal, recommendation_id) if build else None
    if build is None or found is None:
        return render(request, principal, "file/error.html", status_code=404, message_key="error.not_found",
                      nav="recommendations")
    command = build(await request.form(), recommendation_id, principal.actor)
    return await _act(request, principal, command, found[1], done=name)


async def _act(request: Request, principal: Principal, command: commands.Command[Any], complaint: Any, *,
               done: str = "added") -> Response:
    """Handle the command; on success audit it and go back (the file's panel, or the list); on a refusal show why."""
    t = Translator(principal.language)
    try:
        await request.app.state.registry.handle(command)
    except (Conflict, NotFound) as error:
        message = t("recommendations.error.refused")
        if complaint is not None:
            return await _file_panel(request, principal, complaint, error=f"{message} {error}",
                                     status=200 if is_htmx(request) else 409)
        return await _list(request, principal, error=f"{message} {error}", http_status=409)
    await record_access(request, principal, command_action(command),
                        number=complaint.number if complaint is not None else None,
                        details={"recommendation": getattr(command, "recommendation_id", None)})
    if complaint is not None:
        if is_htmx(request):
            return await _file_panel(request, principal, complaint, flash=t(f"recommendations.done.{done}"))
        return RedirectResponse(f"{file_path(complaint.number)}/recommendations", status_code=303)
    return RedirectResponse(f"{LIST_PATH}?done={done}", status_code=303)
