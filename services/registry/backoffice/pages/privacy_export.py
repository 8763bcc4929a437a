"""The DPO's export of a citizen's own data (GDPR art. 15, issue 16): type the person's email address, get the
archive `ombudsdesk privacy export` makes (`privacy/export.py`: JSON, raw originals, attachments, a PDF summary in
their language).

Only the DPO (`Permission.READ_DATA_PROTECTION`: the archive holds data-protection files too) may ask for it; a reason
is required (the request's reference, say) and the export is recorded in the audit trail, once per file exported and
once as a whole, without the person's address. Originals and attachments are read from intake's object store over
the registry's NATS connection (`app.state.originals`, as the file page reads them); when it is not wired or not
reachable, the archive still comes, listing those objects as missing, and the page says so beforehand.
"""

from __future__ import annotations

from datetime import timezone

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.registry.access.audit import record_access
from services.registry.access.dependencies import page_require
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.rendering import render
from services.registry.handlers import Registry
from services.registry.privacy.export import TooManyFiles, audit_entries, export_person, normalise_email
from services.registry.vocabulary import LANGUAGES

router = APIRouter()
MAX_EMAIL = 320


def _page(request: Request, principal: Principal, *, status_code: int = 200, error: str | None = None,
          email: str = "", reason: str = "") -> HTMLResponse:
    return render(request, principal, "privacy/export.html", status_code=status_code, nav="privacy_export",
                  error=error, email=email, reason=reason, languages=LANGUAGES,
                  store_wired=getattr(request.app.state, "originals", None) is not None)


@router.get("/privacy/export", response_class=HTMLResponse)
async def export_form(request: Request, principal: Principal = Depends(page_require(Permission.READ_DATA_PROTECTION))
                      ) -> HTMLResponse:
    return _page(request, principal)


@router.post("/privacy/export", response_model=None)
async def export_archive(request: Request,
                         principal: Principal = Depends(page_require(Permission.READ_DATA_PROTECTION))) -> Response:
    form = await request.form()  # its CSRF token was checked by `page_require`
    email = normalise_email(str(form.get("email") or ""))[:MAX_EMAIL + 1]
    reason = str(form.get("reason") or "").strip()
    language = str(form.get("language") or "")
    if "@" not in email or len(email) > MAX_EMAIL:
        return _page(request, principal, status_code=422, error="privacy_export.bad_email", email=email,
                     reason=reason)
    if not reason:
        return _page(request, principal, status_code=422, error="privacy_export.reason_required", email=email)
    registry: Registry = request.app.state.registry
    settings = request.app.state.settings
    try:
        result = await export_person(
            registry.store, email, getattr(request.app.state, "originals", None),
            now=registry.clock.now().astimezone(timezone.utc), zone=registry.policy.timezone,
            organisation=settings.localized_organisation_name(language or "fr"),
            language=language if language in LANGUAGES else None)
    except TooManyFiles:
        return _page(request, principal, status_code=422, error="privacy_export.too_many", email=email,
                     reason=reason)
    for number, details in audit_entries(result):
        await record_access(request, principal, "export", number=number, reason=reason, details=details)
    return Response(result.archive, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="personal-data-{result.export_id[:12]}.zip"',
        "Cache-Control": "no-store"})
