"""Requests for the administration's position (issue 15) as the notifier drafts and routes them: to its email in its
language, or, without an email, a printed letter in the print queue; never to a staff address; a context that does
not fit goes to the dead letters."""

from __future__ import annotations

import pytest

from services.notifier.handlers import suppression_rules
from services.notifier.models import NoticeChannel, NoticeStatus
from services.notifier.notices import ContextMismatch, NoticeKind, draft_requested_notice
from services.notifier.outbox import RecipientFacts
from services.notifier.routing import NoticeLimits, route_notice
from services.notifier.settings import NotifierSettings
from shared.events import NoticeRequested, Party

CONTEXT = {"questions": "1. Pourquoi ?", "requested_on": "2026-11-24", "due": "2026-12-24",
           "administration_name": "SPF Finances", "contact_person": "", "language": "nl"}


def _route(kind: str, recipient: Party, context=CONTEXT):
    draft = draft_requested_notice(NoticeRequested(request_key=f"{kind}:MED-2026-00001:k",
                                                   complaint_number="MED-2026-00001", notice_kind=kind,
                                                   recipient=recipient, context=context), "fr")
    settings = NotifierSettings(staff_domains=["med.example.be"])
    address = recipient.email.lower() if recipient.email else None
    return draft, route_notice(draft, address, RecipientFacts(None, 0), suppression_rules(settings), NoticeLimits())


@pytest.mark.parametrize("kind", ["position_request", "position_reminder"])
def test_by_email_in_the_administrations_language_else_a_letter_to_print(kind):
    draft, route = _route(kind, Party(name="SPF Finances", email="plaintes@finances.example.be", language="nl"))
    assert draft.kind is NoticeKind(kind) and draft.language == "nl"
    assert (route.channel, route.status) == (NoticeChannel.EMAIL, NoticeStatus.PENDING)

    draft, route = _route(kind, Party(name="Commune", postal_address="Place 1\n5000 Exempleville", language="fr"))
    assert (route.channel, route.status) == (NoticeChannel.LETTER, NoticeStatus.QUEUED)


def test_never_to_a_staff_address_and_never_without_its_questions():
    _draft, route = _route("position_request", Party(email="agent@med.example.be"))
    assert route.status is NoticeStatus.SUPPRESSED
    with pytest.raises(ContextMismatch, match="questions"):
        _route("position_request", Party(email="a@b.be"), {**CONTEXT, "questions": "   "})
    with pytest.raises(ContextMismatch, match="due"):
        _route("position_reminder", Party(email="a@b.be"), {k: v for k, v in CONTEXT.items() if k != "due"})
