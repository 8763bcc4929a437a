"""The registry's answer to intake's confirmation page (issue 17): which number the web-form complaint with this
message key received — a core NATS request/reply (`streams.SUBJECT_CASE_LOOKUP`, queue group: one registry of several
answers), nothing stored, nothing published.

Only a number and a status leave: the key is the page's own submission (unguessable), and the citizen sees the same
number in the acknowledgment mail. A message that became a follow-up of an existing file answers `appended` without
that file's number (the form's sender is not proven to be its party); one held for staff answers nothing.
"""

from __future__ import annotations


import structlog
from faststream.nats import NatsBroker, NatsRouter
from sqlalchemy import select

from services.registry.models import Complaint
from services.registry.public.answering import always_answering
from services.registry.repository import RegistryStore
from shared import streams
from shared.events import CaseLookup, CaseLookupRequest

log = structlog.get_logger(__name__)


async def look_up(store: RegistryStore, message_key: str) -> CaseLookup:
    async with store.reading() as tx:
        place = await tx.find_message_key(message_key)
        if place is None:
            return CaseLookup()
        kind, ref = place
        if kind == "complaint":
            row = (await tx.session.execute(select(Complaint.number, Complaint.status).where(Complaint.id == ref))).one()
            return CaseLookup(number=row.number, status=row.status)
        return CaseLookup(appended=kind == "thread")


def answer_case_lookups(broker: NatsBroker, store: RegistryStore) -> None:
    """Declare the lookup's subscriber on `broker` (no I/O: it starts with the broker)."""
    router = NatsRouter(middlewares=(always_answering(CaseLookupRequest.MAX_BYTES, CaseLookup, "case_lookup"),))

    @router.subscriber(streams.SUBJECT_CASE_LOOKUP, queue=streams.QUEUE_REGISTRY_LOOKUP,
                       title=f"{streams.SUBJECT_CASE_LOOKUP}:{streams.QUEUE_REGISTRY_LOOKUP}",
                       description="Core NATS request/reply (no stream): the number a web-form complaint received.")
    async def case_lookup(request: CaseLookupRequest) -> CaseLookup:
        """The number and status of the file the message with this key registered, if it did."""
        return await look_up(store, request.message_key)

    broker.include_router(router)
