"""The registry's answers to intake's public pages for a citizen (issue 17), over core NATS request/reply (queue
group: one registry of several answers; nothing on a stream, so no token is ever stored in one):

- `streams.SUBJECT_CITIZEN_FILE`: what a personal link shows (`citizen_access.citizen_file`), or nothing;
- `streams.SUBJECT_CITIZEN_RESEND`: "send me my link again" (`ResendCitizenLink`); the reply never says whether
  the number and the address matched;
- `streams.SUBJECT_SURVEY`: whether a survey link may be answered, or its answers stored (`AnswerSurvey`).

Every use of a personal link is in the audit trail (`access/audit.py`): `citizen.view` (the page read),
`citizen.message` (a message being sent through it), `citizen.denied` (an unknown, malformed, expired or revoked
link; with the file's number when the link was one of its), `citizen.resend` (a request to send it again, with
whether one went). The actor is "citizen", with the client's address and user agent intake passes; never the token.
If the entry cannot be written the page shows nothing (the audit trail's "failure closes"). Survey answers are not
audited per file: that would tie them to the person.

A request that is too large, malformed or fails gets the empty answer at once (never a timeout).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog
from faststream.nats import NatsBroker, NatsRouter

from services.registry.public import survey
from services.registry.public.answering import always_answering
from services.registry.access.audit import AuditTrail
from services.registry.public.citizen_access import (
    CitizenPolicy,
    citizen_file,
    earlier_working_links,
    link_of,
    link_usable,
)
from services.registry.commands import AnswerSurvey, ResendCitizenLink, SupersedeCitizenLinks
from services.registry.handlers import Registry
from services.registry.models import CitizenLink
from shared import streams
from shared.events import (
    CitizenAccessRequest,
    CitizenFile,
    CitizenLinkResendRequest,
    CitizenLinkResent,
    SurveyReply,
    SurveyRequest,
    SurveyState,
)

log = structlog.get_logger(__name__)

CITIZEN_ACTOR = "citizen"


class CitizenResponder:
    """The three answers, over the register (`Registry`: its store, its clock, its handlers) and the audit trail."""

    def __init__(self, registry: Registry, policy: CitizenPolicy, audit: AuditTrail) -> None:
        self.registry = registry
        self.policy = policy
        self.audit = audit

    async def _audit(self, action: str, request: CitizenAccessRequest | CitizenLinkResendRequest, *,
                     number: str | None, details: dict[str, Any] | None = None) -> None:
        await self.audit.append(action, actor=CITIZEN_ACTOR, number=number, ip=request.client_ip,
                                user_agent=request.user_agent, details=details)

    async def file(self, request: CitizenAccessRequest) -> CitizenFile:
        clock = self.registry.clock
        async with self.registry.store.reading() as tx:
            found = await link_of(tx, request.token)
            if found is None:
                shown, number, why = None, None, "unknown"
            else:
                link, complaint = found
                number = complaint.number
                if link_usable(link, complaint, self.policy, clock.today(), clock.zone):
                    shown, why = citizen_file(complaint, await tx.thread(complaint.id), self.policy, clock.zone), ""
                else:
                    shown, why = None, "revoked" if link.revoked_at is not None else "expired"
        if shown is None:
            await self._audit("citizen.denied", request, number=number, details={"reason": why})
            return CitizenFile()
        if await self._has_earlier_links(link):
            await self.registry.handle(SupersedeCitizenLinks(link.id))
        await self._audit("citizen.message" if request.writing else "citizen.view", request, number=number)
        return shown

    async def _has_earlier_links(self, link: CitizenLink) -> bool:
        """Read first, so that an ordinary view (no older link working) takes no write lock."""
        async with self.registry.store.reading() as tx:
            return (await tx.session.execute(earlier_working_links(link).limit(1))).first() is not None

    async def resend(self, request: CitizenLinkResendRequest) -> CitizenLinkResent:
        sent = await self.registry.handle(ResendCitizenLink(request.number, request.email))
        await self._audit("citizen.resend", request, number=request.number.strip()[:40] or None,
                          details={"sent": sent})
        return CitizenLinkResent()

    async def survey(self, request: SurveyRequest) -> SurveyReply:
        today: date = self.registry.clock.today()
        if request.answers is None or not survey.has_content(request.answers):
            return SurveyReply(state=await survey.state(self.registry.store, request.token, today))
        return SurveyReply(state=await self.registry.handle(AnswerSurvey(request.token, request.answers)))


def answer_citizen_requests(broker: NatsBroker, registry: Registry, audit: AuditTrail) -> CitizenResponder:
    """Declare the three subscribers on `broker` (no I/O: they start with the broker)."""
    responder = CitizenResponder(registry, registry.policy.citizen, audit)
    queue = streams.QUEUE_REGISTRY_CITIZEN
    files = NatsRouter(middlewares=(always_answering(CitizenAccessRequest.MAX_BYTES, CitizenFile, "citizen_file"),))
    resends = NatsRouter(middlewares=(always_answering(CitizenLinkResendRequest.MAX_BYTES, CitizenLinkResent, "citizen_resend"),))
    surveys = NatsRouter(middlewares=(always_answering(SurveyRequest.MAX_BYTES, lambda: SurveyReply(
        state=SurveyState.UNKNOWN), "survey"),))

    @files.subscriber(streams.SUBJECT_CITIZEN_FILE, queue=queue, title=f"{streams.SUBJECT_CITIZEN_FILE}:{queue}",
                      description="Core NATS request/reply (no stream): what a citizen's personal link shows.")
    async def citizen_file_request(request: CitizenAccessRequest) -> CitizenFile:
        """The file of a personal link as its citizen sees it, or `found` False."""
        return await responder.file(request)

    @resends.subscriber(streams.SUBJECT_CITIZEN_RESEND, queue=queue,
                        title=f"{streams.SUBJECT_CITIZEN_RESEND}:{queue}",
                        description="Core NATS request/reply (no stream): send a citizen's link again.")
    async def citizen_resend_request(request: CitizenLinkResendRequest) -> CitizenLinkResent:
        """A new personal link to the file's address when number and address match; the same answer always."""
        return await responder.resend(request)

    @surveys.subscriber(streams.SUBJECT_SURVEY, queue=queue, title=f"{streams.SUBJECT_SURVEY}:{queue}",
                        description="Core NATS request/reply (no stream): a satisfaction survey's state or answers.")
    async def survey_request(request: SurveyRequest) -> SurveyReply:
        """Whether the survey link may be answered, or its answers stored once."""
        return await responder.survey(request)

    for router in (files, resends, surveys):
        broker.include_router(router)
    return responder
