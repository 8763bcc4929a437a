"""Orientation, the public site's first step (issue 17): the citizen describes the problem in a few words or picks a
theme, and the registry's screening configuration (the ombudsman directory and the keyword rules) says who is
competent — asked over NATS (`streams.SUBJECT_ORIENTATION`, answered by `services/registry/public/orientation.py`).

- `GET /orientation`: the question (the themes come from the registry; without an answer, the words alone).
- `POST /orientation`: the answer, by outcome —
  competent (or unclear, or nobody known, or no answer from the registry): a button to the complaint form, filled
  in with the words typed and the service and theme recognised;
  another ombudsman: its name and contact in the reader's language, and no form — unless the citizen asks us to
  transmit the complaint (an explicit checkbox), in which case the form opens with the transmission in it.
The words leave the page only in the body of a POST (never in a URL: no history, no proxy log), are cut at
`OrientationRequest.MAX_DESCRIPTION` characters (a longer text is refused, kept as typed) before anything is asked,
and nothing but them and the theme's id is asked. Requests from one address are bounded per hour.

The form (`POST /complaint/start`, pages/complaint.py) is filled in by `prefill`. The transmission travels as form
fields (`transmit_to`, `transmit_name`, `transmit_consent`, shown in the form by `orientation_transmission.html`,
where the citizen can still untick the consent): `carry_transmission` refuses a submission that asks for a
transmission without the consent ticked at submission, and the consent given is recorded in the submission's raw
original (the form's values) and in the complaint's text (`transmission_note`, read by screening and staff). The
event contract is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.intake.web.abuse import SubmissionLimiter
from services.intake.web.context import PublicContext
from services.intake.web.form import LIMITS, ComplaintForm, clean_text
from services.intake.web.rendering import language
from shared import streams
from shared.events import Orientation, OrientationContact, OrientationOutcome, OrientationRequest
from shared.i18n import Catalog, language_of
from shared.settings import LANGUAGES

log = structlog.get_logger(__name__)

MAX_DESCRIPTION = OrientationRequest.MAX_DESCRIPTION
# Questions from one address per hour: far more than a person asks, few enough that a script cannot use the page
# to keep the registry busy (each question is one NATS request).
ORIENTATIONS_PER_CLIENT_PER_HOUR = 60
# How long the page waits for the registry's answer before it offers the form without one.
ANSWER_TIMEOUT_SECONDS = 2.0
# The form fields orientation fills in, and those of a transmission to another ombudsman.
PREFILLED = ("facts", "service", "subject")
TRANSMIT_TO, TRANSMIT_NAME, TRANSMIT_CONSENT = "transmit_to", "transmit_name", "transmit_consent"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_NAME_LIMIT = 300
_THEME_LIMIT = 100


def pick(labels: Mapping[str, str], lang: str) -> tuple[str, str]:
    """(the label in `lang`, else in French, else the first; the language it is in)."""
    for candidate in (lang, LANGUAGES[0], *labels):
        if labels.get(candidate):
            return labels[candidate], candidate
    return "", lang


@dataclass(frozen=True)
class Shown:
    """An ombudsman as the page shows it: its name (and the language the name is in, for `lang=`) and contact."""

    id: str
    name: str
    name_lang: str
    website: str
    email: str
    phone: str
    address: str
    verified: bool

    @classmethod
    def of(cls, entry: OrientationContact, lang: str) -> Shown:
        name, name_lang = pick(entry.names, lang)
        website = entry.website if entry.website.startswith(("https://", "http://")) else ""
        return cls(entry.id, name or entry.id, name_lang, website, entry.email, entry.phone, entry.address,
                   entry.verified)


def prefill(raw: Mapping[str, object]) -> dict[str, str]:
    """The complaint form's values from what an orientation page posts (each bounded as the form bounds it)."""
    values = {name: clean_text(raw.get(name), LIMITS[name])[: LIMITS[name]] for name in PREFILLED}
    values.update(transmission(raw))
    return values


