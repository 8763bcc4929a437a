"""The audit page's templates hold nothing a strict Content-Security-Policy refuses (no inline `<script>`, no
`style` attribute or element, no `on...=` or `hx-on` handler), and every class they use is styled in the back office's
stylesheet: their styling lives there, not in the markup."""

from __future__ import annotations

import re
from pathlib import Path

import services.registry.backoffice as backoffice

TEMPLATES = Path(backoffice.__file__).parent / "templates" / "audit"
STYLESHEET = Path(backoffice.__file__).parent / "static" / "backoffice.css"

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)", re.I)
STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
# `hx-on...` too: htmx evaluates it as code, which a policy without 'unsafe-eval' refuses.
HANDLER = re.compile(r"\s(?:hx-|data-hx-)?on[a-z:-]*\s*=", re.I)
CLASSES = re.compile(r'\sclass="([^"{}]*)"')


def templates() -> list[Path]:
    found = sorted(TEMPLATES.glob("*.html"))
    assert found, TEMPLATES
    return found


def test_no_inline_script_style_or_handler():
    for template in templates():
        text = template.read_text(encoding="utf-8")
        for pattern in (INLINE_SCRIPT, STYLE, HANDLER):
            assert not pattern.search(text), (template.name, pattern.search(text).group(0))


def test_the_patterns_catch_what_they_are_for():
    # The checks above would pass on anything if the patterns matched nothing.
    assert INLINE_SCRIPT.search("<script>alert(1)</script>") and not INLINE_SCRIPT.search('<script src="x.js">')
    assert STYLE.search('<td style="color:red">') and STYLE.search("<style>td{}</style>")
    assert HANDLER.search('<a href="#" onclick="x()">') and HANDLER.search('<a hx-on:click="x()">')
    assert not HANDLER.search('<a hx-get="/x" data-row content="on">')


def test_every_class_of_the_audit_templates_is_styled():
    css = STYLESHEET.read_text(encoding="utf-8")
    assert "/* audit page */" in css
    used = {name for template in templates() for value in CLASSES.findall(template.read_text(encoding="utf-8"))
            for name in value.split()}
    assert {"audit", "chain-status", "number", "details"} <= used
    unstyled = sorted(name for name in used if not re.search(rf"\.{re.escape(name)}(?![\w-])", css))
    assert unstyled == []
