"""Issue 15's proof for the administration concerned, over real NATS and real SMTP: a request for its position goes
out by mail with the case number in its subject, the administration's reply (In-Reply-To our Message-ID) comes in
through intake's SMTP server and is threaded into the file as its answer, the citizen receives nothing about it,
the request's reminder goes to the administration and the "no answer" warning reaches the handler once.

The watcher's sweep is driven with explicit dates (`SweepPositionRequests(today)`): the deadline is weeks away, and
the dates are the register's days in Brussels (`tests.clock`), not the machine's.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.registry.commands import Assign, RequestPosition, SaveAdministration, SweepPositionRequests
from services.registry.models import Complaint, PositionRequest, ThreadMessage
from tests.clock import ReceiptWindow
from tests.e2e.stack import COMPLAINT_ADDRESS, InProcessStack, complaint_mail, send_mail_async
from tests.e2e.test_end_to_end import stack_config  # noqa: F401 - the fixture (registry and notifier databases)

pytestmark = pytest.mark.slow

CITIZEN = "jeanne.dupont@example.org"
ADMINISTRATION = "plaintes@finances.example.be"
OTHER_ADMINISTRATION = "courrier@onem.example.be"
HANDLER = "agent@med.example.be"
NUMBER = re.compile(r"MED-\d{4}-\d{5}")


async def _mails(catcher, *, until, timeout: float = 20.0) -> list:
    """Mails caught until `until(mails)` holds (or the timeout: the caller's assertion then says what is missing)."""
    mails: list = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not until(mails):
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        try:
            mails.append(await catcher.next_mail(timeout=remaining))
        except (TimeoutError, asyncio.TimeoutError):
            break
    return mails


def _to(mail) -> str:
    return mail["To"].addresses[0].addr_spec


async def _until(predicate, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = await predicate()
        if found:
            return found
        await asyncio.sleep(0.1)
    return await predicate()


@pytest.mark.parametrize("stack_config", ["sqlite"], indirect=True)
async def test_a_position_request_its_threaded_answer_its_reminder_and_its_warning(stack_config):
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    registry = stack.registry.registry
    store = stack.registry.store

    async def rows(query):
        async with store.transaction() as tx:
            return list((await tx.session.execute(query)).scalars())

    try:
        window = ReceiptWindow()
        await send_mail_async(config.smtp_port, complaint_mail(
            f"Jeanne Dupont <{CITIZEN}>", "Plainte : remboursement d'impôt bloqué",
            "Bonjour,\nmon remboursement est bloqué depuis six mois.\nJeanne Dupont",
            message_id="<citizen-first@example.org>"))
        [acknowledgment] = await _mails(catcher, until=lambda m: len(m) >= 1)
        window.close()
        [number] = NUMBER.findall(acknowledgment["Subject"])
        await registry.handle(Assign(number, HANDLER, "supervisor@med.example.be"))

        finance = await registry.handle(SaveAdministration(
            "fps-finance", "SPF Finances", "admin@med.example.be", emails=(ADMINISTRATION,), language="nl",
            contact_person="Mevrouw Peeters", answer_days=30))
        onem = await registry.handle(SaveAdministration(
            "onem", "ONEM", "admin@med.example.be", emails=(OTHER_ADMINISTRATION,), language="fr", answer_days=10))
        request = await registry.handle(RequestPosition(
            number, finance, "1. Pourquoi le remboursement est-il bloqué ?\n2. Quand sera-t-il versé ?", HANDLER,
            reminder_days=7))
        assert request.requested_on in window.days()
        assert request.due == request.requested_on + timedelta(days=30)

        # The request, in Dutch, to the administration, the number in its subject.
        [sent] = await _mails(catcher, until=lambda m: len(m) >= 1)
        assert _to(sent) == ADMINISTRATION
        assert number in sent["Subject"] and "standpunt" in sent["Subject"].lower()
        body = sent.get_body(("plain",)).get_content()
        assert "Pourquoi le remboursement est-il bloqué ?" in body
        assert "citizen-first@example.org" not in str(sent.get("References", ""))

        # The registry files our Message-ID once the notifier reports the mail sent: the reply then threads by it.
        request_id = sent["Message-ID"]
        assert await _until(lambda: rows(select(ThreadMessage).where(
            ThreadMessage.message_id == request_id.strip("<>"))))

        # The administration answers through intake's SMTP server, In-Reply-To our request.
        reply = complaint_mail(f"SPF Finances <{ADMINISTRATION}>", "Re: antwoord", "Het dossier is vrijgegeven.",
                               message_id="<answer@finances.example.be>")
        reply["In-Reply-To"] = request_id
        await send_mail_async(config.smtp_port, reply)
        answered = await _until(lambda: rows(select(PositionRequest).where(
            PositionRequest.id == request.id, PositionRequest.answered_at.is_not(None))))
        assert answered, "the administration's reply was not recorded as its answer"
        [entry] = await rows(select(ThreadMessage).where(ThreadMessage.message_id == "answer@finances.example.be"))
        [complaint] = await rows(select(Complaint).where(Complaint.number == number))
        assert (entry.complaint_id, entry.party, entry.citizen_visible) == (complaint.id, "administration", False)

        # A second request, to another administration, is never answered.
        unanswered = await registry.handle(RequestPosition(number, onem, "Votre position ?", HANDLER,
                                                           reminder_days=3))
        [to_onem] = await _mails(catcher, until=lambda m: len(m) >= 1)
        assert _to(to_onem) == OTHER_ADMINISTRATION and number in to_onem["Subject"]
        assert await _until(lambda: rows(select(ThreadMessage).where(
            ThreadMessage.message_id == to_onem["Message-ID"].strip("<>"))))  # weeks before the reminder, in life

        # Its reminder before the deadline goes to that administration, and the handler hears it approaches.
        assert await registry.handle(SweepPositionRequests(unanswered.remind_on)) == 1
        reminders = await _mails(catcher, until=lambda m: len(m) >= 2)
        assert sorted(_to(m) for m in reminders) == sorted([OTHER_ADMINISTRATION, HANDLER])
        [reminder] = [m for m in reminders if _to(m) == OTHER_ADMINISTRATION]
        assert number in reminder["Subject"] and "rappel" in reminder["Subject"].lower()
        assert reminder["In-Reply-To"] == to_onem["Message-ID"]

        # The deadline passes without an answer: the handler is warned, once, however often the watcher looks.
        after = unanswered.due + timedelta(days=1)
        assert await registry.handle(SweepPositionRequests(after)) == 1
        assert await registry.handle(SweepPositionRequests(after)) == 0
        assert await registry.handle(SweepPositionRequests(after + timedelta(days=5))) == 0
        warnings = await _mails(catcher, until=lambda m: len(m) >= 2, timeout=8)
        assert [_to(m) for m in warnings] == [HANDLER]
        assert number in warnings[0]["Subject"]
        text = warnings[0].get_body(("plain",)).get_content()
        assert "ONEM" in text and "position" in text

        # Nothing ever went to the citizen but the acknowledgment.
        assert not await _mails(catcher, until=lambda m: False, timeout=2)
    finally:
        await stack.stop()
    assert COMPLAINT_ADDRESS not in {_to(m) for m in (sent, to_onem)}
