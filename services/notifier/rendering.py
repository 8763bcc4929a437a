"""Rendering notices from Jinja2 templates (pure: no I/O other than reading templates).

Each notice kind has one template per language, `<lang>/<kind>.j2`, with two blocks: `subject` and `body` (plain
text); the phrases every notice of a language shares live in `<lang>/_common.j2`, available to them as `c`. The HTML version is the same text laid out by `layout.html`, so the two versions can never say different
things. A deployment overrides any file by putting one with the same relative path in its own folder. Undefined
variables are errors (`StrictUndefined`): a missing value must fail a test, not leave a blank in a citizen's mail.

Links are never made from text a sender wrote (issue 10): the HTML part escapes every character of the text, and
turns into a link only a web address that also appears in one of the `link_sources` the caller vouches for (the
organisation's settings, the ombudsman directory). A subject `http://evil.example` stays text.
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


class TemplateRenderer:
    def __init__(self, override_dir: Path | None = None) -> None:
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
        return sorted({Path(name).stem for name in self.environment.list_templates(extensions=["j2"])
                       if not Path(name).name.startswith("_")})

    def render(self, kind: str, language: str, variables: Mapping[str, Any],
               link_sources: Iterable[str] = ()) -> RenderedNotice:
        """Render one notice; only web addresses found in `link_sources` (trusted text) become links in HTML."""
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        template = self.environment.get_template(f"{language}/{kind}.j2")
        context_vars: dict[str, Any] = {**variables, "language": language}
        # The language's shared phrases (salutation, mandatory notices, signature) as `c`, overridable like the rest.
        context_vars["c"] = self.environment.get_template(f"{language}/_common.j2").make_module(context_vars)
        context = template.new_context(context_vars)
        subject = "".join(template.blocks["subject"](context))
        body = "".join(template.blocks["body"](context))
        subject = " ".join(subject.split())
        text = re.sub(r"\n{3,}", "\n\n", body.strip()) + "\n"
        html = self.environment.get_template("layout.html").render(
            {**context_vars, "subject": subject, "body_html": _paragraphs_to_html(text, linkable_urls(link_sources))}
        )
        return RenderedNotice(language=language, subject=subject, text=text, html=html)
