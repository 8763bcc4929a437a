"""Issue 15's proof for requests for information, over real NATS and SMTP: the three services built by their own
wiring, complaints sent to intake's SMTP server, notices caught by a real SMTP server (the mail catcher).

- A complaint in Dutch; staff ask for what is missing: the request arrives in Dutch, the answer deadline is paused;
  the citizen replies by mail six days later (by the registry's clock), the clock resumes and the answer deadline
  has moved by exactly those six days.
- A complaint in French whose citizen never answers: the reminder after the configured days, then the closing for
  lack of answer after the reply date, each once, in French.

The registry's clock is the real time plus a number of days the test moves forward (the service is built by
`build_registry` with that clock), so intake, NATS and the notifier work in real time while the register lives the
weeks a request lasts.
"""

from __future__ import annotations

import asyncio
import email.message
import functools
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import holidays
import pytest

from services.registry import wiring
from services.registry.commands import RequestInformation
from services.registry.handlers import Registry
from tests.clock import BRUSSELS
from tests.e2e.stack import InProcessStack, StackConfig, complaint_mail, send_mail_async, start_catcher

pytestmark = pytest.mark.slow

NUMBER = re.compile(r"MED-\d{4}-\d{5}")
AGENT = "agent@med.example"
WAIT = 30.0


class ShiftedClock:
    """Now, plus `days` the test moves forward."""

    def __init__(self) -> None:
        self.days = 0

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(days=self.days)

    def today(self) -> date:
        return self().astimezone(BRUSSELS).date()


def expected_answer_due(legal_start: date, paused_days: int) -> date:
    """Independent oracle: 45 calendar days plus the days paused, moved to the next Belgian working day."""
    due = legal_start + timedelta(days=45 + paused_days)
    belgian = holidays.country_holidays("BE", years=range(due.year - 1, due.year + 2))
    while due.weekday() >= 5 or due in belgian:
        due += timedelta(days=1)
    return due


