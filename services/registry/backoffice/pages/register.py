"""The register page (`/backoffice/register`): the list of files a person may see, filtered, searched, sorted and
paged; saved searches (own and shared); the CSV export of the current list; bulk actions on the selected files.

- The filters live in the query string (`RegisterQuery`, pure): a list is a bookmarkable link, a saved search is
  such a query string, and the same query drives the page, its htmx fragment (`HX-Target: register-results`, the
  table without the page around it) and the export. Unknown or malformed values are dropped, never an error:
  a query string is typed, pasted and edited by people.
- Nobody lists a file outside their `Principal.scope`: the scope is a criterion of the register's own query.
- Bulk actions send every selected file through `Registry.handle` with the person's identity as actor, one file at a
  time; a refusal of one (the permission table, the file's visibility, a `Conflict` of the register) is listed
  with its reason and does not stop the others. A bulk status change is confirmed first.
- The export is bounded (`EXPORT_LIMIT` rows), escaped against formulas (`shared.untrusted_text.csv_cell`) and
  recorded in the audit trail with the query and the number of rows.

Query string: `q` (text, or a case number), `status`, `kind`, `channel`, `service`, `theme`, `handler` (an email,
or `-` for files nobody handles), `due_before` (ISO date), `overdue=1`, `screening=pending`, `sender` (verified,
unverified, failed), `sort` (number, received, answer_due, status), `order` (asc, desc), `page` (from 1).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.registry import commands
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.accounts import FILE_HANDLING_ROLES
from services.registry.access.roles import Permission, Principal
from services.registry.api import command_action
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.rendering import BASE_PATH, is_htmx, render
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.models import Complaint
from services.registry.repository import FINAL_STATUSES, ComplaintFilter
from services.registry.views import TextContext
from services.registry.vocabulary import VOCABULARIES, Kind, Status
from shared.untrusted_text import csv_cell

router = APIRouter()

PAGE_SIZE = 50
# How far past the current page the list is counted: an exact count reads every file the person may see (on a
# register of 1,000,000 complaints 0.4-1.4 s per view, docs/benchmarks.md), where the pager needs to know only
# whether there is a next page; past the bound it says "more than N".
COUNT_MARGIN = 10 * PAGE_SIZE
# The most rows one export writes; a larger list is refused with a message asking for narrower filters (a complete
# copy of the register is a database backup, not a staff export).
EXPORT_LIMIT = 10_000
# The most files one bulk action takes (a page is PAGE_SIZE; a hand-made form may send more).
BULK_LIMIT = 500
# The longest internal note a bulk action adds (the register's own bound for a note).
NOTE_LIMIT = 20_000
SORTS = ("number", "received", "answer_due", "status")
# The order a column sorts in when first chosen: newest files first, the soonest deadline first.
FIRST_ORDER = {"number": "desc", "received": "desc", "answer_due": "asc", "status": "asc"}
UNASSIGNED = "-"  # `handler=-`: files nobody handles (no email address is a lone dash)
VERDICTS = tuple(VOCABULARIES["sender_verdict"])
CHANNELS = tuple(VOCABULARIES["channel"])
# Status changes offered in bulk: those that need no per-file text (a final answer, an ombudsman to redirect to,
# inadmissibility reasons and outcomes are given file by file).
BULK_TARGETS = (Status.ACKNOWLEDGED.value, Status.IN_REVIEW.value, Status.WAITING_FOR_CITIZEN.value,
                Status.WITHDRAWN.value)
# Bounds of what a person types into the query string (a longer value is cut, not refused).
MAX_TEXT, MAX_ID, MAX_EMAIL, MAX_PAGE = 200, 200, 320, 1_000_000
MAX_SEARCH_NAME = 100


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "on", "yes"}


def _choice(value: str | None, allowed: Iterable[str]) -> str | None:
    value = (value or "").strip()
    return value if value in allowed else None


def _text(value: str | None, limit: int) -> str | None:
    value = " ".join((value or "").split())[:limit]
    return value or None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class RegisterQuery:
    """The register's filters, sort and page as the query string carries them (pure: parse, print, criteria)."""

    text: str | None = None
    status: str | None = None
    kind: str | None = None
    channel: str | None = None
    service: str | None = None
    theme: str | None = None
    handler: str | None = None  # None: anyone; "": nobody (UNASSIGNED in the query string)
    due_before: date | None = None
    overdue: bool = False
    screening_pending: bool = False
    sender: str | None = None
    sort: str = "number"
    descending: bool = True
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> RegisterQuery:
        values = dict(params.items() if isinstance(params, Mapping) else params)
        handler = (values.get("handler") or "").strip()
        sort = _choice(values.get("sort"), SORTS) or "number"
        order = _choice(values.get("order"), ("asc", "desc")) or FIRST_ORDER[sort]
        try:
            page = min(max(int((values.get("page") or "1").strip()), 1), MAX_PAGE)
        except ValueError:
            page = 1
        return cls(
            text=_text(values.get("q"), MAX_TEXT),
            status=_choice(values.get("status"), (s.value for s in Status)),
            kind=_choice(values.get("kind"), (k.value for k in Kind)),
            channel=_choice(values.get("channel"), CHANNELS),
            service=_text(values.get("service"), MAX_ID),
            theme=_text(values.get("theme"), MAX_ID),
            handler="" if handler == UNASSIGNED else _text(handler, MAX_EMAIL),
            due_before=_date(values.get("due_before")),
            overdue=_flag(values.get("overdue")),
            screening_pending=(values.get("screening") or "").strip() == "pending",
            sender=_choice(values.get("sender"), VERDICTS),
            sort=sort,
            descending=order == "desc",
            page=page,
        )

    @classmethod
    def from_string(cls, query_string: str) -> RegisterQuery:
        return cls.parse(parse_qsl(query_string.lstrip("?"), keep_blank_values=True))

    def pairs(self) -> list[tuple[str, str]]:
        """The query string's parameters, defaults left out (a short, canonical, bookmarkable link)."""
        found: list[tuple[str, str | None]] = [
            ("q", self.text), ("status", self.status), ("kind", self.kind), ("channel", self.channel),
            ("service", self.service), ("theme", self.theme),
            ("handler", UNASSIGNED if self.handler == "" else self.handler),
            ("due_before", self.due_before.isoformat() if self.due_before else None),
            ("overdue", "1" if self.overdue else None), ("screening", "pending" if self.screening_pending else None),
            ("sender", self.sender),
            ("sort", self.sort if self.sort != "number" else None),
            ("order", self.order if self.order != FIRST_ORDER[self.sort] else None),
            ("page", str(self.page) if self.page > 1 else None),
        ]
        return [(key, value) for key, value in found if value is not None]

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"

    def query_string(self, **changes: Any) -> str:
        return urlencode((replace(self, **changes) if changes else self).pairs())

    def link(self, **changes: Any) -> str:
        query = self.query_string(**changes)
        return f"{BASE_PATH}/register" + (f"?{query}" if query else "")

    def sorted_by(self, column: str) -> str:
        """The link that sorts by `column`: the other way round when it is the current sort, first page."""
        if column == self.sort:
            return self.link(descending=not self.descending, page=1)
        return self.link(sort=column, descending=FIRST_ORDER[column] == "desc", page=1)

    @property
    def filtered(self) -> bool:
        return self.query_string(sort="number", descending=True, page=1) != ""

    def criteria(self, principal: Principal, registry: Registry, *, limit: int, offset: int) -> ComplaintFilter:
        return ComplaintFilter(
            status=self.status, kind=self.kind, channel=self.channel, service=self.service, theme=self.theme,
            handler=self.handler, due_before=self.due_before,
            overdue_on=registry.today() if self.overdue else None, screening_pending=self.screening_pending,
            sender_verdict=self.sender, text=self.text, scope=principal.scope, sort=self.sort,
            descending=self.descending, limit=limit, offset=offset, number_format=registry.policy.number_format)


