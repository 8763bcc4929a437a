"""The file page: everything `register show` prints about one complaint, and the actions staff take on it.

Routes (under `/backoffice`):

- `GET /files/{number}`: the file (`?order=oldest` for the thread oldest first; newest first by default). Unknown
  number: 404 page. A file outside the person's visibility: 403 page, audited "file.denied". Anyone but the file's
  handler first states why they read it (`POST /files/{number}/reason`; see `file_access` for how long it is kept);
  every read is audited "file.read", with that reason.
- `GET /files/{number}/messages/{message_key}/original` and `GET /files/{number}/attachments/{object_name}`: the raw
  original of a message and an attachment, from intake's object stores (`file_originals`), only those of this file,
  audited "original.download" / "attachment.download"; always a download (`Content-Disposition: attachment`, never
  rendered by the browser).
- `POST /files/{number}/actions/{name}`: one action of `file_actions.ACTIONS`, a command with the person as actor,
  audited "change.<command>"; a refusal of the register (`Conflict`) is shown on the page, never a 500; an
  irreversible one asks for confirmation first. Among them, revoking the citizen's personal links and sending a new
  one (issue 17); whoever may act on files sees the file's links above them (`_citizen_links`: dates and actors
  only, never a token or its hash).
- `GET /files/{number}/messages/{message_key}/quoted`: a message's quoted history. The page leaves it out (folded,
  it was most of the page's weight: 708 KB for a file of 100 messages) and loads it when it is unfolded (htmx, the
  `<pre>` alone); without JavaScript, the folded part holds a link to it, a page of its own. Audited "file.read".
- `POST /files/{number}/answer/preview`: what the notifier would send (`app.state.notice_preview`), shown before
  sending; `GET /files/{number}/directory?dq=`: the directory of ombudsmen, searched for the redirect forms. The
  page searches it only when asked (`?dq=` in its address, an empty query lists every entry); else the redirect
  form loads the list when it is unfolded (htmx) or asks for a search.

htmx requests get the `#file` fragment back (or the preview, or the directory results); without JavaScript every
form works as a plain POST that redirects back to the file (303).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import load_only

from services.registry import commands
from services.registry.access.audit import reason_required, record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.i18n import Translator
from services.registry.backoffice.pages.file_access import (
    clean_reason,
    file_path,
    is_handler,
    may_see,
    remember_reason,
    remembered_reason,
)
from services.registry.api import command_action
from services.registry.backoffice.pages.file_actions import ACTIONS, DONE_KEYS, ActionInput, FormError, other_file
from services.registry.backoffice.pages.file_originals import OriginalMissing
from services.registry.backoffice.pages.file_view import (
    CitizenLinks,
    citizen_links_view,
    directory_matches,
    file_view,
    quoted_history,
    text_context,
)
from services.registry.backoffice.pages.register import handler_choices, may_handle
from services.registry.backoffice.rendering import is_htmx, render
from services.registry.handlers import Conflict, NotFound
from services.registry.models import CitizenLink
from services.registry.vocabulary import LANGUAGES, FoundedCategory, InadmissibilityReason, Kind, Outcome, Status
from shared.events import NoticePreview, NoticePreviewRequest, Party, PreviewProblem

log = structlog.get_logger(__name__)

router = APIRouter()

READ = page_require(Permission.READ_FILES)
# Refusal codes of the register (`workflow.IllegalTransition.code`, `deadlines.ExtensionRefused.reason`) with a
# message of their own in `messages/file.toml`; any other refusal shows the generic one and the register's words.
KNOWN_REFUSALS = frozenset({"illegal_transition", "already_extended", "no_extension_allowed", "notice_too_late",
                            "outcome_required", "outcome_not_allowed", "category_required", "category_not_allowed",
                            "reason_required"})


# --- loading and guarding a file -------------------------------------------------------------------------------------
class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _found(request: Request, principal: Principal, number: str) -> Sequence[Any]:
    """The file as `RegistryStore.complaint_file` returns it, if this person may see it (404 / 403 pages else)."""
    found = await request.app.state.registry.store.complaint_file(number.strip().upper())
    if found is None:
        raise _Refused(_error_page(request, principal, 404, "error.not_found"))
    if not may_see(principal, found[0]):
        await record_access(request, principal, "file.denied", number=found[0].number)
        raise _Refused(_error_page(request, principal, 403, "error.forbidden"))
    return found


def _read_reason(request: Request, principal: Principal, complaint: Any) -> str | None:
    """"" for the handler (no reason asked), the reason stated for this file in this session, or None."""
    if not reason_required(principal, complaint.handler):
        return ""
    return remembered_reason(request, principal, complaint.number)


def _error_page(request: Request, principal: Principal, status: int, key: str) -> Response:
    return render(request, principal, "file/error.html", status_code=status, message_key=key, nav="register")


def _gate(request: Request, principal: Principal, number: str, *, error: str | None = None,
          status: int = 200) -> Response:
    return render(request, principal, "file/gate.html", status_code=status, number=number, error=error,
                  reasons=READ_REASONS, nav="register")


# Reasons offered to whoever is not the handler (the field is free text; these are suggestions).
READ_REASONS = ("triage", "colleague_absent", "supervision", "data_subject_request", "quality_control")


# --- the page --------------------------------------------------------------------------------------------------------
async def _citizen_links(request: Request, principal: Principal, complaint: Any) -> CitizenLinks | None:
    """The file's personal links as the page shows them, for whoever may act on the file (None for anyone else).
    Only their dates and actors are read: the selector and the verifier's hash never leave the database."""
    if not principal.can(Permission.ACT_ON_FILES):
        return None
    registry = request.app.state.registry
    async with registry.store.reading() as tx:
        links = list((await tx.session.execute(
            select(CitizenLink).options(load_only(CitizenLink.issued_by, CitizenLink.issued_at,
                                                  CitizenLink.revoked_at, CitizenLink.revoked_by))
            .where(CitizenLink.complaint_id == complaint.id)
            .order_by(CitizenLink.issued_at.desc(), CitizenLink.id.desc()))).scalars())
    policy = registry.policy
    return citizen_links_view(links, complaint, policy.citizen, registry.today(), policy.timezone,
                              text_context(principal.language, policy))


