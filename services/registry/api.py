"""HTTP JSON API for staff tools (FastAPI, its OpenAPI description at `/openapi.json` for a signed-in person; no docs
pages: they load scripts from a CDN, which the back office's Content-Security-Policy forbids), served by the registry on
`settings.registry_api_port` next to the back office (`/backoffice/`). A thin adapter over the registry's handlers:
every change is a command of `commands.py` handled by `Registry.handle` (logged with who, when and why, and
published). Errors are JSON `{"error": code, "message": text}` with 404 for an unknown number, 409 for a change the
register refuses (illegal transition, late extension...), 422 for a malformed request.

Who may do what (issue 13): every route but the probes (`/health`, `/ready`, `/metrics`) needs an identity — a
back-office session or a personal API token (`Authorization: Bearer`, `ombudsdesk users token EMAIL`) — else 401,
and the permission the one table (`access.roles`) gives for it, else 403. The actor of every change is the
identity's email, never a field of the request (an `actor` sent in a body is ignored). A file outside what the person
may see answers 403 and leaves an audit entry (`file.denied`); every read of a file and every change is in the audit
trail. Requests naming another host than the allowed ones answer 400 (DNS rebinding), state-changing ones that are not
`application/json` 415 (`access.guards`).

Reading a file (`GET /complaints/{number}`) takes a `reason` from anyone but its handler (as the page asks one):
without it, 428 `{"error": "reason_required"}` and nothing is read; with it, the read is audited with the reason.
The holding pen lists pending messages only (a resolved one may now belong to a file the person may not see), and
each listing is audited (`held.read`). A file is assigned only to an active account that handles files (else 409
`unknown_handler`). Every answer carries the security headers of `guards.SecurityHeaders` (CSP, no framing, no
sniffing).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import REGISTRY, generate_latest
from pydantic import BaseModel, Field

from services.registry import commands, views
from services.registry.public import survey
from services.registry.access.accounts import AccountStore, identity_policy, normalise_email
from services.registry.access.audit import AuditTrail, reason_required, record_access
from services.registry.access.audit_chain import REASON_MAX
from services.registry.access.dependencies import AccessRefused, api_principal, install_access_handlers, require
from services.registry.access.guards import HostGuard, JsonBodyGuard, SecurityHeaders
from services.registry.access.oidc import oidc_client
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.app import mount_backoffice
from services.registry.backoffice.rendering import BASE_PATH
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.models import Complaint
from services.registry.reports import annual_report, annual_report_csv
from services.registry.repository import ComplaintFilter
from services.registry.settings import RegistrySettings
from shared.observability import CONTENT_TYPE_METRICS


class Change(BaseModel):
    # Who makes the change is the authenticated person (`Principal.actor`): an `actor` field sent is ignored.
    reason: str | None = Field(default=None, description="why (recorded in the change log)")


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
    data_protection: bool | None = Field(default=None, description="a data-protection complaint (only a DPO sees "
                                                                    "those; only a DPO may say it is not one)")


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
    text: str = Field(min_length=1)


class CorrespondentRequest(Change):
    # RFC 5321 4.5.3.1: a path is at most 256 octets; the register's party index holds 320.
    email: str = Field(min_length=3, max_length=320)


class AttachRequest(BaseModel):
    number: str
    add_correspondent: bool = False


# Years the annual report can be asked for: the range the deadline rules and the holiday data cover (a year 0 or
# 10000 would overflow the date arithmetic of the report into a 500).
FIRST_REPORT_YEAR, LAST_REPORT_YEAR = 1900, 2200


def command_action(command: commands.Command[Any]) -> str:
    """The audit action of a change: `change.` and the command's name in snake case (`change.decide_screening`)."""
    return "change." + re.sub(r"(?<!^)(?=[A-Z])", "_", type(command).__name__).lower()