# --- helpers of the handlers -----------------------------------------------------------------------------------------
def _registry(request: Request) -> Registry:
    return request.app.state.registry  # type: ignore[no-any-return]


def _context(request: Request, principal: Principal) -> TextContext:
    policy = _registry(request).policy
    return TextContext(language=principal.language, zone=policy.timezone, screening=policy.screening)


def _local_date(moment: datetime | None, context: TextContext) -> date | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(context.zone).date()


def is_overdue(complaint: Complaint, today: date) -> bool:
    return complaint.answer_due is not None and complaint.answer_due < today and complaint.status not in FINAL_STATUSES


def _options(entries: Sequence[Any], language: str) -> list[tuple[str, str]]:
    return [(entry.id, entry.label(language)) for entry in entries]


async def handler_choices(request: Request, principal: Principal) -> list[tuple[str, str]]:
    """Whom a file can be given to: (email, name) of the active accounts that handle files
    (`AccountStore.assignable`'s rule), the person first when they are one of them. Shared with the file page."""
    accounts = getattr(request.app.state, "accounts", None)
    if accounts is None:
        return []
    people = [(account.email, account.display_name or account.email) for account in await accounts.list_accounts()
              if account.active and set(account.roles) & FILE_HANDLING_ROLES]
    mine = [pair for pair in people if pair[0] == principal.email]
    return mine + sorted((pair for pair in people if pair[0] != principal.email), key=lambda pair: pair[1].lower())


