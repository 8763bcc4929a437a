"""The citizen's personal and survey links in notices (issue 17): the registry seals each link
(`shared.sealing`); here it is opened and becomes a template variable the renderer may turn into a link (it comes from
the registry's configuration and random token, never from a sender's text: `NoticeDraft.trusted_variables`).

- the acknowledgment: `ComplaintRegistered.citizen_link` → `citizen_link_url` (`_common.j2`'s `reply_hint` says it).
  A link that does not open (another key) is left out and the acknowledgment still goes: it is the legal receipt.
- the `citizen_link` and `survey_invitation` notices: `sealed_link` → `link_url`; a link that does not open is a
  permanent error (the notice would be empty of its purpose), dead-lettered for an operator to fix the key.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

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
