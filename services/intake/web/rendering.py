"""How the public pages are written: Jinja2 templates (autoescaped) in `templates/`, the catalogue of
`messages/*.toml` (FR first), the reader's language (`?lang=`, else the browser's `Accept-Language`, else French),
and the headers every public page carries (a policy that allows no script at all: the pages need none)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from shared.i18n import Catalog, language_of, preferred_language
from shared.settings import LANGUAGES

HERE = Path(__file__).parent
CATALOG = Catalog(HERE / "messages")
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}

_environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def language(request: Request) -> str:
    return language_of(request.query_params.get("lang") or preferred_language(request.headers.get("accept-language")))


def render_page(request: Request, template: str, lang: str, organisation: dict[str, str], *, status_code: int = 200,
                headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    values = {"t": CATALOG.translator(lang), "lang": lang, "languages": LANGUAGES,
              "organisation": organisation.get(lang) or organisation.get("fr", ""), "path": request.url.path,
              **context}
    body = _environment.get_template(template).render(values)
    return HTMLResponse(body, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})
