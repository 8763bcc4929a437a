"""The SMTP channel over real parts: a real NATS server, the real intake service, real smtplib conversations."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from shared import streams
from shared.events import MessageReceived
from tests.intake.support import COMPLAINTS, asend, citizen_mail, read_object, running_intake, stream_events


async def received_events(nats_url: str) -> list[MessageReceived]:
    return [MessageReceived.model_validate_json(data) for data in
            await stream_events(nats_url, streams.SUBJECT_MESSAGE_RECEIVED)]


async def test_mail_is_durable_in_jetstream_when_250_comes_back(nats_server, tmp_path):
    message = citizen_mail()
    async with running_intake(nats_server.url, tmp_path) as intake:
        refused = await asend(intake.smtp_port, message)
        assert refused == {}
        # No waiting: 250 means the event and the raw original are already in JetStream.
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
        assert await received_events(nats_server.url) == []


async def test_same_message_twice_gives_one_event(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path) as intake:
        await asend(intake.smtp_port, citizen_mail())
        await asend(intake.smtp_port, citizen_mail())  # an SMTP retry after a lost 250
        assert len(await received_events(nats_server.url)) == 1


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
        [event] = await received_events(nats_server.url)
    assert event.subject_line == "Réclamation: facture d'eau"