async def may_handle(request: Request, handler: str) -> bool:
    """Whether a file may be given to `handler` (`AccountStore.assignable`: deadline digests and reminders go to
    the handler's address, so it must be an active account that handles files). No account store: nobody."""
    accounts = getattr(request.app.state, "accounts", None)
    return accounts is not None and bool(await accounts.assignable(handler))


@dataclass
class Row:
    complaint: Complaint
    received: str
    answer_due: str
    overdue: bool
    service: str
    theme: str


def _rows(complaints: Iterable[Complaint], context: TextContext, today: date) -> list[Row]:
    return [Row(c, context.date(_local_date(c.received_at, context)), context.date(c.answer_due),
                is_overdue(c, today), context.service(c.service_concerned), context.theme(c.theme))
            for c in complaints]


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def count_bound(page: int) -> int:
    """The most files counted for a view of `page`: its own rows, COUNT_MARGIN more, and one to tell that there are
    more than that."""
    return page * PAGE_SIZE + COUNT_MARGIN + 1


@dataclass
class Listing:
    """A page of the list. `total` is exact unless `more`: then there are more than `total` files (the count
    stopped at its bound), and `total` is a whole number of pages past the current one."""

    query: RegisterQuery  # its page within the pages there are
    rows: list[Row]
    total: int
    more: bool = False

    @property
    def pages(self) -> int:
        return page_count(self.total)

    @property
    def has_next(self) -> bool:
        return self.more or self.query.page < self.pages


def paged_total(query: RegisterQuery, counted: int) -> tuple[RegisterQuery, int, bool]:
    """(the query on a page that exists, the total to show, whether there are more files than that) from a count
    bounded by `count_bound(query.page)` (pure)."""
    bound = count_bound(query.page)
    if counted >= bound:  # the current page and COUNT_MARGIN more are full: the page exists
        return query, bound - 1, True
    return replace(query, page=min(query.page, page_count(counted))), counted, False  # past the end: the last


async def _listing(request: Request, principal: Principal, query: RegisterQuery) -> Listing:
    registry = _registry(request)
    store = registry.store
    counted = await store.count_complaints(query.criteria(principal, registry, limit=1, offset=0),
                                           at_most=count_bound(query.page))
    query, total, more = paged_total(query, counted)
    criteria = query.criteria(principal, registry, limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE)
    complaints = await store.list_complaints(criteria)
    return Listing(query, _rows(complaints, _context(request, principal), registry.today()), total, more)


