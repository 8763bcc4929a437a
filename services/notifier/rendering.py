"""Rendering notices from Jinja2 templates (pure: no I/O other than reading templates).

Each notice kind has one template per language, `<lang>/<kind>.j2`, with two blocks: `subject` and `body` (plain
text); the phrases every notice of a language shares live in `<lang>/_common.j2`, available to them as `c`. The HTML version is the same text laid out by `layout.html`, so the two versions can never say different
things. A deployment overrides any file by putting one with the same relative path in its own folder. Undefined
variables are errors (`StrictUndefined`): a missing value must fail a test, not leave a blank in a citizen's mail.

Links are never made from text a sender wrote (issue 10): the HTML part escapes every character of the text, and
turns into a link only a web address that also appears in one of the `link_sources` the caller vouches for (the
organisation's settings, the ombudsman directory). A subject `http://evil.example` stays text.

Some kinds have variants (issue 15): `<lang>/<kind>_<variant>.j2`, e.g. the acknowledgment of a compliment,
`acknowledgment_compliment.j2` (`TEMPLATE_VARIANTS`, `template_name`); overridable like any other file.

The legal sentences (issue 15: appeal deadlines, second-line ombudsman) come from the jurisdiction's versioned legal
notices (`legal_notices`): `render` takes the version in force on `legal_on` (or the one named `legal_version`, to
reproduce an old notice) and offers its texts in the notice's language as `legal.appeal_deadlines` and
`legal.second_line`; the rendered notice names the version only when the template printed one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from services.notifier.legal_notices import LegalNotices, LegalNoticeVersion, LegalTexts, load_legal_notices

SHIPPED_TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("fr", "nl", "de", "en")

_MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
# Kinds whose template depends on what was received: `<kind>_<variant>.j2`; any other variant uses `<kind>.j2`.
TEMPLATE_VARIANTS: Mapping[str, frozenset[str]] = {
    "acknowledgment": frozenset({"compliment", "suggestion", "question"}),
}
_URL = re.compile(r"(https?://[^\s<>\"]+[^\s<>\".,;:!?)])")


def long_date(value: date | datetime | str, language: str) -> str:
    """`24 novembre 2026`, `24 november 2026`, `24. November 2026`, `24 November 2026`."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    month = _MONTHS[language][value.month - 1]
    if language == "de":
        return f"{value.day}. {month} {value.year}"
    return f"{value.day} {month} {value.year}"


def template_name(kind: str, variant: str | None = None) -> str:
    """The template of `kind` for `variant` (`acknowledgment`, "compliment" -> `acknowledgment_compliment`); the
    kind's own template for no variant or one it does not have (a complaint, an unknown value)."""
    clean = (variant or "").strip().lower()
    return f"{kind}_{clean}" if clean in TEMPLATE_VARIANTS.get(kind, ()) else kind


