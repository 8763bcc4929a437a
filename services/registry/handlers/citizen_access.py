"""Handlers of the citizen's personal link and of the satisfaction survey (issue 17; rules in
`citizen_access.py` and `survey.py`): "send me my link again", staff revoking or re-issuing a file's links, the
survey invitations of closed files, a survey's answers; and `vouched`, how the register takes every message — our
links quoted in it removed, one sent through a link vouched for (called by `incoming.message_received` before it
routes the message).

Every link sent is a `citizen_link` notice whose context carries the link sealed for the notifier, and a change-log
entry of the file (who asked for it: the citizen's request, or staff), never the token.

A new link replaces the file's earlier ones. Staff re-issuing one revoke them at once, with their reason. A link
the citizen asked for again ("send me my link again", actor `citizen request`) replaces them when it is first
opened (`supersede_citizen_links`): the citizen asked because the link is lost, and a lost link, or one leaked in a
forwarded mail, must stop opening the file — but whoever knows a file's number and its address (the administration
complained about, often) must not be able to cut the citizen off by asking, nor leave them with no working link
when the new one's mail does not arrive.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import select, update

from services.registry.public import survey
from services.registry.public.citizen_access import (
    earlier_working_links,
    link_expires_on,
    recent_requests,
    vouch,
    without_own_links,
)
from services.registry.public.citizen_access import issue_link as issue_link_row
from services.registry.commands import (
    AnswerSurvey,
    InviteToSurveys,
    IssueCitizenLink,
    ResendCitizenLink,
    SupersedeCitizenLinks,
    RevokeCitizenLinks,
)
from services.registry.handlers.ports import RegisterClock, RegistryPolicy
from services.registry.handlers.records import locked_complaint, log_change, request_notice
from services.registry.models import CitizenLink, Complaint
from services.registry.repository import RegistryStore, Transaction
from services.registry.unit_of_work import UnitOfWork
from services.registry.vocabulary import Status
from shared.events import MessageReceived, SurveyState

log = structlog.get_logger(__name__)

CITIZEN_REQUEST = "citizen request"  # `citizen_links.issued_by` of a link the citizen asked for again
SUPERSEDED = "superseded by a newer link"  # `citizen_links.revoked_by` of a link replaced by one the citizen opened
LINK_NOTICE = "citizen_link"
SURVEY_NOTICE = "survey_invitation"


async def vouched(store: RegistryStore, event: MessageReceived, policy: RegistryPolicy,
                  clock: RegisterClock) -> MessageReceived:
    """The message as the register takes it: our own links quoted in it removed (`without_own_links`), then
    vouched for (`citizen_access.vouch`); only a message carrying a proof is read for."""
    event = without_own_links(event, policy.citizen)
    if event.citizen_link_proof is None:
        return event
    async with store.reading() as tx:
        return await vouch(tx, event, policy.citizen, today=clock.today(), zone=clock.zone)


async def _send_link(tx: Transaction, complaint: Complaint, policy: RegistryPolicy, clock: RegisterClock, *,
                     actor: str, reason: str | None) -> bool:
    sealed = issue_link_row(tx, complaint, policy.citizen, issued_by=actor, now=clock.now())
    if sealed is None:
        return False
    await request_notice(tx, complaint, LINK_NOTICE, uuid.uuid4().hex, {"sealed_link": sealed})
    log_change(tx, complaint, "citizen_link_sent", actor, reason, {}, at=clock.now())
    return True


async def resend_citizen_link(command: ResendCitizenLink, *, uow: UnitOfWork, policy: RegistryPolicy,
                              clock: RegisterClock) -> bool:
    number, email = command.number.strip().upper()[:40], command.email.strip().lower()[:320]

    async def resend(tx: Transaction) -> bool:
        complaint = await tx.complaint_by_number(number, for_update=True)
        if complaint is None or not email or complaint.complainant_email != email:
            return False
        if complaint.status == Status.MERGED or complaint.automated:
            return False
        expires = link_expires_on(complaint, policy.citizen, clock.zone)
        if expires is not None and clock.today() > expires:
            return False
        now = clock.now()
        if await recent_requests(tx, complaint.id, CITIZEN_REQUEST, now - timedelta(days=1)) \
                >= policy.citizen.resends_per_day:
            return False
        # The earlier links stay until the new one is first opened (`supersede_citizen_links`).
        return await _send_link(tx, complaint, policy, clock, actor=CITIZEN_REQUEST, reason=None)

    sent = await uow.run(f"citizen link {number}", resend)
    log.info("citizen_link.resend_requested", sent=sent)  # neither the number nor the address: a citizen's input
    return sent


async def _revoke(tx: Transaction, complaint: Complaint, actor: str, reason: str | None,
                  clock: RegisterClock) -> int:
    links = list((await tx.session.execute(select(CitizenLink.id).where(
        CitizenLink.complaint_id == complaint.id, CitizenLink.revoked_at.is_(None)))).scalars())
    if links:
        await tx.session.execute(update(CitizenLink).where(CitizenLink.id.in_(links))
                                 .values(revoked_at=clock.now(), revoked_by=actor))
        log_change(tx, complaint, "citizen_links_revoked", actor, reason, {"links": len(links)}, at=clock.now())
    return len(links)


async def supersede_citizen_links(command: SupersedeCitizenLinks, *, uow: UnitOfWork, clock: RegisterClock) -> int:
    async def supersede(tx: Transaction) -> int:
        link = await tx.session.get(CitizenLink, command.link_id)
        if link is None or link.revoked_at is not None:
            return 0
        earlier = list((await tx.session.execute(earlier_working_links(link))).scalars())
        if not earlier:
            return 0
        complaint = await tx.complaint_by_id(link.complaint_id)
        await tx.session.execute(update(CitizenLink).where(CitizenLink.id.in_(earlier))
                                 .values(revoked_at=clock.now(), revoked_by=SUPERSEDED))
        log_change(tx, complaint, "citizen_links_revoked", SUPERSEDED, None, {"links": len(earlier)}, at=clock.now())
        return len(earlier)

    return await uow.run(f"citizen link {command.link_id}", supersede)


async def revoke_citizen_links(command: RevokeCitizenLinks, *, uow: UnitOfWork, clock: RegisterClock) -> int:
    async def revoke(tx: Transaction) -> int:
        return await _revoke(tx, await locked_complaint(tx, command.number), command.actor, command.reason, clock)

    return await uow.run(f"complaint {command.number}", revoke)


async def issue_citizen_link(command: IssueCitizenLink, *, uow: UnitOfWork, policy: RegistryPolicy,
                             clock: RegisterClock) -> bool:
    async def issue(tx: Transaction) -> bool:
        complaint = await locked_complaint(tx, command.number)
        await _revoke(tx, complaint, command.actor, command.reason, clock)
        return await _send_link(tx, complaint, policy, clock, actor=command.actor, reason=command.reason)

    return await uow.run(f"complaint {command.number}", issue)


async def invite_to_surveys(command: InviteToSurveys, *, uow: UnitOfWork, policy: RegistryPolicy,
                            clock: RegisterClock) -> int:
    async def invite(tx: Transaction) -> int:
        invited = await survey.invite(tx, policy.citizen, now=clock.now(), zone=clock.zone)
        for complaint, sealed in invited:
            await request_notice(tx, complaint, SURVEY_NOTICE, "survey", {"sealed_link": sealed})
        return len(invited)

    return await uow.run("survey invitations", invite)


async def answer_survey(command: AnswerSurvey, *, uow: UnitOfWork, clock: RegisterClock) -> SurveyState:
    async def answer(tx: Transaction) -> SurveyState:
        return await survey.record(tx, command.token, command.answers, today=clock.today())

    return await uow.run("survey answer", answer)
