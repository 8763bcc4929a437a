"""Issue 2's proof: an email goes in over real SMTP, a complaint is numbered, an acknowledgment comes out.

Real parts only: a NATS server from the wheel, the three services built by their own wiring functions, smtplib
talking to intake's SMTP server, the acknowledgment caught by a real SMTP server (the mail catcher).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import date, timedelta

import holidays
import httpx
import nats
import pytest

from shared import streams
from tests.clock import ReceiptWindow
from tests.e2e.stack import InProcessStack, StackConfig, complaint_mail, send_mail_async, start_catcher
from tests.registry.access.helpers import token_headers_for_database

# The supervisor of these checks handles no file: each read through the API states why (issue 13).
READ = {"reason": "end-to-end check"}

NUMBER = re.compile(r"MED-(\d{4})-(\d{5})")


def expected_answer_due(received: date) -> date:
    """Independent oracle: 45 calendar days, moved to the next working day (Belgian holidays) when it falls off one."""
    due = received + timedelta(days=45)
    belgian = holidays.country_holidays("BE", years=range(received.year, received.year + 2))
    while due.weekday() >= 5 or due in belgian:
        due += timedelta(days=1)
    return due


def date_forms(day: date) -> list[str]:
    french_months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                     "octobre", "novembre", "décembre"]
    return [day.strftime("%d/%m/%Y"), f"{day.day} {french_months[day.month - 1]} {day.year}", day.isoformat()]


@pytest.fixture
async def stack_config(nats_server, tmp_path, request):
    """Registry and notifier each on its own database: SQLite files, or two PostgreSQL databases."""
    catcher = await start_catcher(tmp_path / "outbox")
    if request.param == "postgres":
        factory = request.getfixturevalue("postgres_database_factory")
        registry_url, notifier_url = factory(), factory()
    else:
        registry_url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        notifier_url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var", registry_database_url=registry_url,
                         notifier_database_url=notifier_url, relay_port=catcher.port)
    yield config, catcher
    await catcher.stop()


@pytest.mark.parametrize("stack_config", ["sqlite", "postgres"], indirect=True)
async def test_email_is_registered_and_acknowledged(stack_config):
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    try:
        # Receipt is dated on the Brussels day (not UTC's): the mail is received between these two moments.
        window = ReceiptWindow()
        mail = complaint_mail("Jeanne Dupont <jeanne.dupont@example.org>", "Plainte : dossier bloqué",
                              "Bonjour,\nmon dossier d'allocations est bloqué depuis trois mois.\nJeanne Dupont",
                              message_id="<first-complaint@example.org>")
        await send_mail_async(config.smtp_port, mail)
        acknowledgment = await catcher.next_mail(timeout=15)
        window.close()
    finally:
        await stack.stop()

    assert acknowledgment["To"].addresses[0].addr_spec == "jeanne.dupont@example.org"
    body = acknowledgment.get_body(("plain",)).get_content()
    # One of the (at most two, across Brussels midnight) days the mail may have been received on explains both
    # the number's year and the answer's due date.
    assert any(f"MED-{received_on.year}-00001" in acknowledgment["Subject"]
               and f"MED-{received_on.year}-00001" in body
               and any(form in body for form in date_forms(expected_answer_due(received_on)))
               for received_on in window.days()), (window, acknowledgment["Subject"], body)
    assert acknowledgment["In-Reply-To"] == "<first-complaint@example.org>"
    assert acknowledgment["Auto-Submitted"] == "auto-replied"


def run_cli(config: StackConfig, *arguments: str) -> str:
    environment = {**os.environ, **config.environment()}
    return subprocess.run([sys.executable, "-m", "ombudsdesk", *arguments], env=environment, capture_output=True,
                          text=True, timeout=60, check=True).stdout


@pytest.mark.parametrize("stack_config", ["sqlite"], indirect=True)
async def test_register_cli_shows_the_whole_file_with_the_acknowledgment_in_its_thread(stack_config):
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    try:
        await send_mail_async(config.smtp_port, complaint_mail(
            "Piet Peeters <piet@example.be>", "Klacht over mijn dossier", "Goedendag, mijn dossier ligt stil."))
        acknowledgment = await catcher.next_mail(timeout=15)
        listing = await asyncio.to_thread(run_cli, config, "register", "list")
        [number] = {match.group(0) for match in NUMBER.finditer(listing)}
        # The registry records the acknowledgment when the notifier reports it sent: wait for that event's effect.
        for _ in range(100):
            shown = await asyncio.to_thread(run_cli, config, "register", "show", number)
            if acknowledgment["Message-ID"] in shown:
                break
            await asyncio.sleep(0.1)
    finally:
        await stack.stop()
    assert "piet@example.be" in shown
    assert "Klacht over mijn dossier" in shown
    assert acknowledgment["Message-ID"] in shown
    assert str(acknowledgment["Subject"]) in shown


async def redeliver_every_event(nats_url: str) -> dict[str, int]:
    """Publish again every event of the intake, registry and notifier streams, each under a new Nats-Msg-Id so that
    JetStream's duplicate window keeps it: to a consumer that is exactly a redelivery (the same payload and headers),
    the case of an acknowledgment lost on the way back or a crash after the work and before the ack."""
    connection = await nats.connect(nats_url)
    republished: dict[str, int] = {}
    try:
        js = connection.jetstream()
        for stream in (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER):
            state = (await js.stream_info(stream)).state  # read first: what is republished now is not read again
            for sequence in range(max(state.first_seq, 1), state.last_seq + 1) if state.messages else ():
                message = await js.get_msg(stream, sequence)
                headers = {**(message.headers or {}), "Nats-Msg-Id": f"redelivery-{stream}-{sequence}"}
                ack = await js.publish(message.subject, message.data, headers=headers)
                assert not ack.duplicate, message.subject
                republished[message.subject] = republished.get(message.subject, 0) + 1
    finally:
        await connection.close()
    return republished


async def consumers_delivered(nats_url: str) -> dict[str, tuple[int, int]]:
    """Per durable consumer of the three event streams: (messages delivered to it so far, messages not yet done)."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        found = {}
        for stream in (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER):
            for info in await js.consumers_info(stream):
                found[info.name] = (info.delivered.consumer_seq, info.num_pending + info.num_ack_pending)
        return found
    finally:
        await connection.close()


