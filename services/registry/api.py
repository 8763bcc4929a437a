"""HTTP JSON API for staff tools (FastAPI, OpenAPI at `/openapi.json`, docs at `/docs`), served by the registry on
`settings.registry_api_port`. A thin adapter over the registry's handlers: every change is a command of
`commands.py` handled by `Registry.handle` (logged with who, when and why, and published). Errors are JSON
`{"error": code, "message": text}` with 404 for an unknown number, 409 for a change the register refuses (illegal
transition, late extension...), 422 for a malformed request.

The acting staff member is the `actor` field of each change; authentication belongs in front of this API (the
reverse proxy of the deployment), which is why it listens on 127.0.0.1 by default.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from services.registry import commands, views
from services.registry.backoffice.app import mount_backoffice
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.reports import annual_report, annual_report_csv
from services.registry.repository import ComplaintFilter


class Change(BaseModel):
    actor: str = Field(min_length=1, description="who makes the change (recorded in the change log)")
    reason: str | None = None


class TransitionRequest(Change):
    target: str = Field(description="received, acknowledged, in_review, waiting_for_citizen, answered, closed, "
                                    "inadmissible, redirected, withdrawn")
    outcome: str | None = Field(default=None, description="on closing: founded, partially_founded, unfounded, "
                                                          "no_assessment")
    category: str | None = Field(default=None, description="founded category (founded / partially founded)")
    reasons: list[str] = Field(default_factory=list, description="inadmissibility reasons")
    redirect_to: str | None = Field(default=None, description="directory id of the competent ombudsman")
    answer_text: str | None = Field(default=None, description="text of the final answer (notice to the citizen)")


class AssignmentRequest(Change):
    handler: str | None


class ClassificationRequest(Change):
    kind: str | None = None
    theme: str | None = None
    service: str | None = None


class ScreeningDecision(Change):
    admissible: bool | None = Field(default=None, description="omit to confirm the proposal")
    reasons: list[str] | None = None
    redirect_to: str | None = None


class FactsRequest(Change):
    facts_date: date | None = Field(default=None, description="date of the facts complained about")
    last_step_date: date | None = Field(default=None, description="date of the citizen's last step since the facts")
    first_line_contacted: bool | None = Field(default=None, description="the service concerned was contacted first")
    forget: list[Literal["facts_date", "last_step_date", "first_line_contacted"]] = Field(
        default_factory=list, description="facts to make unknown again")


class RecommendationRequest(BaseModel):
    actor: str = Field(min_length=1)
    text: str = Field(min_length=1)


class CorrespondentRequest(Change):
    # RFC 5321 4.5.3.1: a path is at most 256 octets; the register's party index holds 320.
    email: str = Field(min_length=3, max_length=320)


class AttachRequest(BaseModel):
    actor: str = Field(min_length=1)
    number: str
    add_correspondent: bool = False


class ActorRequest(BaseModel):
    actor: str = Field(min_length=1)


# Years the annual report can be asked for: the range the deadline rules and the holiday data cover (a year 0 or
# 10000 would overflow the date arithmetic of the report into a 500).
FIRST_REPORT_YEAR, LAST_REPORT_YEAR = 1900, 2200


def create_api(registry: Registry) -> FastAPI:
    api = FastAPI(title="ombudsdesk registry", version="1", description="The register of complaints.")
    api.state.registry = registry
    store = registry.store
    zone: ZoneInfo = registry.policy.timezone

    @api.exception_handler(NotFound)
    async def _not_found(_request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "message": str(error)}, status_code=404)

    @api.exception_handler(Conflict)
    async def _conflict(_request: Request, error: Conflict) -> JSONResponse:
        code = getattr(error.__cause__, "code", None) or getattr(error.__cause__, "reason", None) or "conflict"
        return JSONResponse({"error": code, "message": str(error)}, status_code=409)

    async def _file(number: str) -> dict[str, Any]:
        found = await store.complaint_file(number.strip().upper())
        if found is None:
            raise NotFound(f"no complaint {number}")
        return views.complaint_file(*found)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/complaints")
    async def list_complaints(
        status: str | None = None,
        kind: str | None = None,
        service: str | None = None,
        year: int | None = None,
        due_before: date | None = None,
        overdue: bool = False,
        q: str | None = Query(default=None, description="text in subject, name, email, or a number"),
        limit: int = Query(default=100, ge=1, le=1000),
        offset: int = Query(default=0, ge=0),
    ) -> list[dict[str, Any]]:
        criteria = ComplaintFilter(status=status, kind=kind, service=service, year=year, due_before=due_before,
                                   overdue_on=registry.today() if overdue else None, text=q, limit=limit,
                                   offset=offset, number_format=registry.policy.number_format)
        return [views.complaint_summary(c) for c in await store.list_complaints(criteria)]

    @api.get("/complaints/{number}")
    async def show(number: str) -> dict[str, Any]:
        return await _file(number)

    @api.post("/complaints/{number}/transitions")
    async def transition(number: str, body: TransitionRequest) -> dict[str, Any]:
        await registry.handle(commands.Transition(
            number, body.target, body.actor, body.reason, outcome=body.outcome, category=body.category,
            reasons=tuple(body.reasons), redirect_to=body.redirect_to, answer_text=body.answer_text))
        return await _file(number)

    @api.post("/complaints/{number}/assignment")
    async def assign(number: str, body: AssignmentRequest) -> dict[str, Any]:
        await registry.handle(commands.Assign(number, body.handler, body.actor, body.reason))
        return await _file(number)

    @api.post("/complaints/{number}/classification")
    async def classify(number: str, body: ClassificationRequest) -> dict[str, Any]:
        await registry.handle(commands.Classify(number, body.actor, body.reason, kind=body.kind, theme=body.theme,
                                                service=body.service))
        return await _file(number)

    @api.post("/complaints/{number}/screening")
    async def decide_screening(number: str, body: ScreeningDecision) -> dict[str, Any]:
        await registry.handle(commands.DecideScreening(
            number, body.actor, body.reason, admissible=body.admissible,
            reasons=tuple(body.reasons) if body.reasons is not None else None, redirect_to=body.redirect_to))
        return await _file(number)

    @api.post("/complaints/{number}/facts")
    async def record_facts(number: str, body: FactsRequest) -> dict[str, Any]:
        """The facts screening weighs (facts date, last step, first-line contact); screening proposes again."""
        await registry.handle(commands.RecordFacts(
            number, body.actor, body.reason, facts_date=body.facts_date, last_step_date=body.last_step_date,
            first_line_contacted=body.first_line_contacted, forget=tuple(body.forget)))
        return await _file(number)

    @api.post("/complaints/{number}/extension")
    async def extend(number: str, body: Change) -> dict[str, Any]:
        await registry.handle(commands.Extend(number, body.actor, body.reason))
        return await _file(number)

    @api.post("/complaints/{number}/recommendations")
    async def recommend(number: str, body: RecommendationRequest) -> dict[str, Any]:
        await registry.handle(commands.AddRecommendation(number, body.text, body.actor))
        return await _file(number)

    @api.post("/complaints/{number}/correspondents")
    async def add_correspondent(number: str, body: CorrespondentRequest) -> dict[str, Any]:
        await registry.handle(commands.AddCorrespondent(number, body.email, body.actor, body.reason))
        return await _file(number)

    @api.get("/holding-pen")
    async def holding_pen(status: str = "pending") -> list[dict[str, Any]]:
        return [views.held_message(h) for h in await store.held_messages(status or None)]

    @api.post("/holding-pen/{held_id}/attach")
    async def attach(held_id: int, body: AttachRequest) -> dict[str, Any]:
        outcome = await registry.handle(commands.AttachHeld(held_id, body.number, body.actor,
                                                            add_correspondent=body.add_correspondent))
        return {"action": outcome.action, "number": outcome.number}

    @api.post("/holding-pen/{held_id}/register")
    async def register(held_id: int, body: ActorRequest) -> dict[str, Any]:
        outcome = await registry.handle(commands.RegisterHeld(held_id, body.actor))
        return {"action": outcome.action, "number": outcome.number}

    @api.post("/holding-pen/{held_id}/discard")
    async def discard(held_id: int, body: ActorRequest) -> dict[str, Any]:
        outcome = await registry.handle(commands.DiscardHeld(held_id, body.actor))
        return {"action": outcome.action, "number": outcome.number}

    @api.get("/indicators/{year}", response_model=None)
    async def indicators(year: int = Path(ge=FIRST_REPORT_YEAR, le=LAST_REPORT_YEAR),
                         format: str = Query(default="json", pattern="^(json|csv)$"),
                         as_of: date | None = None) -> dict[str, Any] | JSONResponse | PlainTextResponse:
        if as_of is not None and not FIRST_REPORT_YEAR <= as_of.year <= LAST_REPORT_YEAR:
            return JSONResponse({"error": "invalid_date",
                                 "message": f"as_of must fall in {FIRST_REPORT_YEAR}..{LAST_REPORT_YEAR}"},
                                status_code=422)
        as_of = as_of or (registry.today() if year == registry.today().year else None)
        if format == "csv":
            text = await annual_report_csv(store, year, zone, as_of=as_of)
            return PlainTextResponse(text, media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": f'attachment; filename="indicators-{year}.csv"'})
        return await annual_report(store, year, zone, as_of=as_of)

    mount_backoffice(api)
    return api