async def _page(request: Request, principal: Principal, query: RegisterQuery, *, error: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    """The register page, or only its results for htmx (the table a filter, the sort or the page changed)."""
    listing = await _listing(request, principal, query)
    context: dict[str, Any] = {"nav": "register", "flash": None, "error": error, "query": listing.query,
                               "listing": listing}
    headers = {"Vary": "HX-Request, HX-Target"}
    if (is_htmx(request) and request.headers.get("HX-Target") == "register-results"
            and request.headers.get("HX-History-Restore-Request") != "true"):
        # The address bar shows the list's canonical link (not every empty field of the filter form).
        headers["HX-Push-Url"] = listing.query.link()
        return render(request, principal, "register/results.html", status_code=status_code, headers=headers,
                      **context)
    registry = _registry(request)
    language = Translator(principal.language).language
    screening = registry.policy.screening
    context.update({
        "unassigned": UNASSIGNED, "statuses": [s.value for s in Status], "kinds": [k.value for k in Kind],
        "channels": CHANNELS, "verdicts": VERDICTS, "bulk_targets": BULK_TARGETS, "bulk_key": uuid.uuid4().hex,
        "services": _options(screening.services, language) if screening else [],
        "themes": _options(screening.themes, language) if screening else [],
        "handlers": await handler_choices(request, principal),
        "searches": await registry.store.saved_searches(principal.account_id),
    })
    return render(request, principal, "register/list.html", status_code=status_code, headers=headers, **context)


# --- the list --------------------------------------------------------------------------------------------------------
@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request, principal: Principal = Depends(page_require(Permission.READ_FILES))
                        ) -> HTMLResponse:
    return await _page(request, principal, RegisterQuery.parse(request.query_params.multi_items()))


# --- saved searches --------------------------------------------------------------------------------------------------
@router.post("/register/searches", response_model=None)
async def save_search(request: Request, principal: Principal = Depends(page_require(Permission.READ_FILES))
                      ) -> Response:
    form = await request.form()  # its CSRF token was checked by `page_require` (access.dependencies)
    # Stored in its canonical form: only the register's own parameters, whatever the form carried.
    query = RegisterQuery.from_string(str(form.get("query") or "")).query_string(page=1)
    name = _text(str(form.get("name") or ""), MAX_SEARCH_NAME)
    if not name:
        return await _page(request, principal, RegisterQuery.from_string(query), status_code=422,
                           error=Translator(principal.language)("register.search_name_needed"))
    await _registry(request).store.save_search(principal.account_id, name, query, _flag(str(form.get("shared"))))
    return RedirectResponse(f"{BASE_PATH}/register" + (f"?{query}" if query else ""), status_code=303)


@router.post("/register/searches/{search_id}/delete", response_model=None)
async def delete_search(request: Request, search_id: int,
                        principal: Principal = Depends(page_require(Permission.READ_FILES))) -> Response:
    form = await request.form()  # its CSRF token was checked by `page_require` (access.dependencies)
    # The store deletes only the person's own search: another's id does nothing.
    await _registry(request).store.delete_search(principal.account_id, search_id)
    back = RegisterQuery.from_string(str(form.get("back") or "")).link()
    return RedirectResponse(back, status_code=303)


# --- the export ------------------------------------------------------------------------------------------------------
EXPORT_COLUMNS = ("number", "received", "complainant", "email", "subject", "kind", "status", "channel", "service",
                  "theme", "handler", "answer_due", "overdue", "sender")