async def settled_consumers(nats_url: str, timeout: float = 30.0) -> dict[str, tuple[int, int]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await consumers_delivered(nats_url)
        if all(open_ == 0 for _, open_ in found.values()):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"consumers never settled: {found}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("stack_config", ["sqlite"], indirect=True)
async def test_redelivered_events_never_number_or_acknowledge_twice(stack_config):
    """The same mail sent twice (an SMTP retry) and every event redelivered: still one complaint, one mail."""
    config, catcher = stack_config
    stack = InProcessStack(config)
    await stack.start()
    # The staff API needs an identity (issue 13): a personal token of a supervisor, made in the registry's database.
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.api_port}", timeout=10,
                            headers=await token_headers_for_database(config.registry_database_url))
    try:
        mail = complaint_mail("Anna Schmidt <anna@example.de>", "Beschwerde", "Guten Tag, ich beschwere mich.",
                              message_id="<retry-me@example.de>")
        await send_mail_async(config.smtp_port, mail)
        await send_mail_async(config.smtp_port, mail)  # intake's own duplicate check stops this one
        first = await catcher.next_mail(timeout=15)
        # The registry records the acknowledgment once the notifier reports it sent (NotificationSent): wait for that,
        # then for every consumer to be done, so that every event has had its first delivery.
        for _ in range(150):
            complaints = (await api.get("/complaints")).json()
            if complaints and "out" in [message["direction"] for message in
                                        (await api.get(f"/complaints/{complaints[0]['number']}", params=READ)).json()["thread"]]:
                break
            await asyncio.sleep(0.1)
        before = await settled_consumers(config.nats_url)

        # Now the registry and the notifier are handed every event again, as JetStream would after a lost ack.
        republished = await redeliver_every_event(config.nats_url)
        after = await settled_consumers(config.nats_url)
        with pytest.raises(asyncio.TimeoutError):
            await catcher.next_mail(timeout=3)
        complaints = (await api.get("/complaints")).json()
        [number] = [complaint["number"] for complaint in complaints]
        complaint_file = (await api.get(f"/complaints/{number}", params=READ)).json()
        notices = await stack.notifier.outbox.notices()
    finally:
        await api.aclose()
        await stack.stop()
    assert "-00001" in first["Subject"]
    # The redelivery really reached both services: the citizen's message and the registration at least.
    assert republished[streams.SUBJECT_MESSAGE_RECEIVED] == 1 and republished[streams.SUBJECT_COMPLAINT_REGISTERED] == 1
    assert republished[streams.SUBJECT_NOTIFICATION_SENT] == 1
    for consumer in (streams.CONSUMER_REGISTRY_INTAKE, streams.CONSUMER_NOTIFIER_REGISTRY):
        assert after[consumer][0] > before[consumer][0], (consumer, before, after)
    # One number, one acknowledgment: one message in and one notice out in the file, one notice in the outbox.
    assert number in first["Subject"]
    assert [message["direction"] for message in complaint_file["thread"]] == ["in", "out"]
    assert [change["change"] for change in complaint_file["changes"]].count("registered") == 1
    assert len(notices) == 1