async def _page(request: Request, principal: Principal, found: Sequence[Any], *, reading_reason: str = "",
          flash: str | None = None, error: str | None = None, error_detail: str | None = None,
          preview: Mapping[str, Any] | None = None, answer: Mapping[str, str] | None = None,
          status: int = 200) -> Response:
    registry = request.app.state.registry
    policy = registry.policy
    ctx = text_context(principal.language, policy)
    newest_first = request.query_params.get("order") != "oldest"
    view = file_view(found, ctx, newest_first=newest_first)
    complaint = found[0]
    # The directory is searched when the person asked (`dq` present, even empty), not on every view of the file.
    directory_query = request.query_params.get("dq")
    screening = policy.screening
    # The handlers offered to whoever may give the file to someone else.
    handlers = await handler_choices(request, principal) if principal.can(Permission.REASSIGN) else []
    return render(
        request, principal, "file/page.html", status_code=status, fragment=True, nav="register",
        view=view, complaint=complaint, reading_reason=reading_reason, flash=flash, error=error,
        error_detail=error_detail, preview=preview,
        answer=answer or {"kind": "message", "text": "", "language": complaint.complainant_language or "",
                          "request_key": ""},
        newest_first=newest_first, handler_is_me=is_handler(principal, complaint),
        directory=None if directory_query is None else directory_matches(screening, directory_query[:200], ctx.lang),
        directory_query=(directory_query or "")[:200],
        themes=[(t.id, t.label(ctx.lang)) for t in screening.themes] if screening else [],
        services=[(s.id, s.label(ctx.lang)) for s in screening.services] if screening else [],
        kinds=[k.value for k in Kind], outcomes=[o.value for o in Outcome],
        categories=[c.value for c in FoundedCategory], inadmissibility=[r.value for r in InadmissibilityReason],
        # Answered and redirected have forms of their own (the answer's text, the competent ombudsman).
        targets=[s for s in view.targets if s not in {Status.ANSWERED, Status.REDIRECTED}],
        answer_languages=LANGUAGES, handlers=handlers,
        citizen_links=await _citizen_links(request, principal, complaint),
        form_key=uuid.uuid4().hex,  # one per rendering: a form submitted twice is one request (`file_actions`)
    )


