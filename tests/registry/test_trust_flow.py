"""Trust at the door across the registry and the notifier (issue 10), both running over real NATS, each on its own
database (SQLite and PostgreSQL), with a real SMTP server: what the citizen's mailbox, the file, the holding pen and
the outbox show for a forward nobody proved, a message asking for no automatic reply, a failed follow-up, a
read receipt of our acknowledgment and one from another address than the acknowledgment's recipient."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone

import pytest

from services.notifier.wiring import NotifierService, build_notifier
from services.registry.commands import RegisterHeld
from services.registry.repository import ComplaintFilter
from services.registry.wiring import RegistryService, build_registry
from shared import streams
from shared.events import MessageReceived, Party, SenderVerdict
from tests.clock import brussels_today
from tests.notifier.conftest import notifier_settings
from tests.notifier.support import SmtpSink, consumer_settled, eventually, wait_until
from tests.registry.conftest import publish, received, registry_settings

PAUL = "paul.durand@example.org"
JEANNE = "jeanne.dupont@example.org"


@pytest.fixture
def notifier_database_url(request: pytest.FixtureRequest, database_url: str, tmp_path) -> str:
    """The notifier's own database, of the same kind as the registry's."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    return request.getfixturevalue("postgres_database_factory")()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    smtp = SmtpSink().start()
    yield smtp
    smtp.stop()


@pytest.fixture
async def stack(tmp_path, nats_server, database_url, notifier_database_url, sink
                ) -> AsyncIterator[tuple[RegistryService, NotifierService]]:
    registry = build_registry(registry_settings(tmp_path, nats_server.url, database_url))
    notifier = build_notifier(notifier_settings(nats_server.url, notifier_database_url, sink, tmp_path))
    await registry.start()
    await notifier.start()
    try:
        yield registry, notifier
    finally:
        await notifier.stop()
        await registry.stop()


def _now_received(**fields: object) -> MessageReceived:
    return received(at=datetime.now(timezone.utc), **fields)


def _mails_to(sink: SmtpSink, address: str) -> list:
    return [m for m in sink.messages if m["To"].addresses[0].addr_spec == address]


async def _registry_idle(nats_url: str) -> bool:
    return await consumer_settled(nats_url, streams.STREAM_INTAKE, streams.CONSUMER_REGISTRY_INTAKE)


