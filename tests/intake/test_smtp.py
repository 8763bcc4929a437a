"""The SMTP channel over real parts: a real NATS server, the real intake service, real smtplib conversations."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from shared import streams
from shared.events import MessageReceived
from tests.intake.support import COMPLAINTS, asend, citizen_mail, read_object, running_intake, settled, stream_events


async def received_events(nats_url: str) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(data) for data in
            await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]


async def test_mail_is_durable_in_jetstream_when_250_comes_back(nats_server, tmp_path):
    message = citizen_mail()
    async with running_intake(nats_server.url, tmp_path) as intake:
        refused = await asend(intake.smtp_port, message)
        assert refused == {}
        # 250 means the raw original and its envelope are durable in the spool; the event follows at once.
        await settled(intake)
        [event] = await received_events(nats_server.url)
        raw = await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, event.raw_object)
    assert event.sender.email == "jeanne.dupont@example.org"
    assert event.sender.name == "Jeanne Dupont"
    assert event.subject_line == "Réclamation: facture d'eau"
    assert "conteste la facture" in event.text
    assert event.recipients == (COMPLAINTS,)
    assert event.message_id == "20261124.0001@example.org"
    assert event.language == "fr"
    assert event.automated is False
    assert event.source == "smtp"
    assert b"Subject:" in raw and b"conteste la facture" in raw


async def test_unknown_recipient_gets_550_and_nothing_is_published(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await asend(intake.smtp_port, citizen_mail(), recipients=["personne@ombudsdesk.localhost"])
        assert refused.value.recipients["personne@ombudsdesk.localhost"][0] == 550
        await settled(intake)
        assert await received_events(nats_server.url) == []


async def test_same_message_twice_gives_one_event(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        await asend(intake.smtp_port, citizen_mail())
        await asend(intake.smtp_port, citizen_mail())  # an SMTP retry after a lost 250: the spool knows the bytes
        # The same mail relayed by another MX (one more trace header): other bytes, the same message.
        relayed = b"Received: from mx2.example.org by mx.example.org; Tue, 24 Nov 2026 09:20:00 +0100\r\n"
        await asend(intake.smtp_port, relayed + citizen_mail().as_bytes())
        await settled(intake)
        assert len(await received_events(nats_server.url)) == 1
    assert intake.spool.counters == {"spooled": 2, "duplicate": 1}
    assert intake.pipeline.counters == {"processed": 1, "duplicate": 1, "quarantined": 0}


async def test_451_while_nats_is_down_then_250_and_nothing_lost(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        nats_server.stop()
        with pytest.raises(smtplib.SMTPDataError) as failure:
            await asend(intake.smtp_port, citizen_mail())
        assert failure.value.smtp_code == 451
        nats_server.start()  # same port, same storage directory
        # The sending MTA retries; the broker reconnects by itself.
        for _ in range(100):
            try:
                await asend(intake.smtp_port, citizen_mail())
                break
            except smtplib.SMTPDataError as error:
                assert error.smtp_code == 451
                await asyncio.sleep(0.1)
        await settled(intake)
        [event] = await received_events(nats_server.url)
    assert event.subject_line == "Réclamation: facture d'eau"


async def test_same_mail_by_smtp_and_then_imap_copy_gives_one_event(nats_server, tmp_path):
    """The IMAP copy of a mail carries the server's trace headers and LF line endings: still the same message."""
    from datetime import datetime, timezone

    from services.intake.pipeline import AcceptStatus

    message = citizen_mail()
    async with running_intake(nats_server.url, tmp_path) as intake:
        await asend(intake.smtp_port, message)
        await settled(intake)
        imap_copy = (b"Return-Path: <jeanne.dupont@example.org>\nDelivered-To: plaintes@ombudsdesk.localhost\n"
                     b"Received: from mx.example.org by imap.example.org; Tue, 24 Nov 2026 09:16:00 +0100\n"
                     + message.as_bytes().replace(b"\r\n", b"\n"))
        outcome = await intake.pipeline.accept(imap_copy, received_at=datetime.now(timezone.utc), envelope_sender=None,
                                               envelope_recipients=(COMPLAINTS,), source="imap:INBOX")
    assert outcome.status is AcceptStatus.DUPLICATE
    assert len(await received_events(nats_server.url)) == 1


