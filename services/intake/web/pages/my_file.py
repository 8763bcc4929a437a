"""The citizen's view of their file through their personal link (issue 17): `/my-file/<token>` shows what the registry
answers for that link (status, deadlines, the citizen's own messages and the notices sent to them) and takes a
message or documents; `/my-file/resend` asks for the link again. Nothing else is reachable from a link.

- **The token** is never logged, never stored by intake (not in the raw record of a message either), and is sent to
  the registry only in core NATS requests; a malformed one is refused here without asking. The pages carry
  `Cache-Control: no-store` and the site's `Referrer-Policy: same-origin`, and link only to themselves.
- **A message** is checked as the complaint form's (origin, signed form token, per-client limit, size, documents by
  content with `uploads.check_uploads`), the link is asked again of the registry (so that a revoked link writes
  nothing), and it is made durable through intake's one way in (`IntakePipeline.accept`, a `Prepared`
  `MessageReceived(channel=web_form)`), with the file's number as candidate and `citizen_link_proof`
  (`shared.events.citizen_message_proof`): the registry checks the proof against the hash it stores and files the
  message as the complainant's verified follow-up (`services/registry/public/citizen_access.py`).
- **"Send me my link again"** always answers the same page, whether the number and the address match or not, and
  before the registry answered (its work, done or not, takes no visible time); it is limited per client here and
  per file in the registry.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from services.intake.arrival import Arrival, Prepared
from services.intake.stores import attachment_ref, raw_object_name
from services.intake.web.abuse import SubmissionLimiter
from services.intake.web.context import PublicContext
from services.intake.web.form import clean_text, read_date
from services.intake.web.pages.complaint import MAX_TEXT_PART_BYTES, origin_of
from services.intake.web.rendering import CATALOG, language
from services.intake.web.uploads import ALLOWED, Upload, check_uploads
from shared import streams
from shared.events import (
    Channel,
    CitizenAccessRequest,
    CitizenFile,
    CitizenLinkResendRequest,
    CitizenLinkResent,
    MessageReceived,
    Party,
    Provenance,
    SenderVerdict,
    citizen_message_proof,
    citizen_token_parts,
)
from shared.i18n import language_of
from shared.mailbox import MAX_MAILBOX

log = structlog.get_logger(__name__)

SOURCE = "web_link"
MAX_MESSAGE_CHARS = 20_000
# Views of a link per client address and hour (a person reads their file a few times; a script guessing tokens —
# hopeless against 192 bits — is slowed, and does not flood the audit trail).
VIEWS_PER_CLIENT_PER_HOUR = 120
# "Send me my link again" per client address and hour.
RESENDS_PER_CLIENT_PER_HOUR = 5
# Not cached anywhere. The referrer policy stays the site's `same-origin`: the token never leaves for another site,
# and `no-referrer` would make Chromium send `Origin: null` with the page's own form (refused as cross-site).
TOKEN_PAGE_HEADERS = {"Cache-Control": "no-store"}
STATUSES = ("received", "acknowledged", "in_review", "waiting_for_citizen", "answered", "closed", "inadmissible",
            "redirected", "withdrawn")
KINDS = ("complaint", "question", "suggestion", "compliment")
DATE_FORMATS = {"fr": "%d/%m/%Y", "nl": "%d-%m-%Y", "de": "%d.%m.%Y", "en": "%d/%m/%Y"}


def day(value: date | None, lang: str) -> str:
    return value.strftime(DATE_FORMATS.get(lang, "%d/%m/%Y")) if value else ""


@dataclass(frozen=True)
class StatedFacts:
    """What the citizen may state on their file's page for screening (issue 15): each optional."""

    facts_date: date | None = None
    first_line_contacted: bool | None = None
    last_step_date: date | None = None

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.facts_date, self.first_line_contacted, self.last_step_date))


def read_stated_facts(raw: Any, today: date) -> tuple[StatedFacts, dict[str, str], bool]:
    """(the facts, what was typed, whether every date is acceptable) from the page's optional fields."""
    typed = {name: str(raw.get(name) or "").strip()[:10] for name in ("facts_date", "first_line", "first_line_date")}
    facts_date, facts_ok = read_date(typed["facts_date"], today)
    step_date, step_ok = read_date(typed["first_line_date"], today)
    contacted = {"yes": True, "no": False}.get(typed["first_line"])
    return StatedFacts(facts_date, contacted, step_date), typed, facts_ok and step_ok


def link_message_event(key: str, number: str, token: str, text: str, *, subject: str, language: str,
                       context: PublicContext, attachments: list, peer_ip: str | None,
                       facts: StatedFacts = StatedFacts()) -> MessageReceived:
    """The message as intake publishes it: nobody proven yet (`unverified`); the registry makes it the
    complainant's verified follow-up when the proof checks out against the link it stores."""
    return MessageReceived(
        message_key=key, channel=Channel.WEB_FORM, received_at=context.now(), raw_object=raw_object_name(key, ".json"),
        sender=Party(language=language), subject_line=subject, text=text, new_text=text, language=language,
        language_confidence=1.0, attachments=tuple(attachment_ref(a) for a in attachments),
        candidate_case_numbers=(number,), source=SOURCE, sender_verdict=SenderVerdict.UNVERIFIED,
        sender_evidence="personal link: to be checked by the registry", provenance=Provenance(peer_ip=peer_ip),
        citizen_link_proof=citizen_message_proof(token, key), facts_date=facts.facts_date,
        first_line_contacted=facts.first_line_contacted, last_step_date=facts.last_step_date)