def create_api(registry: Registry, settings: RegistrySettings | None = None, *, accounts: AccountStore | None = None,
               audit: AuditTrail | None = None) -> FastAPI:
    """The API and the back office. Without `settings`, the defaults (not the environment); without stores, those on
    the registry's own database."""
    settings = settings if settings is not None else RegistrySettings.model_construct()
    # No /docs nor /redoc (their pages load Swagger UI / ReDoc from a CDN); /openapi.json is served below, to a
    # signed-in person only.
    api = FastAPI(title="ombudsdesk registry", version="1", description="The register of complaints.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    api.state.registry = registry
    api.state.settings = settings
    store = registry.store
    api.state.accounts = accounts if accounts is not None else AccountStore(store.engine, identity_policy(settings))
    api.state.audit = audit if audit is not None else AuditTrail(store.engine)
    api.state.oidc = oidc_client(settings)
    zone: ZoneInfo = registry.policy.timezone
    # Added innermost first: the Host check runs before anything else, and the security headers go on every answer
    # (the guards' refusals included).
    api.add_middleware(JsonBodyGuard, page_prefix=BASE_PATH)
    api.add_middleware(HostGuard, allowed=settings.host_names())
    api.add_middleware(SecurityHeaders)
    install_access_handlers(api)

    @api.exception_handler(NotFound)
    async def _not_found(_request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "message": str(error)}, status_code=404)

    @api.exception_handler(Conflict)
    async def _conflict(_request: Request, error: Conflict) -> JSONResponse:
        code = getattr(error.__cause__, "code", None) or getattr(error.__cause__, "reason", None) or "conflict"
        return JSONResponse({"error": code, "message": str(error)}, status_code=409)

    async def _visible(request: Request, principal: Principal, number: str) -> Complaint:
        """The complaint, if this person may see it: else 403 and an audit entry (404 when there is none)."""
        complaint = await store.complaint(number.strip().upper())
        if complaint is None:
            raise NotFound(f"no complaint {number}")
        if not principal.may_see(data_protection=bool(complaint.data_protection),
                                 service=complaint.service_concerned):
            await record_access(request, principal, "file.denied", number=complaint.number)
            raise AccessRefused(403, "forbidden", f"{complaint.number} is not among the files you may see",
                                page=False)
        return complaint

    async def _file(number: str) -> dict[str, Any]:
        found = await store.complaint_file(number.strip().upper())
        if found is None:
            raise NotFound(f"no complaint {number}")
        return views.complaint_file(*found, getattr(found, "extras", None))

    async def _change(request: Request, principal: Principal, command: commands.Command[Any], number: str,
                      complaint: Complaint | None = None) -> dict[str, Any]:
        """Handle a change of a file the person may see, record it in the audit trail, answer the file."""
        complaint = complaint or await _visible(request, principal, number)
        await registry.handle(command)
        await record_access(request, principal, command_action(command), number=complaint.number)
        return await _file(complaint.number)

    def _forbidden(permission: Permission) -> AccessRefused:
        return AccessRefused(403, "forbidden", f"permission {permission.value} required", page=False)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # Probes for an orchestrator and Prometheus (docs/operations.md): no identity, and nothing personal in them.
    @api.get("/ready", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        probes = getattr(request.app.state, "probes", None)
        if probes is None:  # an API built without its service (tests, tools): nothing to vouch for
            return JSONResponse({"status": "not ready", "not_ready": ["service"]}, status_code=503)
        good, body = await probes.ready()
        return JSONResponse(body, status_code=200 if good else 503)

    @api.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        probes = getattr(request.app.state, "probes", None)
        payload = await probes.metrics() if probes is not None else generate_latest(REGISTRY)
        return Response(payload, media_type=CONTENT_TYPE_METRICS)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi(_principal: Principal = Depends(api_principal)) -> JSONResponse:
        return JSONResponse(api.openapi())

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
        principal: Principal = Depends(require(Permission.READ_FILES)),
    ) -> list[dict[str, Any]]:
        """The files the person may see (their scope is applied in the query itself)."""
        criteria = ComplaintFilter(status=status, kind=kind, service=service, year=year, due_before=due_before,
                                   overdue_on=registry.today() if overdue else None, text=q, limit=limit,
                                   offset=offset, number_format=registry.policy.number_format,
                                   scope=principal.scope)
        return [views.complaint_summary(c) for c in await store.list_complaints(criteria)
                if principal.may_see(data_protection=bool(c.data_protection), service=c.service_concerned)]

    @api.get("/complaints/{number}", response_model=None)
    async def show(number: str, request: Request,
                   reason: str | None = Query(default=None, max_length=REASON_MAX,
                                              description="why you read this file (required unless you handle "
                                                          "it; recorded in the audit trail)"),
                   principal: Principal = Depends(require(Permission.READ_FILES))) -> dict[str, Any] | JSONResponse:
        complaint = await _visible(request, principal, number)
        stated = " ".join((reason or "").split()) or None
        if stated is None and reason_required(principal, complaint.handler):
            # Nothing is read, so nothing is recorded: the same person asking again with a reason is the read.
            return JSONResponse({"error": "reason_required",
                                 "message": f"you do not handle {complaint.number}: say why you read it "
                                            "(?reason=...)"}, status_code=428)
        await record_access(request, principal, "file.read", number=complaint.number, reason=stated)
        return await _file(complaint.number)

    @api.post("/complaints/{number}/transitions")
    async def transition(number: str, body: TransitionRequest, request: Request,
                         principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.Transition(
            number, body.target, principal.actor, body.reason, outcome=body.outcome, category=body.category,
            reasons=tuple(body.reasons), redirect_to=body.redirect_to, answer_text=body.answer_text), number)

    @api.post("/complaints/{number}/assignment", response_model=None)
    async def assign(number: str, body: AssignmentRequest, request: Request,
                     principal: Principal = Depends(require(Permission.TAKE_FILES))) -> dict[str, Any] | JSONResponse:
        """Taking an unassigned file (or keeping one's own) needs `take_files`; any other assignment `reassign`."""
        complaint = await _visible(request, principal, number)
        handler = normalise_email(body.handler) if body.handler and body.handler.strip() else None
        current = normalise_email(complaint.handler) if complaint.handler else None
        taking = handler == principal.email and current in (None, principal.email)
        if not taking and not principal.can(Permission.REASSIGN):
            raise _forbidden(Permission.REASSIGN)
        # Deadline digests and reminders go to the handler's address: never an outside one (None unassigns).
        if handler is not None and not await api.state.accounts.assignable(handler):
            return JSONResponse({"error": "unknown_handler",
                                 "message": "a file is assigned only to an active account that handles files "
                                            "(staff, dpo or supervisor)"}, status_code=409)
        return await _change(request, principal, commands.Assign(number, body.handler, principal.actor, body.reason),
                             number, complaint)

    @api.post("/complaints/{number}/classification")
    async def classify(number: str, body: ClassificationRequest, request: Request,
                       principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        # Anyone may hand a file to the DPO; saying it is not a data-protection complaint is the DPO's call.
        if body.data_protection is False and not principal.can(Permission.READ_DATA_PROTECTION):
            raise _forbidden(Permission.READ_DATA_PROTECTION)
        return await _change(request, principal, commands.Classify(
            number, principal.actor, body.reason, kind=body.kind, theme=body.theme, service=body.service,
            data_protection=body.data_protection), number)

    @api.post("/complaints/{number}/screening")
    async def decide_screening(number: str, body: ScreeningDecision, request: Request,
                               principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.DecideScreening(
            number, principal.actor, body.reason, admissible=body.admissible,
            reasons=tuple(body.reasons) if body.reasons is not None else None, redirect_to=body.redirect_to),
            number)

    @api.post("/complaints/{number}/facts")
    async def record_facts(number: str, body: FactsRequest, request: Request,
                           principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        """The facts screening weighs (facts date, last step, first-line contact); screening proposes again."""
        return await _change(request, principal, commands.RecordFacts(
            number, principal.actor, body.reason, facts_date=body.facts_date, last_step_date=body.last_step_date,
            first_line_contacted=body.first_line_contacted, forget=tuple(body.forget)), number)

    @api.post("/complaints/{number}/extension")
    async def extend(number: str, body: Change, request: Request,
                     principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.Extend(number, principal.actor, body.reason), number)

    # The citizen's personal link (issue 17): revoke every link of the file (a lost or forwarded mail), or revoke
    # them and send the citizen a new one.
    @api.post("/complaints/{number}/citizen-link/revocation")
    async def revoke_citizen_links(number: str, body: Change, request: Request,
                                   principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.RevokeCitizenLinks(number, principal.actor, body.reason),
                             number)

    @api.post("/complaints/{number}/citizen-link")
    async def issue_citizen_link(number: str, body: Change, request: Request,
                                 principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.IssueCitizenLink(number, principal.actor, body.reason),
                             number)

    @api.post("/complaints/{number}/recommendations")
    async def recommend(number: str, body: RecommendationRequest, request: Request,
                        principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.AddRecommendation(number, body.text, principal.actor),
                             number)

    @api.post("/complaints/{number}/correspondents")
    async def add_correspondent(number: str, body: CorrespondentRequest, request: Request,
                                principal: Principal = Depends(require(Permission.ACT_ON_FILES))) -> dict[str, Any]:
        return await _change(request, principal, commands.AddCorrespondent(number, body.email, principal.actor,
                                                                           body.reason), number)

    @api.get("/holding-pen")
    async def holding_pen(request: Request, principal: Principal = Depends(require(Permission.HOLDING_PEN))
                          ) -> list[dict[str, Any]]:
        """The messages waiting in the holding pen. Only pending ones: a resolved message was attached to a file
        (perhaps a data-protection one the person may not see), and is read there."""
        held = [views.held_message(h) for h in await store.held_messages("pending")]
        # The list holds senders and texts: a read of personal data, recorded like the page's.
        await record_access(request, principal, "held.read", details={"count": len(held)})
        return held

    async def _held(request: Request, principal: Principal, command: commands.Command[Any]) -> dict[str, Any]:
        outcome = await registry.handle(command)
        await record_access(request, principal, command_action(command), number=outcome.number,
                            details={"held_id": getattr(command, "held_id", None)})
        return {"action": outcome.action, "number": outcome.number}

    @api.post("/holding-pen/{held_id}/attach")
    async def attach(held_id: int, body: AttachRequest, request: Request,
                     principal: Principal = Depends(require(Permission.HOLDING_PEN))) -> dict[str, Any]:
        complaint = await _visible(request, principal, body.number)  # only to a file the person may see
        return await _held(request, principal, commands.AttachHeld(held_id, complaint.number, principal.actor,
                                                                   add_correspondent=body.add_correspondent))

    @api.post("/holding-pen/{held_id}/register")
    async def register(held_id: int, request: Request,
                       principal: Principal = Depends(require(Permission.HOLDING_PEN))) -> dict[str, Any]:
        return await _held(request, principal, commands.RegisterHeld(held_id, principal.actor))

    @api.post("/holding-pen/{held_id}/discard")
    async def discard(held_id: int, request: Request,
                      principal: Principal = Depends(require(Permission.HOLDING_PEN))) -> dict[str, Any]:
        return await _held(request, principal, commands.DiscardHeld(held_id, principal.actor))

    @api.get("/indicators/{year}", response_model=None)
    async def indicators(year: int = Path(ge=FIRST_REPORT_YEAR, le=LAST_REPORT_YEAR),
                         format: str = Query(default="json", pattern="^(json|csv)$"),
                         as_of: date | None = None,
                         principal: Principal = Depends(require(Permission.READ_INDICATORS)),
                         ) -> dict[str, Any] | JSONResponse | PlainTextResponse:
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

    @api.get("/indicators/{year}/survey-comments")
    async def survey_comments(year: int = Path(ge=FIRST_REPORT_YEAR, le=LAST_REPORT_YEAR),
                              principal: Principal = Depends(require(Permission.READ_INDICATORS)),
                              ) -> dict[str, Any]:
        """The satisfaction survey's free comments of the year (issue 17): read together, without anything of who
        wrote them (`survey.py`), for those who read the indicators."""
        return {"year": year, "comments": await survey.comments(store, year)}

    mount_backoffice(api)
    return api