@router.get("/files/{number}")
async def show_file(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    try:
        found = await _found(request, principal, number)
    except _Refused as refused:
        return refused.response
    complaint = found[0]
    if number != complaint.number:  # one address per file: the read marker is scoped to it
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(file_path(complaint.number) + query, status_code=303)
    reason = _read_reason(request, principal, complaint)
    if reason is None:
        return _gate(request, principal, complaint.number)
    await record_access(request, principal, "file.read", number=complaint.number, reason=reason or None)
    done = request.query_params.get("done")
    flash = Translator(principal.language)(f"file.done.{done}") if done in DONE_KEYS else None
    return await _page(request, principal, found, reading_reason=reason, flash=flash)


@router.post("/files/{number}/reason")
async def state_reason(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    try:
        found = await _found(request, principal, number)
    except _Refused as refused:
        return refused.response
    complaint = found[0]
    form = await request.form()
    reason = clean_reason(str(form.get("reason") or ""))
    if not reason:
        return _gate(request, principal, complaint.number, error="file.gate.reason_required", status=422)
    response = RedirectResponse(file_path(complaint.number), status_code=303)
    remember_reason(request, response, principal, complaint.number, reason)
    return response


# --- downloads -------------------------------------------------------------------------------------------------------
def _download_name(value: str) -> tuple[str, str]:
    """(an ASCII fallback, the RFC 8187 encoded name) for Content-Disposition; a sender's file name may hold quotes,
    line breaks or path separators, none of which may reach the header or the person's disk as such."""
    cleaned = "".join(ch for ch in value if ch.isprintable() and ch not in '/\\"') or "file"
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._- ") else "_" for ch in cleaned)[:150]
    return ascii_name.strip() or "file", quote(cleaned[:150], safe="")


def _download(data: bytes, filename: str, media_type: str) -> Response:
    fallback, encoded = _download_name(filename)
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    })


async def _read_object(request: Request, principal: Principal, read: str, name: str) -> bytes | Response:
    originals = getattr(request.app.state, "originals", None)
    if originals is None:
        return _error_page(request, principal, 503, "file.error.originals_unavailable")
    try:
        return await getattr(originals, read)(name)
    except OriginalMissing:
        return _error_page(request, principal, 404, "file.error.original_missing")
    except Exception as error:  # noqa: BLE001 - NATS down or not connected: the page says so, never a 500
        log.warning("backoffice.original_unavailable", error=type(error).__name__)
        return _error_page(request, principal, 503, "file.error.originals_unavailable")


async def file_for_reading(request: Request, principal: Principal, number: str
                           ) -> tuple[Sequence[Any], str] | Response:
    """The file and the reason it is read for, or the response that refuses it (404, 403, the reason form)."""
    try:
        found = await _found(request, principal, number)
    except _Refused as refused:
        return refused.response
    reason = _read_reason(request, principal, found[0])
    if reason is None or number != found[0].number:
        # To the file's page, which asks for the reason (htmx: the whole page, not a fragment of it).
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": file_path(found[0].number)})
        return RedirectResponse(file_path(found[0].number), status_code=303)
    return found, reason


