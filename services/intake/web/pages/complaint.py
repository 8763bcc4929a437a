"""The complaint form and its confirmation (issue 17).

Order of the checks of a submission, each answering a page that keeps what was typed: where the post comes from (a
cross-site `Origin`: 403), the form's signed token (expired or forged: 400 with a fresh one), submissions from this
address this hour (429), the fields and the documents (422), then the submission is made durable (a failure of NATS:
503, "try again") and the browser is sent to the confirmation (303, so a reload does not post again; a post made
twice is one complaint anyway: the key comes from the token). The body's size is bounded before all of it
(`app.BodyLimit`, 413).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature
from starlette.datastructures import UploadFile

from services.intake.arrival import AcceptStatus
from services.intake.web.context import PublicContext
from services.intake.web.form import ComplaintForm, complaint_text, read_form
from services.intake.web.pages.orientation import carry_transmission, prefill, transmission_note
from services.intake.web.rendering import CATALOG, language
from services.intake.web.submission import submit
from services.intake.web.tokens import message_key
from services.intake.web.uploads import ALLOWED, Upload, check_uploads
from shared.i18n import language_of

log = structlog.get_logger(__name__)

HONEYPOT_FIELD = "website"
# Text fields are bounded far below this; a larger part is refused by the form parser (python-multipart).
MAX_TEXT_PART_BYTES = 128 * 1024


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def router(context: PublicContext) -> APIRouter:
    routes = APIRouter()
    policy, tokens, page = context.policy, context.tokens, context.page
    our_origin = origin_of(policy.public_url)

    def form_page(request: Request, lang: str, form: ComplaintForm | None = None, *, status_code: int = 200,
                  problem: str | None = None, file_error: str | None = None) -> HTMLResponse:
        return context.page(request, "complaint.html", lang, status_code=status_code, token=tokens.issue(),
                    values=form.values if form else {}, errors=form.errors if form else {}, problem=problem,
                    file_error=file_error, max_attachments=policy.max_attachments,
                    max_megabytes=policy.max_attachment_bytes // (1024 * 1024),
                    extensions=", ".join(sorted(extension.lstrip(".") for extension in ALLOWED)),
                    honeypot=HONEYPOT_FIELD)

    @routes.get("/", include_in_schema=False)
    async def home(request: Request) -> RedirectResponse:
        # Orientation first (issue 17): who is competent, before the form (which stays reachable directly).
        return RedirectResponse(f"/orientation?lang={language(request)}", status_code=303)

    @routes.get("/complaint", response_class=HTMLResponse)
    async def complaint_form(request: Request) -> HTMLResponse:
        return form_page(request, language(request))

    @routes.post("/complaint/start", response_class=HTMLResponse)
    async def complaint_started(request: Request) -> HTMLResponse:
        """The form filled in with what orientation passes on (posted: the citizen's words stay out of URLs)."""
        async with request.form(max_files=0, max_fields=12, max_part_size=MAX_TEXT_PART_BYTES) as raw:
            lang = language_of(str(raw.get("lang") or language(request)))
            return form_page(request, lang, ComplaintForm(prefill(raw)))

    @routes.get("/complaint/start", include_in_schema=False)
    async def complaint_start_again(request: Request) -> RedirectResponse:  # the language links of that page
        return RedirectResponse(f"/complaint?lang={language(request)}", status_code=303)

    @routes.post("/complaint", response_class=HTMLResponse)
    async def complaint_submitted(request: Request) -> Response:
        lang = language(request)
        origin = request.headers.get("origin")
        if origin is not None and origin != our_origin and origin != origin_of(str(request.base_url)):
            return context.page(request, "problem.html", lang, status_code=403, problem="form.problem.origin")
        async with request.form(max_files=policy.max_attachments + 1, max_fields=40,
                                max_part_size=MAX_TEXT_PART_BYTES) as raw:
            lang = language_of(str(raw.get("lang") or lang))
            fields = {key: value for key, value in raw.items() if not isinstance(value, UploadFile)}
            form = read_form(fields, context.today())
            carry_transmission(form, fields)  # a transmission asked for on the orientation page needs its consent
            submission = tokens.submission_id(str(raw.get("token") or ""))
            if submission is None:
                return form_page(request, lang, form, status_code=400, problem="form.problem.expired")
            client = request.client.host if request.client else "unknown"
            if not context.limiter.allow(client):
                log.warning("web_form.limited")
                return form_page(request, lang, form, status_code=429, problem="form.problem.limited")
            if not form.valid:
                return form_page(request, lang, form, status_code=422, problem="form.problem.invalid")
            uploads = [Upload(item.filename or "", await item.read(policy.max_attachment_bytes + 1))
                       for item in raw.getlist("documents") if isinstance(item, UploadFile) and item.filename]
        attachments, file_error = check_uploads(uploads, max_count=policy.max_attachments,
                                                max_bytes=policy.max_attachment_bytes)
        if file_error is not None:
            return form_page(request, lang, form, status_code=422, problem="form.problem.invalid",
                             file_error=file_error)
        key = message_key(submission)
        try:
            text = complaint_text(form, CATALOG, lang) + transmission_note(form, CATALOG, lang)
            outcome = await submit(context.intake, key, form, text, language=lang,
                                   received_at=context.now(), attachments=attachments, peer_ip=client,
                                   honeypot=bool(str(fields.get(HONEYPOT_FIELD) or "").strip()))
        except Exception as error:  # noqa: BLE001 - NATS or the object store down: say so, keep the typing
            log.error("web_form.not_recorded", error=type(error).__name__, message_key=key)
            return form_page(request, lang, form, status_code=503, problem="form.problem.unavailable")
        if outcome.status is AcceptStatus.QUARANTINED:
            log.warning("web_form.quarantined", message_key=key, reason=outcome.reason)
        return RedirectResponse(f"/complaint/received/{context.receipts.dumps(key)}?lang={lang}", status_code=303)

    @routes.get("/complaint/received/{receipt}", response_class=HTMLResponse)
    async def complaint_received(request: Request, receipt: str) -> HTMLResponse:
        lang = language(request)
        try:
            key = context.receipts.loads(receipt[:200])
        except BadSignature:
            return context.page(request, "problem.html", lang, status_code=404, problem="form.problem.no_receipt")
        found = await context.lookup(str(key))
        return context.page(request, "received.html", lang, number=found.number, appended=found.appended,
                    receipt=receipt)

    return routes