async def test_nobody_is_written_to_before_staff_decide_and_a_receipt_joins_the_file(stack, js, nats_server, sink):
    registry, notifier = stack
    # Messages received now are numbered in the year of their Brussels receipt day (not a year written here).
    first, second = (f"MED-{brussels_today().year}-{sequence:05d}" for sequence in (1, 2))
    # 1. A forward from a staff domain nobody proved: held, nobody named in it hears anything.
    await publish(js, _now_received(name="Paul Durand", email=PAUL, subject="Plainte transmise",
                                    forwarded_by=Party(name="Agent", email="agent@guichet.example.be"),
                                    needs_confirmation="staff_forward_not_verified"))
    # 2. A person who asked for no automatic reply (X-Auto-Response-Suppress): registered, not acknowledged.
    await publish(js, _now_received(name="Jeanne Dupont", email=JEANNE, subject="Sans réponse automatique",
                                    message_id="<jeanne-1@example.org>",
                                    acknowledgment_suppressed="x_auto_response_suppress"))

    async def both_handled() -> bool:
        return (await _registry_idle(nats_server.url) and len(await registry.store.held_messages()) == 1
                and await notifier.outbox.by_key(f"acknowledgment:{first}") is not None)

    await eventually(both_handled, what="the forward held and Jeanne's complaint's notice recorded")
    [held] = await registry.store.held_messages()
    assert held.reason == "staff_forward_not_verified"
    withheld = await notifier.outbox.by_key(f"acknowledgment:{first}")
    assert (withheld.status, withheld.status_reason) == ("suppressed",
                                                         "acknowledgment_suppressed: x_auto_response_suppress")
    jeanne_file = await registry.store.complaint(first)
    assert jeanne_file.acknowledgment_suppressed == "x_auto_response_suppress"

    # 3. A follow-up by Jeanne's address that the MX found forged (DMARC fail): held, not in her file, no receipt.
    await publish(js, _now_received(email=JEANNE, subject=f"Re: [{first}]", in_reply_to="<jeanne-1@example.org>",
                                    candidate_case_numbers=(first,),
                                    sender_verdict=SenderVerdict.FAILED, sender_evidence="mx: dmarc=fail"))
    await eventually(lambda: _held_count(registry, 2), what="the forged follow-up held")

    # Staff confirm the forward: now, and only now, Paul gets his acknowledgment.
    outcome = await registry.registry.handle(RegisterHeld(held.id, "chef@med.be"))
    assert outcome.number == second
    await wait_until(lambda: len(_mails_to(sink, PAUL)) == 1, what="Paul's acknowledgment after staff decided")
    [acknowledgment] = _mails_to(sink, PAUL)
    assert f"[{second}]" in acknowledgment["Subject"]

    # 4. Paul's mail client sends a read receipt of that acknowledgment: an event in his file, nothing else.
    async def acknowledgment_in_thread() -> bool:
        found = await registry.store.complaint_file(second)
        return any(m.direction == "out" for m in found[1])

    await eventually(acknowledgment_in_thread, what="the acknowledgment recorded in Paul's thread")
    await publish(js, _now_received(email=PAUL, subject=f"Lu : {acknowledgment['Subject']}", automated=True,
                                    automated_reason="disposition-notification",
                                    disposition_of=acknowledgment["Message-ID"]))

    async def receipt_filed() -> bool:
        return any(m.disposition_of for m in (await registry.store.complaint_file(second))[1])

    await eventually(receipt_filed, what="the read receipt in Paul's file")
    complaint, thread, changes, _parties = await registry.store.complaint_file(second)
    assert [(m.direction, bool(m.disposition_of)) for m in thread] == [("in", False), ("out", False), ("in", True)]
    assert changes[-1].change == "read_receipt" and complaint.status == "acknowledged"
    assert (thread[-1].subject_line, thread[-1].body) == ("", "")  # the receipt's own words are not kept

    # 5. Paul forwarded the acknowledgment to Jeanne; her mail client's "receipt" names it: held, Paul's file as is.
    await publish(js, _now_received(email=JEANNE, subject=f"Lu : {acknowledgment['Subject']}", automated=True,
                                    automated_reason="read receipt (RFC 8098): displayed",
                                    disposition_of=acknowledgment["Message-ID"]))
    await eventually(lambda: _held_count(registry, 3), what="the receipt from another address held")
    assert "receipt_sender_not_recipient" in [h.reason for h in await registry.store.held_messages()]
    assert len((await registry.store.complaint_file(second))[1]) == 3
    assert complaint.forwarded_by_email == "agent@guichet.example.be" and complaint.forward_verified is False
    _jeanne, jeanne_thread, _c, _p = await registry.store.complaint_file(first)
    assert len(jeanne_thread) == 1  # the forged follow-up never entered her file

    await eventually(lambda: _registry_idle(nats_server.url), what="the registry idle")
    await eventually(lambda: consumer_settled(nats_server.url, streams.STREAM_REGISTRY,
                                              streams.CONSUMER_NOTIFIER_NOTICES), what="notices handled")
    assert len(await registry.store.list_complaints(ComplaintFilter())) == 2  # the receipt registered nothing
    assert _mails_to(sink, JEANNE) == [] and len(_mails_to(sink, PAUL)) == 1
    assert "automated_unmatched" not in [h.reason for h in await registry.store.held_messages()]


async def _held_count(registry: RegistryService, count: int) -> bool:
    return len(await registry.store.held_messages(None)) >= count