def router(context: PublicContext) -> APIRouter:
    routes = APIRouter()
    policy, tokens = context.policy, context.tokens
    our_origin = origin_of(policy.public_url)
    views = SubmissionLimiter(VIEWS_PER_CLIENT_PER_HOUR)
    resends = SubmissionLimiter(RESENDS_PER_CLIENT_PER_HOUR)
    pending: set[asyncio.Task[object]] = set()

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def message_page(request: Request, lang: str, title: str, text: str, *, status_code: int,
                     resend_link: bool = True) -> HTMLResponse:
        return context.page(request, "my_file_message.html", lang, status_code=status_code, title=title, text=text,
                            resend_link=resend_link, headers=TOKEN_PAGE_HEADERS)

    def cross_site(request: Request) -> bool:
        origin = request.headers.get("origin")
        return origin is not None and origin != our_origin and origin != origin_of(str(request.base_url))

    async def ask(request: Request, token: str, *, writing: bool = False) -> CitizenFile | None:
        return await context.request(streams.SUBJECT_CITIZEN_FILE, CitizenAccessRequest(
            token=token, client_ip=client_of(request), user_agent=(request.headers.get("user-agent") or "")[:300],
            writing=writing), CitizenFile)

    def file_page(request: Request, token: str, lang: str, found: CitizenFile, *, status_code: int = 200,
                  problem: str | None = None, text: str = "", facts: dict[str, str] | None = None) -> HTMLResponse:
        return context.page(
            request, "my_file.html", lang, status_code=status_code, file=found, token=token,
            form_token=tokens.issue(), problem=problem, text=text, sent=request.query_params.get("sent") == "1",
            facts=facts or {},
            day=lambda value: day(value, lang), statuses=STATUSES, kinds=KINDS,
            max_attachments=policy.max_attachments, max_megabytes=policy.max_attachment_bytes // (1024 * 1024),
            extensions=", ".join(sorted(extension.lstrip(".") for extension in ALLOWED)),
            headers=TOKEN_PAGE_HEADERS)

    # --- "send me my link again" (declared first: its path is not a token's) ---------------------------------------
    @routes.get("/my-file/resend", response_class=HTMLResponse)
    async def resend_form(request: Request) -> HTMLResponse:
        lang = language(request)
        return context.page(request, "my_file_resend.html", lang, form_token=tokens.issue(), values={},
                            problem=None)

    @routes.post("/my-file/resend", response_class=HTMLResponse)
    async def resend_requested(request: Request) -> Response:
        lang = language(request)
        if cross_site(request):
            return context.page(request, "problem.html", lang, status_code=403, problem="form.problem.origin")
        async with request.form(max_files=0, max_fields=10, max_part_size=8192) as raw:
            lang = language_of(str(raw.get("lang") or lang))
            number = clean_text(raw.get("number"), 40).upper()
            email = clean_text(raw.get("email"), MAX_MAILBOX).lower()
            token_ok = tokens.submission_id(str(raw.get("token") or "")) is not None
        values = {"number": number, "email": email}
        if not token_ok:
            return context.page(request, "my_file_resend.html", lang, status_code=400, form_token=tokens.issue(),
                                values=values, problem="form.problem.expired")
        if not number or not email:
            return context.page(request, "my_file_resend.html", lang, status_code=422, form_token=tokens.issue(),
                                values=values, problem="my_file.resend.missing")
        if not resends.allow(client_of(request)):
            log.warning("citizen_link.resend_limited")
            return context.page(request, "my_file_resend.html", lang, status_code=429, form_token=tokens.issue(),
                                values=values, problem="my_file.resend.limited")
        # Sent without waiting: the page answers in the same time whether a link goes or not.
        task = asyncio.create_task(context.request(streams.SUBJECT_CITIZEN_RESEND, CitizenLinkResendRequest(
            number=number, email=email, client_ip=client_of(request),
            user_agent=(request.headers.get("user-agent") or "")[:300]), CitizenLinkResent, timeout=10.0))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return RedirectResponse(f"/my-file/resend/sent?lang={lang}", status_code=303)

    @routes.get("/my-file/resend/sent", response_class=HTMLResponse)
    async def resend_sent(request: Request) -> HTMLResponse:
        lang = language(request)
        t = CATALOG.translator(lang)
        return message_page(request, lang, t("my_file.resend.title"), t("my_file.resend.sent"), status_code=200,
                            resend_link=False)

    # --- the file -------------------------------------------------------------------------------------------------
    def nothing(request: Request, lang: str) -> HTMLResponse:
        t = CATALOG.translator(lang)
        return message_page(request, lang, t("my_file.nothing.title"), t("my_file.nothing.text"), status_code=404)

    def unavailable(request: Request, lang: str) -> HTMLResponse:
        t = CATALOG.translator(lang)
        return message_page(request, lang, t("my_file.unavailable.title"), t("my_file.unavailable.text"),
                            status_code=503, resend_link=False)

    @routes.get("/my-file/{token}", response_class=HTMLResponse)
    async def my_file(request: Request, token: str) -> HTMLResponse:
        lang = language(request)
        if citizen_token_parts(token) is None:
            return nothing(request, lang)
        if not views.allow(client_of(request)):
            return message_page(request, lang, CATALOG.translate("my_file.limited", lang),
                                CATALOG.translate("my_file.limited", lang), status_code=429, resend_link=False)
        found = await ask(request, token)
        if found is None:
            return unavailable(request, lang)
        if not found.found:
            return nothing(request, lang)
        if "lang" not in request.query_params and found.language:
            lang = language_of(found.language)  # the mail's link has no ?lang=: the file's language
        return file_page(request, token, lang, found)

    @routes.post("/my-file/{token}", response_class=HTMLResponse)
    async def my_file_message(request: Request, token: str) -> Response:
        lang = language(request)
        if citizen_token_parts(token) is None:
            return nothing(request, lang)
        if cross_site(request):
            return context.page(request, "problem.html", lang, status_code=403, problem="form.problem.origin")
        # Cheap refusals first (security review): the address's brake before anything is read or asked, and the
        # documents read into memory only for a form of ours within the submissions' limit.
        client = client_of(request)
        if not views.allow(client):
            return context.page(request, "problem.html", lang, status_code=429, problem="my_file.problem.limited")
        limited = False
        async with request.form(max_files=policy.max_attachments + 1, max_fields=10,
                                max_part_size=MAX_TEXT_PART_BYTES) as raw:
            lang = language_of(str(raw.get("lang") or lang))
            text = clean_text(raw.get("message"), MAX_MESSAGE_CHARS)
            facts, typed_facts, facts_ok = read_stated_facts(raw, context.today())
            submission = tokens.submission_id(str(raw.get("form_token") or ""))
            uploads: list[Upload] = []
            if submission is not None and not context.limiter.allow(client):
                limited = True
            elif submission is not None:
                uploads = [Upload(item.filename or "", await item.read(policy.max_attachment_bytes + 1))
                           for item in raw.getlist("documents") if isinstance(item, UploadFile) and item.filename]
        found = await ask(request, token, writing=True)
        if found is None:
            return unavailable(request, lang)
        if not found.found or found.number is None:
            return nothing(request, lang)
        if submission is None:
            return file_page(request, token, lang, found, status_code=400, problem="form.problem.expired", text=text)
        if limited:
            return file_page(request, token, lang, found, status_code=429, problem="my_file.problem.limited",
                             text=text)
        if len(text) > MAX_MESSAGE_CHARS:
            return file_page(request, token, lang, found, status_code=422, problem="form.error.too_long", text=text)
        attachments, file_error = check_uploads(uploads, max_count=policy.max_attachments,
                                                max_bytes=policy.max_attachment_bytes)
        if file_error is not None:
            return file_page(request, token, lang, found, status_code=422, problem=file_error, text=text)
        if not facts_ok:
            return file_page(request, token, lang, found, status_code=422, problem="form.error.date", text=text,
                             facts=typed_facts)
        if not text and not attachments and not facts.any:
            return file_page(request, token, lang, found, status_code=422, problem="my_file.problem.empty")
        key = f"link-{submission}"
        t = CATALOG.translator(lang)
        event = link_message_event(key, found.number, token,
                                   text or t("my_file.documents_only" if attachments else "my_file.facts_only"),
                                   subject=t("my_file.message_subject", number=found.number), language=lang,
                                   context=context, attachments=attachments, peer_ip=client, facts=facts)
        # The raw record keeps what the citizen sent, never the token nor the proof.
        record = {"number": found.number, "message": text, "facts": typed_facts, "language": lang, "peer_ip": client,
                  "files": [a.filename for a in attachments], "received_at": event.received_at.isoformat()}
        arrival = Arrival.of(channel=Channel.WEB_FORM, received_at=event.received_at, envelope_sender=None,
                             envelope_recipients=(), source=SOURCE, provenance=event.provenance,
                             prepared=Prepared(key, event, tuple(attachments), raw_suffix=".json"))
        try:
            outcome = await context.intake.accept(json.dumps(record, ensure_ascii=False, indent=2).encode(),
                                                  arrival=arrival)
        except Exception as error:  # noqa: BLE001 - NATS or the object store down: say so, keep the typing
            log.error("citizen_link.message_not_recorded", error=type(error).__name__, message_key=key)
            return file_page(request, token, lang, found, status_code=503, problem="form.problem.unavailable",
                             text=text)
        log.info("citizen_link.message_accepted", status=outcome.status.value, message_key=key,
                 attachments=len(attachments))
        return RedirectResponse(f"/my-file/{token}?lang={lang}&sent=1", status_code=303,
                                headers=TOKEN_PAGE_HEADERS)

    return routes
