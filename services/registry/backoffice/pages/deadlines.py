"""The deadlines dashboard: what is overdue, due today and due later this week, and the same counted by handler — the
data of the deadline digest mail (`RegistryStore.deadline_overview`: the earliest open deadline of each open file,
the acknowledgment until sent, the answer until given and not while paused).

Only files within the person's scope are listed or counted: a data-protection complaint appears (even as a count)
only for a DPO. "Mine only" keeps the files the person handles.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.rendering import render
from services.registry.handlers import Registry
from services.registry.models import Complaint
from services.registry.repository import DeadlineOverview

router = APIRouter()

SECTIONS = ("overdue", "due_today", "due_this_week")


def week_end(today: date) -> date:
    """The Sunday closing today's week (ISO weeks run Monday to Sunday); today itself on a Sunday."""
    return today + timedelta(days=6 - today.weekday())


def _entry(complaint: Complaint, overview: DeadlineOverview, today: date) -> dict[str, Any]:
    kind, due = overview.deadlines.get(complaint.number, ("answer", complaint.answer_due))
    return {"number": complaint.number, "subject": complaint.subject_line, "handler": complaint.handler,
            "status": complaint.status, "deadline_kind": kind, "due": due, "days_late": (today - due).days}


@router.get("/deadlines", response_class=HTMLResponse)
async def deadlines(request: Request, mine: str = "",
                    principal: Principal = Depends(page_require(Permission.READ_FILES))) -> HTMLResponse:
    registry: Registry = request.app.state.registry
    today = registry.today()
    overview = await registry.store.deadline_overview(today, principal.scope, week_end=week_end(today))
    mine_only = mine == "1"

    def kept(complaints: list[Complaint]) -> list[dict[str, Any]]:
        return [_entry(c, overview, today) for c in complaints if not mine_only or c.handler == principal.actor]

    sections = {name: kept(getattr(overview, name)) for name in SECTIONS}
    by_handler = [counts for counts in overview.by_handler if not mine_only or counts.handler == principal.actor]
    return render(request, principal, "deadlines/dashboard.html", flash=None, nav="deadlines", sections=sections,
                  by_handler=by_handler, today=today, week_end=overview.week_end, mine_only=mine_only)