def pick_language(requested: str | None, default: str = "fr") -> str:
    """The citizen's language when we write it, else the default (French)."""
    code = (requested or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else default


@dataclass(frozen=True)
class RenderedNotice:
    language: str
    subject: str
    text: str
    html: str
    # The legal-notice version whose sentences the notice carries; None when it printed none (a thank-you).
    legal_notice_version: str | None = None


def linkable_urls(sources: Iterable[str]) -> frozenset[str]:
    """The web addresses (HTML-escaped, as `_linkify` meets them) found in text the caller vouches for."""
    return frozenset(url for source in sources if source for url in _URL.findall(str(escape(source))))


def _paragraphs_to_html(text: str, linkable: frozenset[str] = frozenset()) -> Markup:
    """Plain text to HTML: blank lines separate paragraphs, `- ` lines make a list, the `linkable` addresses
    become links (nothing else does)."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines and all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{_linkify(line[2:], linkable)}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append("<p>" + "<br>\n".join(_linkify(line, linkable) for line in lines) + "</p>")
    return Markup("\n".join(blocks))


def _linkify(line: str, linkable: frozenset[str]) -> str:
    escaped = str(escape(line))
    if not linkable:
        return escaped

    def link(match: re.Match[str]) -> str:
        url = match.group(1)
        return f'<a href="{url}">{url}</a>' if url in linkable else url

    return _URL.sub(link, escaped)


@pass_context
def _longdate_filter(context: Context, value: date | datetime | str) -> str:
    return long_date(value, context["language"])


class _LegalSentences:
    """The legal sentences of one version in one language, as templates read them (`legal.appeal_deadlines`,
    `legal.second_line`); reading one marks the version as carried by the notice."""

    def __init__(self, version: LegalNoticeVersion, texts: LegalTexts, name: str, contact: str) -> None:
        self.version = version
        self._texts = texts
        self._name = name
        self._contact = contact
        self.used = False

    @property
    def appeal_deadlines(self) -> str:
        self.used = True
        return self._texts.appeal_deadlines

    @property
    def second_line(self) -> str:
        self.used = True
        return self._texts.second_line_sentence(self._name, self._contact)


class TemplateRenderer:
    def __init__(self, override_dir: Path | None = None, legal_notices: LegalNotices | None = None) -> None:
        # The jurisdiction's legal notices; Belgium's shipped ones when none are given.
        self.legal_notices = legal_notices or load_legal_notices("BE")
        loaders = [FileSystemLoader(str(override_dir))] if override_dir else []
        loaders.append(FileSystemLoader(str(SHIPPED_TEMPLATES)))
        self.environment = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters["longdate"] = _longdate_filter

    def kinds(self) -> list[str]:
        """The notice kinds with templates (variants, `TEMPLATE_VARIANTS`, are not kinds of their own)."""
        variants = {template_name(kind, variant) for kind, names in TEMPLATE_VARIANTS.items() for variant in names}
        return sorted({Path(name).stem for name in self.environment.list_templates(extensions=["j2"])
                       if not Path(name).name.startswith("_")} - variants)

    def render(self, kind: str, language: str, variables: Mapping[str, Any],
               link_sources: Iterable[str] = (), *, legal_on: date | None = None,
               legal_version: str | None = None) -> RenderedNotice:
        """Render one notice (`kind` is a template name: a kind or one of its variants); only web addresses found in
        `link_sources` (trusted text) become links in HTML. The legal sentences are those of `legal_version` when
        given (reproducing an old notice), else of the version in force on `legal_on` (today when not given)."""
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        template = self.environment.get_template(f"{language}/{kind}.j2")
        version = self.legal_notices.version(legal_version) if legal_version \
            else self.legal_notices.in_force(legal_on or date.today())
        texts = version.texts(language)
        context_vars: dict[str, Any] = {**variables, "language": language}
        # The deployment's second-line ombudsman when configured, else the one the legal notice names.
        organisation = variables.get("org")
        configured = organisation if isinstance(organisation, Mapping) else {}
        name = str(configured.get("second_line_name") or texts.second_line_name)
        contact = str(configured.get("second_line_contact") or texts.second_line_contact)
        if isinstance(organisation, Mapping):
            context_vars["org"] = {**organisation, "second_line_name": name, "second_line_contact": contact}
        legal = context_vars["legal"] = _LegalSentences(version, texts, name, contact)
        # The language's shared phrases (salutation, mandatory notices, signature) as `c`, overridable like the rest.
        context_vars["c"] = self.environment.get_template(f"{language}/_common.j2").make_module(context_vars)
        context = template.new_context(context_vars)
        subject = "".join(template.blocks["subject"](context))
        body = "".join(template.blocks["body"](context))
        subject = " ".join(subject.split())
        text = re.sub(r"\n{3,}", "\n\n", body.strip()) + "\n"
        # The legal notice's texts are configuration, as trusted as the organisation's settings.
        trusted = [*link_sources, texts.second_line_contact, texts.appeal_deadlines]
        html = self.environment.get_template("layout.html").render(
            {**context_vars, "subject": subject, "body_html": _paragraphs_to_html(text, linkable_urls(trusted))}
        )
        return RenderedNotice(language=language, subject=subject, text=text, html=html,
                              legal_notice_version=version.id if legal.used else None)