def body_of(mail: email.message.EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


async def mail_where(catcher, accept: Callable[[email.message.EmailMessage], bool],
                     timeout: float = WAIT) -> email.message.EmailMessage:
    """The next caught mail `accept` takes (other notices, such as receipts of follow-ups, are passed over)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError("no such mail")
        mail = await catcher.next_mail(timeout=remaining)
        if accept(mail):
            return mail


async def until(condition: Callable[[], object], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture
async def stack(nats_server, tmp_path, monkeypatch):
    catcher = await start_catcher(tmp_path / "outbox")
    clock = ShiftedClock()
    # The registry as `build_registry` makes it, with the test's clock.
    monkeypatch.setattr(wiring, "Registry", functools.partial(Registry, clock=clock))
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=catcher.port)
    services = InProcessStack(config)
    await services.start()
    try:
        yield services, config, catcher, clock
    finally:
        await services.stop()
        await catcher.stop()


async def _acknowledged_complaint(services, config, catcher, sender: str, subject: str, text: str) -> str:
    await send_mail_async(config.smtp_port, complaint_mail(sender, subject, text))
    acknowledgment = await mail_where(catcher, lambda m: NUMBER.search(m["Subject"] or "") is not None)
    number = NUMBER.search(acknowledgment["Subject"]).group(0)
    store = services.registry.store

    async def acknowledged() -> bool:
        return (await store.complaint(number)).status == "acknowledged"

    await until(acknowledged)
    return number


async def test_a_request_pauses_the_clock_and_the_citizens_mail_resumes_it(stack):
    services, config, catcher, clock = stack
    registry, store = services.registry.registry, services.registry.store
    number = await _acknowledged_complaint(
        services, config, catcher, "Jan Peeters <jan.peeters@example.be>", "Klacht over mijn kinderbijslag",
        "Geachte mevrouw, geachte heer,\n\nmijn kinderbijslag wordt al drie maanden niet meer betaald en niemand "
        "kan mij uitleggen waarom. Ik vind dit onaanvaardbaar en vraag u om dit dossier te onderzoeken.\n\n"
        "Met vriendelijke groeten,\nJan Peeters")
    registered = await store.complaint(number)
    assert registered.complainant_language == "nl"
    assert registered.answer_due == expected_answer_due(registered.legal_start, 0)

    await registry.handle(RequestInformation(number, ("first_line_contact", "postal_address"), "", AGENT))
    request = await mail_where(catcher, lambda m: "Informatie nodig" in (m["Subject"] or ""))
    assert request["To"].addresses[0].addr_spec == "jan.peeters@example.be"
    assert request["Subject"].startswith(f"[{number}] ")
    text = body_of(request)
    assert "Hebt u de betrokken dienst al gecontacteerd" in text and "Uw volledige postadres" in text
    paused = await store.complaint(number)
    asked_on = clock.today()
    assert (paused.status, paused.paused_since) == ("waiting_for_citizen", asked_on)
    reply_by = asked_on + timedelta(days=30)
    while reply_by.weekday() >= 5 or reply_by in holidays.country_holidays("BE", years=reply_by.year):
        reply_by += timedelta(days=1)
    assert f"{reply_by.day} " in text  # the reply date, in words ("4 januari 2027")

    async def threaded() -> bool:  # the notifier reported the request sent: its Message-ID is in the file's thread
        _complaint, thread, _changes, _parties = await store.complaint_file(number)
        return any(m.notice_kind == "information_request" and m.message_id for m in thread)

    await until(threaded)
    clock.days += 6  # the citizen answers six days later
    reply = complaint_mail("Jan Peeters <jan.peeters@example.be>", f"Re: {request['Subject']}",
                           "Ja, ik heb de dienst op 3 oktober gebeld, zonder antwoord.\n"
                           "Mijn adres: Kerkstraat 12, 2000 Antwerpen.", message_id="<antwoord-1@example.be>")
    reply["In-Reply-To"] = request["Message-ID"]
    reply["References"] = request["Message-ID"]
    await send_mail_async(config.smtp_port, reply)

    async def resumed() -> bool:
        return (await store.complaint(number)).status == "in_review"

    await until(resumed)
    complaint, thread, changes, _parties = await store.complaint_file(number)
    assert complaint.paused_days == 6 and complaint.paused_since is None
    assert complaint.answer_due == expected_answer_due(complaint.legal_start, 6)
    [answered] = [c for c in changes if c.change == "information_answered"]
    assert answered.details["paused_days"] == 6
    assert answered.details["answer_due"] == {"from": registered.answer_due.isoformat(),
                                              "to": complaint.answer_due.isoformat()}
    assert any(m.direction == "in" and "Kerkstraat 12" in m.body for m in thread)


async def test_no_answer_brings_one_reminder_then_one_closing(stack):
    services, config, catcher, clock = stack
    registry, store, watcher = services.registry.registry, services.registry.store, services.registry.watcher
    number = await _acknowledged_complaint(
        services, config, catcher, "Marie Dubois <marie.dubois@example.fr>", "Plainte : allocations familiales",
        "Madame, Monsieur,\n\nmes allocations familiales ne sont plus versées depuis trois mois et personne ne peut "
        "m'expliquer pourquoi. Je trouve cela inadmissible et je vous demande d'examiner mon dossier.\n\n"
        "Marie Dubois")
    await registry.handle(RequestInformation(number, ("facts_date",), "Merci de préciser la date.", AGENT))
    await mail_where(catcher, lambda m: (m["Subject"] or "").endswith("Informations nécessaires pour examiner "
                                                                      "votre réclamation"))
    clock.days += 13
    assert await watcher.check() == 0
    clock.days += 1  # the 14th day: the reminder
    assert await watcher.check() == 1
    assert await watcher.check() == 0
    reminder = await mail_where(catcher, lambda m: "Rappel" in (m["Subject"] or ""))
    assert reminder["To"].addresses[0].addr_spec == "marie.dubois@example.fr"
    assert "Merci de préciser la date." in body_of(reminder) and "Nous n'avons pas encore reçu" in body_of(reminder)

    clock.days += 20  # past the reply date (30 days, moved to a working day at most four days later)
    assert await watcher.check() == 1
    assert await watcher.check() == 0
    closing = await mail_where(catcher, lambda m: "Clôture" in (m["Subject"] or ""))
    assert closing["Subject"].startswith(f"[{number}] ")
    assert "nous avons clôturé votre dossier" in body_of(closing)
    complaint = await store.complaint(number)
    assert (complaint.status, complaint.outcome) == ("closed", "no_assessment")
    # Nothing else went out for this file: one request, one reminder, one closing.
    with pytest.raises(TimeoutError):
        await mail_where(catcher, lambda m: number in (m["Subject"] or ""), timeout=3)
