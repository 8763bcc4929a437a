"""The text the sender wrote this time (pure): the message without the quoted history, the signature and a
confidentiality footer, so that staff read what is new first and the language is that of the citizen's words.

The history is found by `mail-parser-reply` (maintained; the reply headers of many clients in FR, NL, DE and EN:
"Le … a écrit :", "Op … schreef:", "Am … schrieb …:", "On … wrote:", Outlook's header blocks, "-----Original
Message-----"), which also drops the signature after RFC 3676 4.3's "-- " line or a closing formula
("Cordialement", "Met vriendelijke groet", "Mit freundlichen Grüßen", "Kind regards") and "Sent from my …" lines.
Hyphen lists are kept (a citizen's "- first point" is no signature). A footer that comes without any delimiter
(a paragraph saying the message is confidential and what to do if you are not its recipient) is dropped here.

Bounded work: the library's patterns were not written for hostile input (a run of 10,000 blank lines takes it
5 s), so it reads at most `SCAN_CHARS` characters, lines cut by regex_bounds and runs of blank lines squeezed.
Beyond that window nothing is separated (None): the whole text stands.
"""

from __future__ import annotations

import re

from mailparser_reply.parser import EmailMessage

from services.intake.message.regex_bounds import bounded_lines

SCAN_CHARS = 16_000
LANGUAGES = ["fr", "nl", "de", "en"]

# A confidentiality footer says both that the message is confidential and what to do when it reached the wrong
# person; one of the two alone is a citizen's sentence ("mon dossier confidentiel").
_CONFIDENTIAL = re.compile(r"\b(confidential|confidentiel|vertrouwelijk|vertraulich|privileged|disclaimer)",
                           re.IGNORECASE)
_WRONG_RECIPIENT = re.compile(
    r"(intended recipient|addressee|in error|destinataire|par erreur|geadresseerde|per vergissing|bestemmeling"
    r"|empf[äa]nger|irrt[üu]mlich|delete|supprimer|d[ée]truire|verwijder|vernichten|l[öo]schen)",
    re.IGNORECASE,
)
_BLANK_RUN = re.compile(r"\n{3,}+")


def _without_footer(text: str) -> str:
    paragraphs = text.split("\n\n")
    while len(paragraphs) > 1 and _CONFIDENTIAL.search(paragraphs[-1]) and _WRONG_RECIPIENT.search(paragraphs[-1]):
        paragraphs.pop()
    return "\n\n".join(paragraphs).strip()


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def new_text(text: str) -> str | None:
    """What is new in `text`, or None when nothing was separated (all of it is new, or it is too long to read)."""
    if not text.strip():
        return None
    window = "\n".join(line.strip() for line in bounded_lines(text[:SCAN_CHARS]))
    window = _BLANK_RUN.sub("\n\n", window)
    replies = EmailMessage(text=window, languages=list(LANGUAGES), keep_hyphen_lists=True).read().replies
    latest = replies[0] if replies else None
    separated = replies[0].body if latest is not None and (len(replies) > 1 or latest.body != latest.content) else None
    if len(text) > SCAN_CHARS and (separated is None or _squeezed(separated) == _squeezed(window)):
        return None
    fresh = _without_footer(separated if separated is not None else window)
    if _squeezed(fresh) == _squeezed(text):
        return None
    return fresh
