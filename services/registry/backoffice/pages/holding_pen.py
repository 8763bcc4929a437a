"""The holding pen: messages the registry would not attach or register on its own (unattributed, held for a reason),
with the files it suggests. Staff attach one to a suggested file or a typed number (optionally admitting the sender
as a correspondent), register it as a new complaint, or discard it (after a confirmation); the same three actions
apply in bulk to the selected messages, with a summary per message.

The list shows who sent what and why it is held; the text of a message is shown only on its own page, a read of
personal data recorded in the audit trail ("held.read"). A suggested file the person may not see (a data-protection
complaint for anyone but a DPO, another service's file) is shown by its number only, and cannot be chosen.

Attaching (one message or in bulk) checks first that the person may see the target file, as the JSON API does: a file
outside their sight gets exactly the answer of a number no file has (403, the same message: its existence is not
told), and the refusal is recorded in the audit trail ("file.denied").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.registry import commands, views
from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.rendering import render
from services.registry.handlers import Conflict, NotFound, Registry
from services.registry.models import HeldMessage
from shared.events import MessageReceived

router = APIRouter()
holding_pen_access = page_require(Permission.HOLDING_PEN)

BULK_ACTIONS = ("register", "discard", "attach")
# A typed case number longer than this is no number of ours (`numbering.NumberFormat`), and is refused unread.
MAX_NUMBER_LENGTH = 40
# One answer for a number no file has and for a file the person may not see (403: "not a file you may attach to").
UNKNOWN_NUMBER = "holding_pen.error.unknown_number"
UNKNOWN_NUMBER_STATUS = 403


@dataclass(frozen=True)
class Result:
    """What became of one held message after an action: `number` on success, `error` (a message key) otherwise."""

    held_id: int
    action: str
    number: str | None = None
    error: str | None = None
    sender: str | None = None
    subject: str = ""


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def _pending(request: Request) -> list[HeldMessage]:
    return await _registry(request).store.held_messages("pending")


async def _suggested_files(request: Request, principal: Principal, held: Iterable[HeldMessage]
                           ) -> dict[str, dict[str, Any]]:
    """The files the held messages suggest, by number: whether the person may see it, and then its subject and
    complainant (else the number alone: a data-protection file's subject is not even listed for others)."""
    store = _registry(request).store
    numbers = {str(s.get("number")) for h in held for s in (h.suggestions or []) if isinstance(s, dict)}
    files: dict[str, dict[str, Any]] = {}
    for number in sorted(numbers):
        complaint = await store.complaint(number)
        if complaint is None or not principal.may_see(data_protection=complaint.data_protection,
                                                       service=complaint.service_concerned):
            files[number] = {"number": number, "visible": False}
        else:
            files[number] = {"number": number, "visible": True, "subject": complaint.subject_line,
                             "complainant": complaint.complainant_name, "status": complaint.status}
    return files


def _row(request: Request, held: HeldMessage, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    shown = views.held_message(held)
    shown["received_local"] = held.received_at.astimezone(_registry(request).clock.zone).strftime("%Y-%m-%d %H:%M")
    shown["suggested"] = [{**files[str(s.get("number"))], "why": s.get("why")}
                          for s in (held.suggestions or []) if isinstance(s, dict) and str(s.get("number")) in files]
    return shown


async def _list_page(request: Request, principal: Principal, *, status_code: int = 200,
                     results: Sequence[Result] = (), flash: str | None = None, error: str | None = None,
                     selected: Iterable[int] = ()) -> HTMLResponse:
    held = await _pending(request)
    files = await _suggested_files(request, principal, held)
    chosen = set(selected)
    if request.query_params.get("select") == "all":
        chosen = {h.id for h in held}
    return render(request, principal, "holding_pen/list.html", status_code=status_code, nav="holding_pen",
                  rows=[_row(request, h, files) for h in held], results=results, flash=flash, error=error,
                  selected=chosen, all_selected=bool(held) and chosen >= {h.id for h in held})


@router.get("/holding-pen", response_class=HTMLResponse)
async def holding_pen(request: Request, principal: Principal = Depends(holding_pen_access)) -> HTMLResponse:
    return await _list_page(request, principal)


async def _pending_one(request: Request, held_id: int) -> HeldMessage | None:
    return next((h for h in await _pending(request) if h.id == held_id), None)


def _event(held: HeldMessage) -> MessageReceived | None:
    try:
        return MessageReceived.model_validate_json(held.event)
    except ValidationError:
        return None  # a row written by an older intake that no longer validates: shown without its text


async def _detail_page(request: Request, principal: Principal, held: HeldMessage, *, status_code: int = 200,
                       error: str | None = None, form: dict[str, Any] | None = None) -> HTMLResponse:
    files = await _suggested_files(request, principal, [held])
    event = _event(held)
    await record_access(request, principal, "held.read", details={"held_id": held.id})
    return render(request, principal, "holding_pen/detail.html", flash=None, status_code=status_code, nav="holding_pen",
                  held=_row(request, held, files), event=event, error=error, form=form or {},
                  identity_notes=[views.identity_note(note, Translator(principal.language).language)
                                  for note in (event.identity_notes if event else ())])


def _gone(request: Request, principal: Principal) -> HTMLResponse:
    return render(request, principal, "holding_pen/gone.html", flash=None, status_code=404, nav="holding_pen")


@router.get("/holding-pen/{held_id}", response_class=HTMLResponse)
async def held_detail(request: Request, held_id: int,
                      principal: Principal = Depends(holding_pen_access)) -> HTMLResponse:
    held = await _pending_one(request, held_id)
    if held is None:
        return _gone(request, principal)
    return await _detail_page(request, principal, held)


def _command(action: str, held_id: int, principal: Principal, number: str, add_correspondent: bool
             ) -> commands.AttachHeld | commands.RegisterHeld | commands.DiscardHeld:
    if action == "attach":
        return commands.AttachHeld(held_id, number, principal.actor, add_correspondent=add_correspondent)
    if action == "register":
        return commands.RegisterHeld(held_id, principal.actor)
    return commands.DiscardHeld(held_id, principal.actor)


async def _may_attach_to(request: Request, principal: Principal, number: str) -> bool:
    """Whether the file `number` exists and this person may see it; a file they may not see is recorded as a refused
    access. (Its visibility may change between this check and the attach: the same as through the JSON API.)"""
    complaint = await _registry(request).store.complaint(number.strip().upper())
    if complaint is None:
        return False
    if not principal.may_see(data_protection=bool(complaint.data_protection), service=complaint.service_concerned):
        await record_access(request, principal, "file.denied", number=complaint.number)
        return False
    return True


async def _apply(request: Request, principal: Principal, action: str, held_id: int, *, number: str = "",
                 add_correspondent: bool = False) -> Result:
    """One action on one held message, recorded in the audit trail; a refusal becomes a message, never an error."""
    if action == "attach" and not await _may_attach_to(request, principal, number):
        return Result(held_id, action, error=UNKNOWN_NUMBER)
    command = _command(action, held_id, principal, number, add_correspondent)
    try:
        outcome = await _registry(request).handle(command)
    except NotFound:
        # The held message was checked pending just before: what is missing is the typed file (or, in a race,
        # the message, which another person resolved and which `Conflict` reports below).
        return Result(held_id, action, error=UNKNOWN_NUMBER if action == "attach"
                      else "holding_pen.error.already_resolved")
    except Conflict:
        return Result(held_id, action, error="holding_pen.error.already_resolved")
    await record_access(request, principal, f"change.{action}_held", number=outcome.number,
                        details={"held_id": held_id, **({"add_correspondent": add_correspondent}
                                                        if action == "attach" else {})})
    return Result(held_id, action, number=outcome.number)


def _typed_number(value: str) -> str | None:
    """A number as typed (spaces around it dropped), or None when it cannot be one (empty, too long)."""
    number = value.strip()
    if not number or len(number) > MAX_NUMBER_LENGTH:
        return None
    return number


def _flash(principal: Principal, result: Result) -> str:
    t = Translator(principal.language)
    return t(f"holding_pen.done.{result.action}", number=result.number or "")


@router.post("/holding-pen/{held_id}/attach", response_class=HTMLResponse)
async def attach(request: Request, held_id: int, principal: Principal = Depends(holding_pen_access)) -> HTMLResponse:
    form = await request.form()
    held = await _pending_one(request, held_id)
    if held is None:
        return _gone(request, principal)
    other = str(form.get("other_number") or "")
    chosen = other if other.strip() else str(form.get("number") or "")
    add_correspondent = form.get("add_correspondent") == "1"
    number = _typed_number(chosen)
    kept = {"other_number": other, "add_correspondent": add_correspondent}
    if number is None:
        return await _detail_page(request, principal, held, status_code=422,
                                  error="holding_pen.error.number_required", form=kept)
    result = await _apply(request, principal, "attach", held_id, number=number, add_correspondent=add_correspondent)
    if result.error == UNKNOWN_NUMBER:
        return await _detail_page(request, principal, held, status_code=UNKNOWN_NUMBER_STATUS, error=result.error,
                                  form=kept)
    if result.error:
        return await _list_page(request, principal, status_code=409, error=result.error)
    return await _list_page(request, principal, flash=_flash(principal, result))


@router.post("/holding-pen/{held_id}/register", response_class=HTMLResponse)
async def register(request: Request, held_id: int,
                   principal: Principal = Depends(holding_pen_access)) -> HTMLResponse:
    if await _pending_one(request, held_id) is None:
        return _gone(request, principal)
    result = await _apply(request, principal, "register", held_id)
    if result.error:
        return await _list_page(request, principal, status_code=409, error=result.error)
    return await _list_page(request, principal, flash=_flash(principal, result))


@router.post("/holding-pen/{held_id}/discard", response_class=HTMLResponse)
async def discard(request: Request, held_id: int, principal: Principal = Depends(holding_pen_access)) -> HTMLResponse:
    form = await request.form()
    held = await _pending_one(request, held_id)
    if held is None:
        return _gone(request, principal)
    if form.get("confirmed") != "1":
        files = await _suggested_files(request, principal, [held])
        return render(request, principal, "holding_pen/confirm_discard.html", flash=None, nav="holding_pen",
                      rows=[_row(request, held, files)], action=f"holding-pen/{held_id}/discard", bulk=False)
    result = await _apply(request, principal, "discard", held_id)
    if result.error:
        return await _list_page(request, principal, status_code=409, error=result.error)
    return await _list_page(request, principal, flash=_flash(principal, result))


def _ids(values: Iterable[Any]) -> list[int]:
    """The selected held messages' ids, in order, each once; anything that is no id is ignored."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if text.isascii() and text.isdigit() and len(text) <= 18 and int(text) not in ids:
            ids.append(int(text))
    return ids


@router.post("/holding-pen/bulk", response_class=HTMLResponse)
async def bulk(request: Request, principal: Principal = Depends(holding_pen_access)) -> HTMLResponse:
    form = await request.form()
    ids = _ids(form.getlist("held"))
    action = str(form.get("action") or "")
    if action not in BULK_ACTIONS:
        return await _list_page(request, principal, status_code=422, error="holding_pen.error.action_required",
                                selected=ids)
    if not ids:
        return await _list_page(request, principal, status_code=422, error="holding_pen.error.nothing_selected")
    number = _typed_number(str(form.get("number") or ""))
    if action == "attach" and number is None:
        return await _list_page(request, principal, status_code=422, error="holding_pen.error.number_required",
                                selected=ids)
    pending = {h.id: h for h in await _pending(request)}
    if action == "discard" and form.get("confirmed") != "1":
        chosen = [pending[i] for i in ids if i in pending]
        files = await _suggested_files(request, principal, chosen)
        return render(request, principal, "holding_pen/confirm_discard.html", flash=None, nav="holding_pen",
                      rows=[_row(request, h, files) for h in chosen], action="holding-pen/bulk", bulk=True)
    # A message resolved meanwhile by someone else is named in the summary all the same (looked up among all).
    known = pending if all(i in pending for i in ids) else {
        h.id: h for h in await _registry(request).store.held_messages(None)}
    # The target is checked once for the whole selection (one refused access in the audit trail, not one per message).
    target_refused = action == "attach" and not await _may_attach_to(request, principal, number or "")
    results = []
    for held_id in ids:
        held = pending.get(held_id)
        if held is None:
            gone = known.get(held_id)
            results.append(Result(held_id, action, error="holding_pen.error.already_resolved",
                                  sender=gone.sender_email if gone else None,
                                  subject=gone.subject_line if gone else ""))
            continue
        if target_refused:
            result = Result(held_id, action, error=UNKNOWN_NUMBER)
        else:
            result = await _apply(request, principal, action, held_id, number=number or "")
        results.append(replace(result, sender=held.sender_email, subject=held.subject_line))
    return await _list_page(request, principal, results=results,
                            status_code=UNKNOWN_NUMBER_STATUS if target_refused else 200)