async def test_ready_answers_503_while_nats_is_down(nats_server, tmp_path):
    import json
    import urllib.error
    import urllib.request

    from ombudsdesk.embedded_nats import free_port

    port = free_port()

    def probe() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    async with running_intake(nats_server.url, tmp_path, intake_health_port=port) as intake:
        assert (await asyncio.to_thread(probe))[0] == 200
        nats_server.stop()
        for _ in range(50):  # the client notices the lost connection within moments
            if not intake.broker.connection.is_connected:
                break
            await asyncio.sleep(0.1)
        status, report = await asyncio.to_thread(probe)
        nats_server.start()
    assert status == 503
    assert report["nats_connected"] is False


async def test_the_smtp_session_is_recorded_with_the_message_and_in_its_raw_original(nats_server, tmp_path):
    """Peer address and HELO travel with the event (spool → worker → event); the raw original starts with our
    Received line (RFC 5321 4.4), whose HELO cannot add a header."""
    async with running_intake(nats_server.url, tmp_path) as intake:
        def send_with_helo() -> None:
            with smtplib.SMTP("127.0.0.1", intake.smtp_port, timeout=30, local_hostname="client.example\tBcc:x") as c:
                c.send_message(citizen_mail())
        await asyncio.to_thread(send_with_helo)
        await settled(intake)
        [event] = await received_events(nats_server.url)
        raw = await read_object(nats_server.url, streams.BUCKET_RAW_MESSAGES, event.raw_object)
    assert event.provenance.peer_ip == "127.0.0.1"
    assert event.provenance.peer_helo == "client.exampleBcc:x"
    assert event.provenance.authenticated_as is None
    trace = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0]
    assert trace.startswith(b"Received: from client.exampleBcc:x ([127.0.0.1])\r\n\tby ombudsdesk.localhost")
    assert b"with ESMTP id" in trace and trace.count(b"\r\n") == 2  # one field over three lines, nothing more


@pytest.mark.parametrize("relay_clients, suppressed", [([], [None, None, "rate limit: sending client"]),
                                                        (["127.0.0.1"], [None, None, None])])
async def test_acknowledgments_are_limited_per_sending_client_unless_it_is_a_relay(
        nats_server, tmp_path, relay_clients, suppressed):
    """A client over its hourly share is still taken in, registered, but not acknowledged automatically; the MX
    (a relay for everybody) is not counted."""
    async with running_intake(nats_server.url, tmp_path, ack_rate_per_client_per_hour=2,
                              smtp_relay_clients=relay_clients) as intake:
        for index in range(3):
            await asend(intake.smtp_port, citizen_mail(message_id=f"<rate-{index}@example.org>",
                                                       sender=f"Person {index} <p{index}@example.org>"))
            await settled(intake)
        events = await received_events(nats_server.url)
    by_id = {event.message_id: event for event in events}
    assert [by_id[f"rate-{index}@example.org"].acknowledgment_suppressed for index in range(3)] == suppressed
    assert all(event.automated is False for event in events)
    # Only a relay's Authentication-Results count (docs/security.md): the flag travels with every event.
    assert {event.provenance.delivered_by_relay for event in events} == {bool(relay_clients)}


def test_a_dual_stack_client_is_seen_as_ipv4_and_an_ipv6_client_by_its_64():
    from services.intake.channels.smtp_server import client_address

    assert str(client_address("::ffff:192.0.2.10")) == "192.0.2.10"
    assert str(client_address("2001:db8::1")) == "2001:db8::1"
    assert client_address("not an address") is None and client_address(None) is None
