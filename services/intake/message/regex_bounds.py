"""Bounds applied to sender-written text before any regular expression sees it (pure).

Hostile input is normal input: a subject or a line can be megabytes long, and a pattern that is linear on a
normal mail can still cost a few operations per character for each position it tries. Every module that matches
patterns against what a sender wrote (automation, bounces, forwarding, html_text) cuts the subject and every line
to these lengths first, so that its work is bounded by the input size whatever the patterns. The limits are far
above what people and mail servers write: RFC 5322 2.1.1 caps a line at 998 characters, and a subject longer
than a few hundred characters is not read by anyone.
"""

from __future__ import annotations

SUBJECT_CHARS = 1_000
LINE_CHARS = 2_000


def bounded_subject(subject: str) -> str:
    """The subject cut to `SUBJECT_CHARS` (a subject's meaning is in its first words)."""
    return subject[:SUBJECT_CHARS]


def bounded_line(line: str, limit: int = LINE_CHARS) -> str:
    return line[:limit]


def bounded_lines(text: str, limit: int = LINE_CHARS) -> list[str]:
    """The lines of `text`, each cut to `limit` characters."""
    return [line[:limit] for line in text.splitlines()]


def bounded_text(text: str, limit: int = LINE_CHARS) -> str:
    """`text` with every line cut to `limit` characters (line breaks normalised to LF)."""
    return "\n".join(bounded_lines(text, limit))
