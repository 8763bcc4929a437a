"""The one way a back-office page or fragment is rendered: Jinja2 with autoescaping, the person's language, the
CSRF token of their session, what the navigation may show them, and the register's vocabulary labels.

An htmx request (`HX-Request: true`) gets the fragment a template defines as block `content` when the page
asks for it (`fragment=True`), a full page otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.registry.access.dependencies import csrf_token
from services.registry.access.roles import Permission, Principal
from services.registry.backoffice.i18n import Translator
from services.registry.vocabulary import LANGUAGES, label

TEMPLATES_DIR = Path(__file__).parent / "templates"
BASE_PATH = "/backoffice"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(("html", "xml"), default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(base=BASE_PATH, languages=LANGUAGES, Permission=Permission)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: Request, principal: Principal | None, template: str, *, status_code: int = 200,
           fragment: bool = False, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    language = principal.language if principal is not None else request.cookies.get("ombudsdesk_lang", "fr")
    translator = Translator(language)
    values = {
        "request": request,
        "principal": principal,
        "t": translator,
        "lang": translator.language,
        "label": lambda value, vocabulary=None: label(value, translator.language, vocabulary) if value else "",
        "csrf_token": csrf_token(request),
        "can": (lambda permission: principal is not None and principal.can(permission)),
        "flash": None,  # what the base template shows when a page has nothing to say
        "nav": None,
        **context,
    }
    compiled = environment.get_template(template)
    if fragment and is_htmx(request) and "content" in compiled.blocks:
        body = "".join(compiled.blocks["content"](compiled.new_context(values)))
    else:
        body = compiled.render(values)
    return HTMLResponse(body, status_code=status_code, headers=headers)
