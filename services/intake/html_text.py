"""HTML mail turned into readable plain text (pure). Nothing is executed or fetched: scripts, styles and remote
resources are dropped, only the text and link targets are kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr",
    "section", "article", "header", "footer", "ul", "ol", "dd", "dt", "address",
}
_SKIPPED_TAGS = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0
        self.pending_href: str | None = None
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth += 1
            return
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        if tag == "li":
            self.chunks.append("- ")
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self.pending_href = href if href.startswith(("http://", "https://", "mailto:")) else None
            self.link_text = []
        if tag in {"td", "th"}:
            self.chunks.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth = max(self.skip_depth - 1, 0)
            return
        if tag == "a" and self.pending_href:
            shown = "".join(self.link_text).strip()
            target = self.pending_href.removeprefix("mailto:")
            if target and target not in shown:
                self.chunks.append(f" ({target})")
            self.pending_href = None
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self.chunks.append(data)
        if self.pending_href is not None:
            self.link_text.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; any leftover error falls back to stripping tags
        return _collapse(re.sub(r"<[^>]*>", " ", html))
    return _collapse("".join(parser.chunks))


def _collapse(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines()]
    collapsed: list[str] = []
    for line in lines:
        if line or (collapsed and collapsed[-1]):
            collapsed.append(line)
    return "\n".join(collapsed).strip()