def transmission(raw: Mapping[str, object]) -> dict[str, str]:
    """The transmission asked for in `raw` (empty when none): to whom, their name as shown, the consent ticked."""
    target = str(raw.get(TRANSMIT_TO) or "").strip()
    if not _ID.fullmatch(target):
        return {}
    return {TRANSMIT_TO: target, TRANSMIT_NAME: clean_text(raw.get(TRANSMIT_NAME), _NAME_LIMIT)[:_NAME_LIMIT] or target,
            TRANSMIT_CONSENT: "yes" if str(raw.get(TRANSMIT_CONSENT) or "") == "yes" else ""}


def carry_transmission(form: ComplaintForm, raw: Mapping[str, object]) -> None:
    """Keep a transmission's fields in the submitted form; without the consent ticked, the form is not taken."""
    carried = transmission(raw)
    form.values.update(carried)
    if carried and carried[TRANSMIT_CONSENT] != "yes":
        form.errors[TRANSMIT_CONSENT] = "orientation.error.consent_required"


def transmission_note(form: ComplaintForm, catalog: Catalog, lang: str) -> str:
    """The paragraph that tells staff (and screening) of the transmission asked for; empty without one."""
    values = form.values
    if values.get(TRANSMIT_CONSENT) != "yes" or not values.get(TRANSMIT_TO):
        return ""
    note = catalog.translate("orientation.transmission.note", lang, name=values[TRANSMIT_NAME],
                             id=values[TRANSMIT_TO])
    return f"\n\n{note}"


def router(context: PublicContext) -> APIRouter:
    routes = APIRouter()
    limiter = SubmissionLimiter(ORIENTATIONS_PER_CLIENT_PER_HOUR)

    async def ask(description: str, theme: str | None) -> Orientation | None:
        return await context.request(streams.SUBJECT_ORIENTATION,
                                     OrientationRequest(description=description, theme=theme), Orientation,
                                     timeout=ANSWER_TIMEOUT_SECONDS)

    def question(request: Request, lang: str, answer: Orientation | None, *, description: str = "",
                 theme: str = "", problem: str | None = None, status_code: int = 200) -> HTMLResponse:
        themes = [(item.id, pick(item.labels, lang)[0] or item.id) for item in (answer.themes if answer else ())]
        return context.page(request, "orientation.html", lang, status_code=status_code, themes=themes,
                            description=description, theme=theme, problem=problem, max_description=MAX_DESCRIPTION)

    @routes.get("/orientation", response_class=HTMLResponse)
    async def orientation_question(request: Request) -> HTMLResponse:
        lang = language(request)
        return question(request, lang, await ask("", None))

    @routes.post("/orientation", response_class=HTMLResponse)
    async def orientation_answer(request: Request) -> HTMLResponse:
        lang = language(request)
        # The page posts two short fields; a larger part is refused by the form parser before it is read.
        async with request.form(max_files=0, max_fields=8, max_part_size=16 * 1024) as raw:
            lang = language_of(str(raw.get("lang") or lang))
            description = clean_text(raw.get("description"), MAX_DESCRIPTION)
            theme = clean_text(raw.get("theme"), _THEME_LIMIT)[:_THEME_LIMIT]
        client = request.client.host if request.client else "unknown"
        if len(description) > MAX_DESCRIPTION or not (description or theme):
            problem = "orientation.error.too_long" if description else "orientation.error.empty"
            return question(request, lang, await ask("", None), description=description, theme=theme,
                            problem=problem, status_code=422)
        if not limiter.allow(client):
            log.warning("orientation.limited")
            return question(request, lang, None, description=description, theme=theme,
                            problem="orientation.error.limited", status_code=429)
        answer = await ask(description, theme or None)
        outcome = answer.outcome if answer else None
        log.info("orientation.shown", outcome=outcome.value if outcome else "no_answer")
        service = pick(answer.service, lang)[0] if answer else ""
        theme_id = (answer.theme if answer else None) or theme
        theme_label = next((pick(item.labels, lang)[0] for item in (answer.themes if answer else ())
                            if item.id == theme_id), "")
        return context.page(request, "orientation_result.html", lang, outcome=outcome.value if outcome else "none",
                            others=[Shown.of(entry, lang) for entry in (answer.ombudsmen if answer else ())],
                            prefill={"facts": description, "service": service, "subject": theme_label},
                            theme_label=theme_label, takes_form=outcome is not OrientationOutcome.OTHER)

    return routes