def export_csv(rows: Sequence[Row], t: Translator, context: TextContext) -> str:
    """The rows as CSV (RFC 4180, CRLF), headers and vocabulary in the reader's language, dates ISO (what a
    spreadsheet reads as dates); a cell that a spreadsheet would take for a formula is quoted (`csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(t(f"register.column.{column}")) for column in EXPORT_COLUMNS])
    for row in rows:
        c = row.complaint
        received = _local_date(c.received_at, context)
        writer.writerow([csv_cell(cell) for cell in (
            c.number, received.isoformat() if received else "", c.complainant_name, c.complainant_email or "",
            c.subject_line, context.term(c.kind), context.term(c.status), context.term(c.channel, "channel"),
            row.service if c.service_concerned else "", row.theme if c.theme else "", c.handler or "",
            c.answer_due.isoformat() if c.answer_due else "", t("register.yes") if row.overdue else "",
            context.term(c.sender_verdict, "sender_verdict") if c.sender_verdict else "",
        )])
    return out.getvalue()


@router.get("/register/export.csv", response_model=None)
async def export(request: Request, principal: Principal = Depends(page_require(Permission.EXPORT))) -> Response:
    query = RegisterQuery.parse(request.query_params.multi_items())
    registry = _registry(request)
    # Every page of the list, in its order; one row more than the limit tells that the list is too long.
    complaints = await registry.store.list_complaints(
        query.criteria(principal, registry, limit=EXPORT_LIMIT + 1, offset=0))
    t = Translator(principal.language)
    if len(complaints) > EXPORT_LIMIT:
        return await _page(request, principal, replace(query, page=1), status_code=422,
                           error=t("register.export_too_large", limit=EXPORT_LIMIT))
    context = _context(request, principal)
    text = export_csv(_rows(complaints, context, registry.today()), t, context)
    await record_access(request, principal, "export",
                        details={"query": query.query_string(page=1), "rows": len(complaints)})
    filename = f"register-{registry.today().isoformat()}.csv"
    # A byte order mark: spreadsheets then read the file as UTF-8 (names with accents).
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


# --- bulk actions ----------------------------------------------------------------------------------------------------
@dataclass
class BulkResult:
    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _numbers(values: Iterable[Any], registry: Registry) -> list[str]:
    """The selected case numbers, normalised, each once, in their order; anything else is dropped."""
    number_format = registry.policy.number_format
    found: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and number_format.parse(value.strip()):
            found[number_format.normalise(value.strip())] = None
    return list(found)[:BULK_LIMIT]


@dataclass(frozen=True)
class BulkAction:
    """One bulk action as the form asked it, checked for what it needs (pure)."""

    action: str
    handler: str | None = None  # assign: an email, or None to unassign
    target: str | None = None  # transition
    reason: str | None = None
    kind: str | None = None  # classify: None leaves each unchanged
    service: str | None = None
    theme: str | None = None
    note: str | None = None  # note: the text added to every file
    request_key: str | None = None  # note: the form's key, so that submitting it twice adds each note once

    @classmethod
    def from_form(cls, form: FormData) -> BulkAction | None:
        def value(name: str) -> str:
            raw = form.get(name)
            return raw if isinstance(raw, str) else ""

        action, reason = value("action"), _text(value("reason"), 2000)
        if action == "assign":
            handler = value("handler").strip()
            if handler == UNASSIGNED:
                return cls("assign", None, reason=reason)
            if "@" not in handler or len(handler) > MAX_EMAIL or any(ch.isspace() for ch in handler):
                return None
            return cls("assign", handler.lower(), reason=reason)
        if action == "transition":
            target = _choice(value("target"), BULK_TARGETS)
            return cls("transition", target=target, reason=reason) if target else None
        if action == "classify":
            changed = cls("classify", reason=reason, kind=_choice(value("kind"), (k.value for k in Kind)),
                          service=_text(value("service"), MAX_ID), theme=_text(value("theme"), MAX_ID))
            return changed if changed.kind or changed.service or changed.theme else None
        if action == "confirm_screening":
            return cls("confirm_screening", reason=reason)
        if action == "note":
            note, key = _text(value("note"), NOTE_LIMIT), _text(value("request_key"), 100)
            return cls("note", reason=reason, note=note, request_key=key) if note and key else None
        return None

    def permission_refusal(self, principal: Principal, complaint: Complaint) -> str | None:
        """The key of the message refusing this action on this file to this person, or None if they may."""
        if self.action == "assign":
            if principal.can(Permission.REASSIGN):
                return None
            # Without REASSIGN: only take, for oneself, a file nobody handles (or already one's own).
            if (principal.can(Permission.TAKE_FILES) and self.handler == principal.actor.lower()
                    and (complaint.handler or "").lower() in {"", principal.actor.lower()}):
                return None
            return "register.refused_reassign"
        return None if principal.can(Permission.ACT_ON_FILES) else "register.refused_act"

    def command(self, number: str, actor: str) -> commands.Command[Any]:
        if self.action == "assign":
            return commands.Assign(number, self.handler, actor, self.reason)
        if self.action == "transition":
            assert self.target is not None
            return commands.Transition(number, self.target, actor, self.reason)
        if self.action == "confirm_screening":
            # No decision given: the screening proposal of each file is confirmed as it stands (its own reasons).
            return commands.DecideScreening(number, actor, self.reason)
        if self.action == "note":
            assert self.note is not None and self.request_key is not None
            return commands.AddNote(number, self.note, actor, request_key=f"bulk:{self.request_key}:{number}")
        return commands.Classify(number, actor, self.reason, kind=self.kind, service=self.service, theme=self.theme)


async def run_bulk(request: Request, principal: Principal, action: BulkAction, numbers: Sequence[str]
                   ) -> BulkResult:
    """Each file through the register on its own: one refused does not stop the others."""
    registry = _registry(request)
    t = Translator(principal.language)
    result = BulkResult()
    for number in numbers:
        complaint = await registry.store.complaint(number)
        # A file outside the person's scope is refused as unknown: its existence is not told either.
        if complaint is None or not principal.may_see(
                data_protection=bool(getattr(complaint, "data_protection", False)), service=complaint.service_concerned):
            result.refused.append((number, t("register.refused_unknown")))
            continue
        refusal = action.permission_refusal(principal, complaint)
        if refusal is not None:
            result.refused.append((number, t(refusal)))
            continue
        command = action.command(number, principal.actor)
        try:
            await registry.handle(command)
        except Conflict as error:
            result.refused.append((number, str(error)))
            continue
        except NotFound:
            result.refused.append((number, t("register.refused_unknown")))
            continue
        await record_access(request, principal, command_action(command), number=number, reason=action.reason)
        result.done.append(number)
    return result


@router.post("/register/bulk", response_class=HTMLResponse)
async def bulk(request: Request, principal: Principal = Depends(page_require(Permission.READ_FILES))
               ) -> HTMLResponse:
    form = await request.form()  # its CSRF token was checked by `page_require` (access.dependencies)
    registry = _registry(request)
    back = RegisterQuery.from_string(str(form.get("back") or ""))
    numbers = _numbers(form.getlist("numbers"), registry)
    action = BulkAction.from_form(form)
    t = Translator(principal.language)
    if not numbers or action is None:
        return await _page(request, principal, back, status_code=422,
                           error=t("register.bulk_nothing" if not numbers else "register.bulk_incomplete"))
    if action.action == "assign" and action.handler is not None and not await may_handle(request, action.handler):
        return await _page(request, principal, back, status_code=422, error=t("register.refused_not_assignable"))
    common = {"nav": "register", "flash": None, "back": back, "action": action, "numbers": numbers}
    if action.action == "transition" and form.get("confirmed") != "1":
        return render(request, principal, "register/confirm.html", **common)
    result = await run_bulk(request, principal, action, numbers)
    return render(request, principal, "register/bulk_result.html", status_code=200 if result.done else 409,
                  result=result, **common)
