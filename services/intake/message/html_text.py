"""HTML mail turned into readable plain text (pure). Nothing is executed or fetched: scripts, styles and remote
resources are dropped, only the text and link targets are kept.

An HTML parser does the reading (libxml2 through lxml): attributes are attributes (`<img alt="a > b">` leaks
nothing), entities and broken markup are read as browsers read them, in linear time (the standard library's
parser takes quadratic time on `"<!--" * 20000`, cf. CVE-2025-6069). `inscriptis` lays the text out as a browser
renders it, with CSS's whitespace model (`ab<span>c</span>` stays one word, which `html-text` splits: words of
Chinese and Japanese mail were cut apart). Here are added: the invisible elements dropped (lxml_html_clean), list
items as "- " and table cells on one line per row (inscriptis' own bullets and table layout are off: a mail's
layout tables are no data), and a link's target after its words when they do not show it. Two repairs first:
- an element whose content is raw text (`<style>`, `<script>`) left unclosed would swallow the rest of the mail
  (HTML5 13.2.5.2: up to its end tag, which never comes), so it is closed at the next tag;
- what follows `</body>` or `</html>` (mail clients append their footers and quoted mails there) belongs to
  the body (HTML5 13.2.6.4.19-22), where libxml2 drops it: those end tags are removed;
- beyond 256 levels of nesting libxml2 stops reading (and inscriptis recurses once per level): such a document
  is read without its markup instead.
At most `MAX_HTML_CHARS` of HTML are read (the text kept is far smaller: ParseContext.max_text_chars).
"""

from __future__ import annotations

import re

import copy

import lxml.etree
import lxml.html
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_document_state import HtmlDocumentState
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping
from lxml_html_clean import Cleaner

MAX_HTML_CHARS = 5_000_000
# Elements whose text no reader sees.
_INVISIBLE = ["head", "title", "template", "noscript", "svg", "object", "iframe", "script", "style"]
_CLEANER = Cleaner(scripts=True, javascript=False, comments=True, style=True, links=True, meta=True,
                   page_structure=False, processing_instructions=True, embedded=True, frames=True, forms=False,
                   annoying_tags=False, remove_unknown_tags=False, safe_attrs_only=False, kill_tags=_INVISIBLE)
_RAW_TEXT_START = re.compile(r"<(style|script|xmp|textarea|title)\b[^>]{0,2000}+>", re.IGNORECASE)
_LINK_SCHEMES = ("http://", "https://", "mailto:")
_TAG = re.compile(r"<[^<>]{0,2000}+>")
_DOCUMENT_END = re.compile(r"</(?:body|html)\s{0,100}+>", re.IGNORECASE)


def _ignore(*_: object) -> None:
    """A tag handler that does nothing (replaces inscriptis' list bullets and table layout)."""


def _cell(state: HtmlDocumentState, _attributes: object) -> None:
    """A table cell starts after a space: the cells of a row read as one line."""
    state.tags[-1].write(" ")


def _layout() -> ParserConfig:
    css = copy.deepcopy(CSS_PROFILES["strict"])
    for name in ("ul", "ol", "tr"):
        css[name] = HtmlElement(display=Display.block)
    for name in ("td", "th"):
        css[name] = HtmlElement(display=Display.inline)
    handlers = CustomHtmlTagHandlerMapping(
        start_tag_mapping={**{name: _ignore for name in ("ul", "ol", "li", "table", "tr")}, "td": _cell, "th": _cell},
        end_tag_mapping={name: _ignore for name in ("ul", "ol", "table", "td", "th")},
    )
    return ParserConfig(css=css, custom_html_tag_handler_mapping=handlers)


_LAYOUT = _layout()


def _close_raw_text(source: str) -> str:
    """Close each raw-text element that has no end tag just before the next "<" (CSS never holds one; a script
    that does is dropped anyway). One forward pass: every search starts where the previous ended."""
    lower = source.lower()
    last_end: dict[str, int] = {}  # where each end tag last occurs: no search for one that never comes
    pieces: list[str] = []
    position = 0
    while (start := _RAW_TEXT_START.search(source, position)) is not None:
        name = start.group(1).lower()
        if name not in last_end:
            last_end[name] = lower.rfind(f"</{name}")
        end = lower.find(f"</{name}", start.end()) if last_end[name] >= start.end() else -1
        if end >= 0:
            pieces.append(source[position:end])
            position = end
            continue
        following = source.find("<", start.end())
        following = len(source) if following < 0 else following
        pieces.append(f"{source[position:following]}</{name}>")
        position = following
    pieces.append(source[position:])
    return "".join(pieces)


def _parse(source: str) -> lxml.html.HtmlElement | None:
    """The document's tree, or None when libxml2 gave up part of it (nesting beyond its limit)."""
    parser = lxml.html.HTMLParser(recover=True, encoding="utf-8")
    data = source.replace("\x00", "").encode("utf-8", "surrogatepass").strip() or b"<html/>"
    try:
        root = lxml.etree.fromstring(data, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return None
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        return None
    return root if root is not None else lxml.etree.fromstring(b"<html/>", parser=parser)


def _mark_up(tree: lxml.html.HtmlElement) -> None:
    """List items start with "- "; a link whose words do not show its target gets it after them."""
    for item in tree.iter("li"):
        item.text = "- " + (item.text or "")
    for link in tree.iter("a"):
        target = (link.get("href") or "").strip()
        if not target.startswith(_LINK_SCHEMES):
            continue
        target = target.removeprefix("mailto:")
        if target and target not in link.text_content():
            link.tail = f" ({target})" + (link.tail or "")


def _without_markup(source: str) -> str:
    """The fallback for a document the parser could not read whole: tags become line breaks."""
    return lxml.html.fromstring(f"<p>{_TAG.sub(chr(10), source)}</p>").text_content()


def html_to_text(source: str) -> str:
    source = _close_raw_text(_DOCUMENT_END.sub("", source[:MAX_HTML_CHARS]))
    tree = _parse(source)
    if tree is None:
        return _collapse(_without_markup(source))
    try:
        tree = _CLEANER.clean_html(tree)
    except AssertionError:  # lxml bug 1838497 on some malformed trees: read them uncleaned
        pass
    _mark_up(tree)
    return _collapse(Inscriptis(tree, _LAYOUT).get_text())


def _collapse(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines()]
    collapsed: list[str] = []
    for line in lines:
        if line or (collapsed and collapsed[-1]):
            collapsed.append(line)
    return "\n".join(collapsed).strip()
