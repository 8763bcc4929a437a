"""The audit trail in the back office (`Permission.READ_AUDIT`: supervisors and the DPO).

- `/backoffice/audit`: the entries, newest first, filtered by file number, person (email or account id), action
  (one, or a family: every change, every account event) and a date range (days of the registry's time zone),
  50 a page. `?number=MED-2026-00001` answers "who looked at this citizen's file?" (the file page links there).
- `/backoffice/audit/status`: whether the hash chain is whole, or the first broken entry, and when that was checked.
  A check walks the whole trail, so the page loads it apart (htmx, or a link without JavaScript) and shows one at
  most `STATUS_MAX_AGE` old; `?fresh=1` ("check again") runs a new one. `ombudsdesk audit verify` always does.
- `/backoffice/audit/export`: the same selection as CSV (oldest first, every hashed field).

Looking at the trail is itself recorded: each view as `audit.view`, each export as `audit.export`, with the filter.

Entries about a data-protection file are listed, counted and exported for a DPO only
(`Permission.READ_DATA_PROTECTION`): a supervisor does not see them, the reasons given to read such a file may hold
its details (`AuditFilter.data_protection_files`, a condition of the query itself, so counts and pages stay right).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.registry.access.audit import AuditFilter, AuditTrail, record_access
from services.registry.access.audit_chain import ACTION_FAMILIES, FIXED_ACTIONS, AuditRecord, canonical_json
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.rendering import render

router = APIRouter()
audit_access = page_require(Permission.READ_AUDIT)

PAGE_SIZE = 50
FILTER_TEXT_MAX = 320  # the longest email; anything longer matches nothing anyway
LAST_PAGE = 100_000  # deeper than any real trail at 50 a page; keeps OFFSET bounded
# How old a verification the page may show (a new one reads the whole trail; "check again" forces one).
STATUS_MAX_AGE = timedelta(minutes=15)


@dataclass(frozen=True)
class Query:
    """The page's filter as typed (kept to refill the form and build the links), and the errors found in it."""

    number: str = ""
    account: str = ""
    action: str = ""
    since: str = ""
    until: str = ""
    page: int = 1

    def params(self, **changes: Any) -> str:
        values = {key: getattr(self, key) for key in ("number", "account", "action", "since", "until", "page")}
        values.update(changes)
        return urlencode({key: value for key, value in values.items() if value not in ("", None, 1)})


def _text(value: str | None) -> str:
    return " ".join((value or "").split())[:FILTER_TEXT_MAX]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _zone(request: Request) -> tzinfo:
    registry = getattr(request.app.state, "registry", None)
    return registry.policy.timezone if registry is not None else timezone.utc


def _query(number: str | None, account: str | None, action: str | None, since: str | None, until: str | None,
           page: str | None) -> Query:
    try:
        page_number = min(max(int(page or 1), 1), LAST_PAGE)
    except ValueError:
        page_number = 1
    return Query(number=_text(number).upper(), account=_text(account).lower(), action=_text(action)[:64],
                 since=_text(since)[:10], until=_text(until)[:10], page=page_number)


def _criteria(query: Query, zone: tzinfo, principal: Principal) -> tuple[AuditFilter, list[str]]:
    errors = []
    since, until = _day(query.since), _day(query.until)
    if query.since and since is None:
        errors.append("audit.error.since")
    if query.until and until is None:
        errors.append("audit.error.until")
    account: int | str | None = query.account or None
    if query.account.isdigit():
        account = int(query.account)
    criteria = AuditFilter(
        number=query.number or None, account=account, action=query.action or None,
        since=datetime.combine(since, time(0), tzinfo=zone) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(0), tzinfo=zone) if until else None,
        data_protection_files=principal.can(Permission.READ_DATA_PROTECTION),
        limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE)
    return criteria, errors


def _trail(request: Request) -> AuditTrail:
    trail: AuditTrail | None = getattr(request.app.state, "audit", None)
    if trail is None:
        raise RuntimeError("the audit trail is not wired (app.state.audit)")
    return trail


def _action_label(t: Translator, action: str) -> str:
    family, _, rest = action.partition(".")
    if family in ACTION_FAMILIES:
        return t(f"audit.action.{family}", name=rest.replace("_", " "))
    return t(f"audit.action.{action}")


def _row(record: AuditRecord, zone: tzinfo) -> dict[str, Any]:
    details = canonical_json(record.details) if record.details else ""
    return {
        "sequence": record.sequence,
        "at": record.at.isoformat(),
        "at_local": record.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "actor": record.actor,
        "account_id": record.account_id,
        "roles": record.roles,
        "action": record.action,
        "number": record.number,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "reason": record.reason,
        "details": details if len(details) <= 300 else details[:300] + "…",
    }


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, number: str | None = None, account: str | None = None,
                     action: str | None = None, since: str | None = None, until: str | None = None,
                     page: str | None = None, principal: Principal = Depends(audit_access)) -> Response:
    trail, zone = _trail(request), _zone(request)
    query = _query(number, account, action, since, until, page)
    criteria, errors = _criteria(query, zone, principal)
    # Recorded before anything is shown: a view that cannot be recorded is not shown. The file number goes in the
    # details, not in `number`: reading a file's trail is not reading the file (filter on audit.view to see it).
    await record_access(request, principal, "audit.view", details={**criteria.describe(), "page": query.page})
    records = await trail.search(criteria)
    total = await trail.count(criteria)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render(request, principal, "audit/index.html", nav="audit", flash=None, query=query, errors=errors,
                  rows=[_row(record, zone) for record in records], total=total, pages=pages,
                  actions=FIXED_ACTIONS, families=ACTION_FAMILIES,
                  action_label=lambda value: _action_label(Translator(principal.language), value))


@router.get("/audit/status", response_class=HTMLResponse)
async def audit_status(request: Request, fresh: str | None = None,
                       principal: Principal = Depends(audit_access)) -> Response:
    trail = _trail(request)
    if fresh:
        checked_at, result = trail.clock(), await trail.verify()
    else:
        checked_at, result = await trail.recent_verification(STATUS_MAX_AGE)
    return render(request, principal, "audit/status.html", fragment=True, nav="audit", flash=None, result=result,
                  checked_at=checked_at.astimezone(_zone(request)).strftime("%Y-%m-%d %H:%M"))


@router.get("/audit/export")
async def audit_export(request: Request, number: str | None = None, account: str | None = None,
                       action: str | None = None, since: str | None = None, until: str | None = None,
                       principal: Principal = Depends(audit_access)) -> Response:
    trail, zone = _trail(request), _zone(request)
    criteria, errors = _criteria(_query(number, account, action, since, until, None), zone, principal)
    if errors:
        return Response("invalid date (YYYY-MM-DD)\n", status_code=422, media_type="text/plain; charset=utf-8")
    await record_access(request, principal, "audit.export", details=criteria.describe())
    text = await trail.export_csv(criteria)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit-trail.csv"',
                             "Cache-Control": "no-store"})
