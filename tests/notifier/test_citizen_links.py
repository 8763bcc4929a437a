"""The citizen's personal and survey links in notices (issue 17): the registry seals them, the notifier opens them
with the shared key file and writes them into the acknowledgment (every kind, every language) and into the
`citizen_link` and `survey_invitation` notices, as links in the HTML part; a link sealed with another key is left out
of the acknowledgment (which still goes) and makes the link notices a permanent error."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notifier.citizen_link import acknowledgment_with_link, opened
from services.notifier.handlers import organisation_variables
from services.notifier.notices import draft_acknowledgment, draft_requested_notice
from services.notifier.rendering import LANGUAGES, TemplateRenderer
from services.notifier.settings import NotifierSettings
from shared.events import NoticeRequested, Party
from shared.messaging import PermanentError
from shared.sealing import LinkSeal
from tests.notifier.support import registered_event

URL = "https://public.example.be/my-file/0123456789abcdefQWERTYUIOPASDFGHJKLZXCVBNM-_12345?lang=fr"


def render(draft, language: str):
    variables = {**draft.variables, "org": organisation_variables(NotifierSettings(), language),
                 "case_number": draft.complaint_number, "recipient_name": draft.recipient_name, "channel": "email"}
    sources = [str(draft.variables.get(name) or "") for name in draft.trusted_variables]
    return TemplateRenderer().render(draft.template_name, language, variables, link_sources=sources)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["complaint", "question", "suggestion", "compliment"])
def test_every_acknowledgment_carries_the_personal_link(tmp_path: Path, language: str, kind: str):
    seal = LinkSeal(tmp_path / "key")
    event = registered_event(kind=kind).model_copy(update={"citizen_link": seal.seal(URL), "language": language})
    rendered = render(acknowledgment_with_link(draft_acknowledgment(event, "fr"), event.citizen_link, seal), language)
    assert URL in rendered.text
    assert f'href="{URL.replace("&", "&amp;")}"' in rendered.html


def test_a_link_sealed_with_another_key_is_left_out_of_the_acknowledgment(tmp_path: Path):
    sealed = LinkSeal(tmp_path / "registry-key").seal(URL)
    event = registered_event().model_copy(update={"citizen_link": sealed})
    draft = acknowledgment_with_link(draft_acknowledgment(event, "fr"), sealed, LinkSeal(tmp_path / "other-key"))
    rendered = render(draft, "fr")
    assert "/my-file/" not in rendered.text and "réclamation" in rendered.subject.lower()
    assert sealed not in rendered.text


@pytest.mark.parametrize("kind", ["citizen_link", "survey_invitation"])
def test_link_notices_open_their_sealed_link(tmp_path: Path, kind: str):
    seal = LinkSeal(tmp_path / "key")
    request = NoticeRequested(request_key=f"{kind}:MED-2026-00042:x", complaint_number="MED-2026-00042",
                              notice_kind=kind, recipient=Party(name="Jeanne Dupont", email="jeanne@example.org"),
                              context={"sealed_link": seal.seal(URL), "language": "nl"})
    draft = opened(draft_requested_notice(request, "fr"), seal)
    assert "sealed_link" not in draft.variables
    rendered = render(draft, draft.language)
    assert URL in rendered.text and "MED-2026-00042" in rendered.subject
    assert f'href="{URL}"' in rendered.html
    with pytest.raises(PermanentError):
        opened(draft_requested_notice(request, "fr"), LinkSeal(tmp_path / "other-key"))


def test_the_key_file_is_made_once_and_kept_private(tmp_path: Path):
    path = tmp_path / "var" / "citizen-link.key"
    first, second = LinkSeal(path), LinkSeal(path)
    assert second.open(first.seal(URL)) == URL
    assert path.stat().st_mode & 0o077 == 0
    assert first.open("not a sealed link") is None
