"""The satisfaction survey (issue 17): `/survey/<token>`, the link of the invitation mailed when a file is closed.
Four questions on a 1-5 scale (clarity, delay, respect, overall satisfaction; each may be skipped) and a free
comment, answerable once: the registry stores the answers, pseudonymised, in the transaction that marks the link
used, and only then does the page thank (a second answer is told it was answered already, and nothing is stored).

Radio buttons in fieldsets, no script; the same checks as the complaint form (origin, signed form token, per-client
limit, bounded body). The token is never logged nor kept by intake.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake.web.context import PublicContext
from services.intake.web.form import clean_text
from services.intake.web.pages.complaint import origin_of
from services.intake.web.rendering import CATALOG, language
from shared import streams
from shared.events import (
    SURVEY_COMMENT_MAX_CHARS,
    SURVEY_QUESTIONS,
    SurveyAnswers,
    SurveyReply,
    SurveyRequest,
    SurveyState,
    citizen_token_parts,
)
from shared.i18n import language_of

log = structlog.get_logger(__name__)

SCORES = ("1", "2", "3", "4", "5")
HEADERS = {"Cache-Control": "no-store"}  # the referrer policy stays same-origin (`my_file.TOKEN_PAGE_HEADERS`)


def read_answers(raw: dict[str, object]) -> SurveyAnswers:
    """The answers as submitted: a score is one of "1".."5" (anything else: skipped); the comment cleaned, bounded."""
    scores = {question: int(str(raw.get(question))) if str(raw.get(question) or "") in SCORES else None
              for question in SURVEY_QUESTIONS}
    return SurveyAnswers(**scores, comment=clean_text(raw.get("comment"), SURVEY_COMMENT_MAX_CHARS)
                         [:SURVEY_COMMENT_MAX_CHARS])


def router(context: PublicContext) -> APIRouter:
    routes = APIRouter()
    tokens = context.tokens
    our_origin = origin_of(context.policy.public_url)

    def message(request: Request, lang: str, key: str, status_code: int) -> HTMLResponse:
        t = CATALOG.translator(lang)
        return context.page(request, "survey_message.html", lang, status_code=status_code,
                            title=t(f"survey.{key}.title"), text=t(f"survey.{key}.text"), headers=HEADERS)

    def form(request: Request, token: str, lang: str, *, status_code: int = 200, problem: str | None = None,
             answers: SurveyAnswers | None = None) -> HTMLResponse:
        return context.page(request, "survey.html", lang, status_code=status_code, token=token,
                            form_token=tokens.issue(), questions=SURVEY_QUESTIONS, scores=SCORES, problem=problem,
                            answers=(answers or SurveyAnswers()).model_dump(), max_comment=SURVEY_COMMENT_MAX_CHARS,
                            headers=HEADERS)

    async def ask(token: str, answers: SurveyAnswers | None = None) -> SurveyState | None:
        reply = await context.request(streams.SUBJECT_SURVEY, SurveyRequest(token=token, answers=answers),
                                      SurveyReply, timeout=5.0)
        return reply.state if reply is not None else None

    def by_state(request: Request, token: str, lang: str, state: SurveyState | None) -> HTMLResponse:
        if state is None:
            return message(request, lang, "unavailable", 503)
        if state is SurveyState.ANSWERED:
            return message(request, lang, "answered", 409)
        if state is SurveyState.UNKNOWN:
            return message(request, lang, "unknown", 404)
        return form(request, token, lang)

    @routes.get("/survey/thanks", response_class=HTMLResponse)
    async def thanks(request: Request) -> HTMLResponse:
        return message(request, language(request), "thanks", 200)

    @routes.get("/survey/{token}", response_class=HTMLResponse)
    async def survey(request: Request, token: str) -> HTMLResponse:
        lang = language(request)
        if citizen_token_parts(token) is None:
            return message(request, lang, "unknown", 404)
        return by_state(request, token, lang, await ask(token))

    @routes.post("/survey/{token}", response_class=HTMLResponse)
    async def answered(request: Request, token: str) -> Response:
        lang = language(request)
        if citizen_token_parts(token) is None:
            return message(request, lang, "unknown", 404)
        origin = request.headers.get("origin")
        if origin is not None and origin != our_origin and origin != origin_of(str(request.base_url)):
            return context.page(request, "problem.html", lang, status_code=403, problem="form.problem.origin")
        async with request.form(max_files=0, max_fields=12, max_part_size=4 * SURVEY_COMMENT_MAX_CHARS) as raw:
            lang = language_of(str(raw.get("lang") or lang))
            answers = read_answers(dict(raw))
            submission = tokens.submission_id(str(raw.get("form_token") or ""))
        if submission is None:
            return form(request, token, lang, status_code=400, problem="form.problem.expired", answers=answers)
        if not context.limiter.allow(request.client.host if request.client else "unknown"):
            return form(request, token, lang, status_code=429, problem="survey.problem.limited", answers=answers)
        if not (any(getattr(answers, question) is not None for question in SURVEY_QUESTIONS)
                or answers.comment.strip()):
            return form(request, token, lang, status_code=422, problem="survey.problem.empty", answers=answers)
        state = await ask(token, answers)
        if state is SurveyState.RECORDED:
            log.info("survey.answered")
            return RedirectResponse(f"/survey/thanks?lang={lang}", status_code=303, headers=HEADERS)
        return by_state(request, token, lang, state)

    return routes
