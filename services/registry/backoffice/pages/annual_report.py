"""The published annual report in the back office (issue 17): choose a year and a language, write the year's
introduction, look at the report as a page, download it as HTML or PDF — the same report as `ombudsdesk report`.

Reading it needs `read_indicators` (figures only, no personal data); writing the introduction needs
`edit_annual_report` (supervisors and administrators), and each change is recorded in the audit trail.

The page also shows the year's free comments of the satisfaction survey (issue 17), for the same permission as the
API's `/indicators/{year}/survey-comments`: read together, as `survey.comments` returns them (in no order that says
anything: by their random id), with nothing of who wrote them nor of any file (`public/survey.py`).

The report page is a document of its own (inline stylesheet and SVG charts, no script), served with a policy that
allows exactly that: styles inline, nothing fetched, nothing run.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.annual_report.introductions import MAX_INTRODUCTION_CHARACTERS, IntroductionStore
from services.registry.annual_report.publication import annual_report_document
from services.registry.annual_report.rendering import ReportFormat, render as render_report
from services.registry.backoffice.rendering import BASE_PATH, render
from services.registry.handlers import Registry
from services.registry.public import survey
from services.registry.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

router = APIRouter()

FIRST_YEAR = 2000
# The survey's comments shown at most (those `survey.comments` returns first: a random sample past this many).
SURVEY_COMMENTS_SHOWN = 500
# The report document's own policy: its inline <style> and inline SVG, nothing else (no script, no fetch, no frame).
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"


def _year(registry: Registry, value: str | int | None) -> int:
    """The year asked for, within bounds; last year by default (the report one publishes), this year when asked."""
    today = registry.today()
    try:
        year = int(value) if value not in (None, "") else today.year - 1
    except ValueError:
        year = today.year - 1
    return min(max(year, FIRST_YEAR), today.year)


def _language(value: str | None, principal: Principal) -> str:
    return value if value in LANGUAGES else (principal.language if principal.language in LANGUAGES
                                            else DEFAULT_LANGUAGE)


def _introductions(request: Request) -> IntroductionStore:
    registry: Registry = request.app.state.registry
    return IntroductionStore(registry.store.engine)


@router.get("/annual-report", response_class=HTMLResponse)
async def annual_report_page(request: Request, year: str | None = None, language: str | None = None,
                             principal: Principal = Depends(page_require(Permission.READ_INDICATORS))
                             ) -> HTMLResponse:
    registry: Registry = request.app.state.registry
    chosen_year, chosen_language = _year(registry, year), _language(language, principal)
    introduction = await _introductions(request).get(chosen_year, chosen_language)
    return await _page(request, principal, chosen_year, chosen_language, introduction,
                       saved=request.query_params.get("saved") == "1")


async def _page(request: Request, principal: Principal, year: int, language: str, introduction: str, *,
                status_code: int = 200, error: str | None = None, saved: bool = False) -> HTMLResponse:
    registry: Registry = request.app.state.registry
    # One more than shown, to tell whether some were left out.
    comments = await survey.comments(registry.store, year, limit=SURVEY_COMMENTS_SHOWN + 1)
    return render(request, principal, "annual_report/page.html", status_code=status_code, nav="annual_report",
                  year=year, report_language=language, languages=LANGUAGES, introduction=introduction,
                  years=list(range(registry.today().year, FIRST_YEAR - 1, -1))[:15],
                  max_characters=MAX_INTRODUCTION_CHARACTERS, error=error, saved=saved,
                  survey_comments=comments[:SURVEY_COMMENTS_SHOWN],
                  survey_comments_more=len(comments) > SURVEY_COMMENTS_SHOWN,
                  survey_comments_limit=SURVEY_COMMENTS_SHOWN)


@router.post("/annual-report/introduction", response_class=HTMLResponse)
async def save_introduction(request: Request,
                            principal: Principal = Depends(page_require(Permission.EDIT_ANNUAL_REPORT))) -> Response:
    registry: Registry = request.app.state.registry
    form = await request.form()
    chosen_year = _year(registry, str(form.get("year") or ""))
    chosen_language = _language(str(form.get("language") or ""), principal)
    text = str(form.get("introduction") or "").replace("\r\n", "\n")
    if len(text) > MAX_INTRODUCTION_CHARACTERS:
        return await _page(request, principal, chosen_year, chosen_language, text, status_code=422,
                           error="annual_report.too_long")
    await _introductions(request).put(chosen_year, chosen_language, text, actor=principal.actor)
    await record_access(request, principal, "change.annual_report_introduction",
                        details={"year": chosen_year, "language": chosen_language, "characters": len(text)})
    return RedirectResponse(f"{BASE_PATH}/annual-report?year={chosen_year}&language={chosen_language}&saved=1",
                            status_code=303)


@router.get("/annual-report/{year}.{extension}")
async def annual_report_document_view(request: Request, year: int, extension: str, language: str | None = None,
                                      download: str = "",
                                      principal: Principal = Depends(page_require(Permission.READ_INDICATORS))
                                      ) -> Response:
    if extension not in ("html", "pdf"):
        return Response(status_code=404)
    registry: Registry = request.app.state.registry
    chosen_year, chosen_language = _year(registry, year), _language(language, principal)
    settings = request.app.state.settings
    document = await annual_report_document(
        registry.store, chosen_year, registry.policy.timezone, language=chosen_language,
        organisation=settings.localized_organisation_name(chosen_language),
        introduction=await _introductions(request).get(chosen_year, chosen_language),
        screening=registry.policy.screening, today=registry.today())
    report_format = ReportFormat(extension)
    content = await asyncio.to_thread(render_report, document, report_format)  # charts and PDF: CPU work
    filename = f"annual-report-{chosen_year}-{chosen_language}.{extension}"
    disposition = "attachment" if report_format is ReportFormat.PDF or download == "1" else "inline"
    return Response(content, media_type="application/pdf" if report_format is ReportFormat.PDF
                    else "text/html; charset=utf-8",
                    headers={"Content-Disposition": f'{disposition}; filename="{filename}"',
                             "Content-Security-Policy": REPORT_CSP})