@router.get("/files/{number}/messages/{message_key:path}/original")
async def download_original(request: Request, number: str, message_key: str,
                            principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    message = next((m for m in found[1] if m.message_key == message_key and m.raw_object), None)
    if message is None:
        return _error_page(request, principal, 404, "error.not_found")
    data = await _read_object(request, principal, "raw", message.raw_object)
    if isinstance(data, Response):
        return data
    await record_access(request, principal, "original.download", number=number, reason=reason or None,
                        details={"message_key": message_key, "object": message.raw_object})
    is_mail = message.raw_object.endswith(".eml")
    return _download(data, f"{number}-{message.raw_object}", "message/rfc822" if is_mail
                     else "application/octet-stream")


@router.get("/files/{number}/messages/{message_key:path}/quoted")
async def show_quoted(request: Request, number: str, message_key: str,
                      principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    ctx = text_context(principal.language, request.app.state.registry.policy)
    message = quoted_history(found[1], message_key, ctx)
    if message is None:
        return _error_page(request, principal, 404, "error.not_found")
    await record_access(request, principal, "file.read", number=found[0].number, reason=reason or None,
                        details={"part": "quoted_history", "message_key": message_key})
    if is_htmx(request):
        return render(request, principal, "file/_quoted.html", message=message)
    return render(request, principal, "file/quoted.html", nav="register", number=found[0].number, message=message)


@router.get("/files/{number}/attachments/{object_name}")
async def download_attachment(request: Request, number: str, object_name: str,
                              principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    attachments = [*found[0].attachments, *(a for m in found[1] for a in m.attachments or ())]
    attachment = next((a for a in attachments if isinstance(a, Mapping) and a.get("object_name") == object_name),
                      None)
    if attachment is None:
        return _error_page(request, principal, 404, "error.not_found")
    data = await _read_object(request, principal, "attachment", object_name)
    if isinstance(data, Response):
        return data
    await record_access(request, principal, "attachment.download", number=number, reason=reason or None,
                        details={"object": object_name})
    # Whatever type the sender claimed, the browser gets bytes to save, never a page to render.
    return _download(data, str(attachment.get("filename") or object_name), "application/octet-stream")


# --- actions ---------------------------------------------------------------------------------------------------------
async def writable(request: Request, principal: Principal, number: str) -> tuple[Sequence[Any], str] | Response:
    """`file_for_reading`, and the person may act on files: the file and the reason it is read for, or the refusal (the
    page families that add actions to a file — position requests, information requests — call this)."""
    readable = await file_for_reading(request, principal, number)
    if not isinstance(readable, Response) and not principal.can(Permission.ACT_ON_FILES):
        return _error_page(request, principal, 403, "error.forbidden")
    return readable


def _refusal(error: Exception) -> tuple[str, str]:
    code = getattr(error.__cause__, "code", None) or getattr(error.__cause__, "reason", None)
    key = f"file.refused.{code}" if code in KNOWN_REFUSALS else "file.refused.conflict"
    return key, str(error)


def _fields(form: Any) -> dict[str, list[str]]:
    return {key: [str(v) for v in form.getlist(key) if isinstance(v, str)] for key in form.keys()
            if key not in {"csrf_token", "confirmed"}}


@router.post("/files/{number}/actions/{name}")
async def act(request: Request, number: str, name: str, principal: Principal = Depends(READ)) -> Response:
    action = ACTIONS.get(name)
    if action is None:
        return _error_page(request, principal, 404, "error.not_found")
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    t = Translator(principal.language)
    if not principal.can(action.permission):
        return _error_page(request, principal, 403, "error.forbidden")
    form = await request.form()
    fields = _fields(form)
    submitted = ActionInput(found[0].number, fields, principal, found[0])
    status_on_error = 200 if is_htmx(request) else 422  # htmx swaps only 2xx answers by default
    try:
        command = action.build(submitted)
    except FormError as error:
        return await _page(request, principal, found, reading_reason=reason, error=t(error.key),
                           status=status_on_error)
    refusal, other = await _refused_target(request, principal, command, found[0])
    if refusal is not None:
        return await _page(request, principal, found, reading_reason=reason, error=t(refusal),
                           status=status_on_error)
    if action.irreversible(submitted) and form.get("confirmed") != "1":
        return _confirm(request, principal, found[0], name, fields)
    try:
        result = await request.app.state.registry.handle(command)
    except (Conflict, NotFound) as error:
        key, detail = _refusal(error) if isinstance(error, Conflict) else ("error.not_found", str(error))
        found = await request.app.state.registry.store.complaint_file(found[0].number) or found
        return await _page(request, principal, found, reading_reason=reason, error=t(key), error_detail=detail,
                           status=200 if is_htmx(request) else 409)
    # A merge or a link changes two files: "who touched this file?" answers it under both numbers.
    await record_access(request, principal, command_action(command), number=found[0].number,
                        reason=submitted.reason, details={"action": name, **({"other": other} if other else {})})
    if other:
        await record_access(request, principal, command_action(command), number=other, reason=submitted.reason,
                            details={"action": name, "other": found[0].number})
    done = action.done(name, result)
    if not is_htmx(request):
        return RedirectResponse(f"{file_path(found[0].number)}?done={done}", status_code=303)
    refreshed = await request.app.state.registry.store.complaint_file(found[0].number)
    if refreshed is None or not may_see(principal, refreshed[0]):
        # The change moved the file out of this person's sight (a service or data-protection classification).
        return Response(status_code=204, headers={"HX-Redirect": file_path(found[0].number)})
    return await _page(request, principal, refreshed, reading_reason=reason, flash=t(f"file.done.{done}"))


async def _refused_target(request: Request, principal: Principal, command: Any, complaint: Any
                          ) -> tuple[str | None, str | None]:
    """(the key of the message refusing what the command would touch besides this file, the other file's number).

    The other file of a merge or a link must exist and be visible to the person: one that is not gets the answer of
    a number no file has (its existence is not told) and an audit entry "file.denied". A handler must be an account
    that may handle files (`register.may_handle`), or nobody."""
    other = other_file(command, complaint)
    if other is not None:
        found = await request.app.state.registry.store.complaint(other.strip().upper())
        if found is None:
            return "file.error.unknown_other", None
        if not may_see(principal, found):
            await record_access(request, principal, "file.denied", number=found.number)
            return "file.error.unknown_other", None
        return None, found.number
    if isinstance(command, commands.Assign) and command.handler is not None:
        if not await may_handle(request, command.handler):
            return "file.error.not_assignable", None
    return None, None


# Irreversible actions whose confirmation says what they do in a sentence without values.
PLAIN_CONFIRMATIONS = frozenset({"screening", "extend", "revoke_links", "send_link"})


def _confirm(request: Request, principal: Principal, complaint: Any, name: str,
             fields: Mapping[str, list[str]]) -> Response:
    """The confirmation step of an irreversible action: what will happen, and the same form to confirm it."""
    registry = request.app.state.registry
    ctx = text_context(principal.language, registry.policy)
    first = {key: values[0] if values else "" for key, values in fields.items()}
    target = first.get("target", "")
    if name == "answer":
        what = ("file.confirm.final_answer", {})
    elif name == "redirect":
        what = ("file.confirm.redirect", {"ombudsman": ctx.ombudsman(first.get("redirect_to"))})
    elif name == "merge":
        what = ("file.confirm.merge", {"target": target.upper()})
    elif name in PLAIN_CONFIRMATIONS:
        what = (f"file.confirm.{name}", {})
    else:
        what = ("file.confirm.transition", {"status": ctx.term(target)})
    hidden = [(key, value) for key, values in fields.items() for value in values]
    return render(request, principal, "file/confirm.html", fragment=True, nav="register", number=complaint.number,
                  subject=complaint.subject_line, action=name, what_key=what[0], what_params=what[1],
                  hidden=hidden, answer_text=first.get("text", "") if name == "answer" else "")


# --- the answer's preview, the directory -----------------------------------------------------------------------------
def preview_request(complaint: Any, kind: str, text: str, language: str | None) -> NoticePreviewRequest:
    """What the notifier is asked to render: the notice the registry would request (`handlers.records.
    request_notice`: same recipient, same context keys) for a final answer or a staff message."""
    recipient = Party(name=complaint.complainant_name, email=complaint.complainant_email,
                      postal_address=complaint.complainant_postal_address, language=complaint.complainant_language)
    context: dict[str, Any] = {"complaint_number": complaint.number, "legal_start": complaint.legal_start.isoformat(),
                               "subject": complaint.subject_line}
    if kind == "final":
        # The final answer goes out in the complainant's language (`Transition` carries no other).
        return NoticePreviewRequest(complaint_number=complaint.number, notice_kind="final_answer",
                                    recipient=recipient, language=None, context={**context, "answer": text})
    return NoticePreviewRequest(complaint_number=complaint.number, notice_kind="staff_message", recipient=recipient,
                                language=language or None, context={**context, "text": text})


@router.post("/files/{number}/answer/preview")
async def preview_answer(request: Request, number: str, principal: Principal = Depends(READ)) -> Response:
    readable = await writable(request, principal, number)
    if isinstance(readable, Response):
        return readable
    found, reason = readable
    form = await request.form()
    answer = {"kind": "final" if form.get("kind") == "final" else "message",
              "text": str(form.get("text") or "").replace("\r\n", "\n"),
              "language": str(form.get("language") or ""),
              "request_key": str(form.get("request_key") or "")[:64]}
    if answer["language"] not in LANGUAGES:
        answer["language"] = ""
    previewer = getattr(request.app.state, "notice_preview", None)
    if not answer["text"].strip():
        result = NoticePreview.failure(PreviewProblem.INVALID_CONTEXT, "no text")
    elif previewer is None:
        result = NoticePreview.failure(PreviewProblem.NOTIFIER_UNAVAILABLE, "no previewer wired")
    else:
        result = await previewer.preview(preview_request(found[0], answer["kind"], answer["text"],
                                                         answer["language"]))
    preview = {"subject": result.subject, "text": result.text, "language": result.language,
               "problem": result.problem.value if result.problem else None, "answer": answer}
    if is_htmx(request):
        return render(request, principal, "file/_preview.html", number=found[0].number, preview=preview)
    return await _page(request, principal, found, reading_reason=reason, preview=preview, answer=answer)


@router.get("/files/{number}/directory")
async def search_directory(request: Request, number: str, dq: str = "",
                           principal: Principal = Depends(READ)) -> Response:
    readable = await file_for_reading(request, principal, number)
    if isinstance(readable, Response):
        return readable
    policy = request.app.state.registry.policy
    ctx = text_context(principal.language, policy)
    return render(request, principal, "file/_directory.html", directory_query=dq[:200],
                  directory=directory_matches(policy.screening, dq[:200], ctx.lang))
