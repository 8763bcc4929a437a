"""HTML mail turned into readable plain text (pure). Nothing is executed or fetched: scripts, styles and remote
resources are dropped, only the text and link targets are kept.

A small forward-only scanner rather than `html.parser`: the standard parser rescans unclosed constructs and takes
quadratic time on inputs such as `"<!--" * 20000` (3 s for 80 KB here, cf. CVE-2025-6069), and intake parses small
messages on its event loop. Every search below starts where the previous one ended, so the time is linear; the
patterns only see a tag cut to regex_bounds' line length. A numeric character reference of thousands of digits
(`&#999...;`) would make `html.unescape` raise (Python's int-from-string limit): it becomes U+FFFD instead.
"""

from __future__ import annotations

import html
import re

from services.intake.message.regex_bounds import LINE_CHARS

_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr",
    "section", "article", "header", "footer", "ul", "ol", "dd", "dt", "address",
}
_SKIPPED_TAGS = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}
_TAG_NAME = re.compile(r"/?\s*([a-zA-Z][a-zA-Z0-9]*)")
_HREF = re.compile(r"""\bhref\s*+=\s*+(?:"([^"]*+)"|'([^']*+)'|([^\s>]++))""", re.IGNORECASE)
# A reference longer than any code point (U+10FFFF is 1114111): starts only at "&#", so linear.
_HUGE_CHARREF = re.compile(r"&#(?:[xX]0*+[0-9a-fA-F]{7,}+|0*+[0-9]{8,}+);?")


def _unescape(text: str) -> str:
    if "&#" in text:
        text = _HUGE_CHARREF.sub("\ufffd", text)
    return html.unescape(text)


def html_to_text(source: str) -> str:
    lower = source.lower()
    chunks: list[str] = []
    position = 0
    length = len(source)
    link: tuple[str, int] | None = None  # target and index of the first chunk of the link's text
    while position < length:
        start = source.find("<", position)
        if start < 0:
            chunks.append(_unescape(source[position:]))
            break
        if start > position:
            chunks.append(_unescape(source[position:start]))
        if source.startswith("<!--", start):
            end = source.find("-->", start + 4)
            if end < 0:
                break
            position = end + 3
            continue
        end = source.find(">", start + 1)
        if end < 0:
            chunks.append(_unescape(source[start:]))
            break
        tag = source[start + 1 : min(end, start + 1 + LINE_CHARS)]
        position = end + 1
        match = _TAG_NAME.match(tag)
        if not match:
            continue  # <!DOCTYPE>, <?xml?>, a stray "<"
        name = match.group(1).lower()
        closing = tag.lstrip().startswith("/")
        if name in _SKIPPED_TAGS and not closing and not tag.rstrip().endswith("/"):
            close = lower.find(f"</{name}", position)
            if close < 0:
                break
            after = source.find(">", close)
            position = length if after < 0 else after + 1
            continue
        if name in _BLOCK_TAGS and not (closing and name == "li"):
            chunks.append("\n")
        if name == "li" and not closing:
            chunks.append("- ")
        elif name in {"td", "th"} and not closing:
            chunks.append(" ")
        elif name == "a" and not closing:
            href = _HREF.search(tag)
            target = next((group for group in href.groups() if group), "") if href else ""
            target = _unescape(target)
            link = (target, len(chunks)) if target.startswith(("http://", "https://", "mailto:")) else None
        elif name == "a" and closing and link is not None:
            target, first = link
            shown = "".join(chunks[first:])
            target = target.removeprefix("mailto:")
            if target and target not in shown:
                chunks.append(f" ({target})")
            link = None
    return _collapse("".join(chunks))


def _collapse(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines()]
    collapsed: list[str] = []
    for line in lines:
        if line or (collapsed and collapsed[-1]):
            collapsed.append(line)
    return "\n".join(collapsed).strip()
