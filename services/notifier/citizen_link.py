"""The citizen's personal and survey links in notices (issue 17): the registry seals each link
(`shared.sealing`); here it is opened and becomes a template variable the renderer may turn into a link (it comes from
the registry's configuration and random token, never from a sender's text: `NoticeDraft.trusted_variables`).

- the acknowledgment: `ComplaintRegistered.citizen_link` → `citizen_link_url` (`_common.j2`'s `reply_hint` says it).
  A link that does not open (another key) is left out and the acknowledgment still goes: it is the legal receipt.
- the `citizen_link` and `survey_invitation` notices: `sealed_link` → `link_url`; a link that does not open is a
  permanent error (the notice would be empty of its purpose), dead-lettered for an operator to fix the key.

**What the outbox keeps of a link** (`redacted`). A link is a bearer credential: whoever reads it opens the file (or
answers its survey). The outbox keeps each notice fully rendered so that it can be sent again after a transient
failure (a retry sends the stored text, so a notice still to go out keeps its link) and so that staff can read what
went out. Once the notice can never go out again — sent, failed for good, printed and posted, or recorded suppressed
or failed at once — the link is replaced, in the text and the HTML, by a placeholder in the notice's language, and a
letter's PDF (which prints it) is dropped: the rest of the notice stays as it was sent. A citizen who needs the link
again asks for it ("send me my link again") or staff issue a new one; no stored notice is the way to recover it.
The links are found by their shape (`LINK`: the public web's `my-file/` or `survey/` path and a token as
`shared.events.citizen_token_parts` reads it), not by the notice's kind: the acknowledgments carry the personal link
in their reply hint (`_common.j2`), the `citizen_link` and `survey_invitation` notices carry theirs in the body, and
a template that adds one elsewhere is covered too.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import structlog
from markupsafe import escape

from services.notifier.notices import NoticeDraft, NoticeKind
from shared.messaging import PermanentError
from shared.sealing import LinkSeal

log = structlog.get_logger(__name__)

LINK_KINDS = frozenset({NoticeKind.CITIZEN_LINK, NoticeKind.SURVEY_INVITATION})


def _with_link(draft: NoticeDraft, name: str, url: str) -> NoticeDraft:
    variables = {key: value for key, value in draft.variables.items() if key != "sealed_link"}
    return replace(draft, variables={**variables, name: url}, trusted_variables=(*draft.trusted_variables, name))


def acknowledgment_with_link(draft: NoticeDraft, sealed: str | None, seal: LinkSeal) -> NoticeDraft:
    """The acknowledgment with `citizen_link_url` ("" when there is none, or it does not open)."""
    url = seal.open(sealed) if sealed else None
    if sealed and url is None:
        log.warning("citizen_link.unopened", complaint_number=draft.complaint_number)
    return _with_link(draft, "citizen_link_url", url or "")


def opened(draft: NoticeDraft, seal: LinkSeal) -> NoticeDraft:
    """A `citizen_link` or `survey_invitation` draft with its `link_url`; other drafts unchanged."""
    if draft.kind not in LINK_KINDS:
        return draft
    url = seal.open(str(draft.variables.get("sealed_link") or ""))
    if url is None:
        raise PermanentError(f"notice {draft.notification_key}: the link does not open with this key file")
    return _with_link(draft, "link_url", url)


# A personal or survey link as `services.registry.public.citizen_access.public_link` writes it: the public web's
# address (any: the notifier does not know it, and an old deployment's links count too), then this part — the path,
# the token (16 hex characters of selector, 32 base64url of verifier), the page's language. Only this part is a
# pattern (linear to search); the address before it is the run of characters up to a space or a quote, found by
# walking back (`_links`): a pattern that began with the address would try every "https://" of a long line again.
LINK = re.compile(r"(?:my-file|survey)/[0-9a-f]{16}[A-Za-z0-9_-]{32}(?:\?lang=[a-z]{2})?")
_ADDRESS_ENDS = frozenset(" \t\r\n\f\v<>\"'")

# What the kept copy shows in place of a link, in the notice's language (it is part of the stored notice).
REMOVED: dict[str, str] = {
    "fr": "[lien personnel retiré de la copie conservée]",
    "nl": "[persoonlijke link verwijderd uit de bewaarde kopie]",
    "de": "[persönlicher Link aus der aufbewahrten Kopie entfernt]",
    "en": "[personal link removed from the kept copy]",
}


def _placeholder(language: str | None) -> str:
    return REMOVED.get((language or "")[:2].lower(), REMOVED["fr"])


def _links(text: str) -> list[tuple[int, int]]:
    """(start, end) of each personal or survey link in `text`, its web address included, in order."""
    found: list[tuple[int, int]] = []
    done = 0
    for match in LINK.finditer(text):
        start = match.start()
        while start > done and text[start - 1] not in _ADDRESS_ENDS:
            start -= 1
        found.append((start, match.end()))
        done = match.end()
    return found


def _replaced(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    parts, done = [], 0
    for start, end in spans:
        parts += [text[done:start], placeholder]
        done = end
    return "".join(parts) + text[done:]


def without_links(text: str, language: str | None) -> str:
    """`text` (plain) with every personal or survey link replaced by the placeholder."""
    return _replaced(text, _links(text), _placeholder(language))


def html_without_links(html: str, language: str | None) -> str:
    """`html` with every link element to a personal or survey link (`rendering._linkify` writes `<a href="URL">URL
    </a>`), and any such address left, replaced by the placeholder (escaped)."""
    spans: list[tuple[int, int]] = []
    for start, end in _links(html):
        if spans and start < spans[-1][1]:
            continue  # the anchor's text, inside an anchor replaced whole
        url = html[start:end]
        opening, closing = '<a href="', f'">{url}</a>'
        if html.endswith(opening, 0, start) and html.startswith(closing, end):
            start, end = start - len(opening), end + len(closing)
        spans.append((start, end))
    return _replaced(html, spans, str(escape(_placeholder(language))))


def redacted(body_text: str | None, body_html: str | None, language: str | None,
             letter_pdf: bytes | None) -> dict[str, Any]:
    """The columns of a stored notice to write once it can no longer go out: its text and HTML without the links,
    and no letter PDF (it prints the link); {} when the notice carries no link (nothing to write)."""
    text, html = body_text or "", body_html or ""
    if not LINK.search(text) and not LINK.search(html):
        return {}
    columns: dict[str, Any] = {"body_text": without_links(text, language),
                               "body_html": html_without_links(html, language)}
    if letter_pdf is not None:
        columns["letter_pdf"] = None
    return columns
