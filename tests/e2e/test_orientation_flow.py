"""Orientation over real parts (issue 17): intake's public pages ask the registry's responder over NATS, which reads
the shipped screening configuration (the directory of ombudsmen and the keyword rules). A description for the
pensions ombudsman is oriented there, with its contact, and a transmission the citizen consents to reaches the
register in the complaint's text; a description for us leads to the form filled in; the responder answers a hostile
request at once; and nobody answering is a quick None for the page, not a hang."""

from __future__ import annotations

import html
import re
import time

import httpx
import nats
import pytest

from services.intake.web.channel import NatsRequester
from shared import streams
from shared.events import Orientation, OrientationOutcome, OrientationRequest
from tests.e2e.stack import running_stack

pytestmark = pytest.mark.slow

NUMBER = re.compile(r"MED-\d{4}-\d{5}")


@pytest.fixture
async def stack(nats_server, tmp_path):
    async with running_stack(nats_server.url, tmp_path, public_web=True) as running:
        yield running.services, running.catcher, running.public_url, running.config


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value)
            for name, value in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page)}


async def test_a_citizen_is_oriented_to_another_ombudsman_or_to_our_form(stack):
    services, catcher, base, _ = stack
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        home = await browser.get("/", follow_redirects=True)
        assert home.url.path == "/orientation" and "Qui peut vous aider ?" in home.text
        assert '<option value="taxation">Fiscalité</option>' in home.text  # the registry's themes

        other = await browser.post("/orientation?lang=en", data={
            "lang": "en", "theme": "", "description": "My retirement pension from the Federal Pension Service "
                                                      "has not been paid"})
        assert other.status_code == 200 and "Another ombudsman is competent" in other.text
        assert "Pensions Ombudsman" in other.text and 'href="https://www.mediateurpensions.be"' in other.text
        assert "Continue to the complaint form" not in other.text
        carried = hidden_fields(other.text)
        assert carried["transmit_to"] == "be-pensions"

        form = await browser.post("/complaint/start?lang=en", data={**carried, "transmit_consent": "yes"})
        assert "You asked" in form.text and ">My retirement pension from the Federal Pension Service" in form.text
        token = hidden_fields(form.text)["token"]
        sent = await browser.post("/complaint?lang=en", data={
            "token": token, "lang": "en", "name": "Ann Smith", "email": "ann@example.be", "service": "Pension service",
            "subject": "Pension not paid", "facts": "My retirement pension has not been paid since November.",
            "first_line": "yes", "request": "That it is passed on.", "consent": "yes", "website": "",
            "transmit_to": carried["transmit_to"], "transmit_name": carried["transmit_name"],
            "transmit_consent": "yes"})
        assert sent.status_code == 303
        confirmation = await browser.get(sent.headers["location"])
        [number] = NUMBER.findall(confirmation.text)

        ours = await browser.post("/orientation?lang=fr", data={
            "lang": "fr", "theme": "", "description": "Mon avertissement-extrait de rôle du SPF Finances est faux"})
        assert "Notre service peut examiner votre plainte" in ours.text
        prefilled = await browser.post("/complaint/start?lang=fr", data=hidden_fields(ours.text))
        assert ">Mon avertissement-extrait de rôle du SPF Finances est faux</textarea>" in prefilled.text
        assert 'name="service" value="SPF Finances"' in prefilled.text
        assert 'name="subject" value="Fiscalité"' in prefilled.text

    complaint = await services.registry.store.complaint(number)
    assert complaint.channel == "web_form"
    assert ("Transmission requested: the citizen asks that this complaint be passed on to the competent ombudsman, "
            "Pensions Ombudsman (be-pensions)") in complaint.body


async def test_the_responder_answers_a_hostile_request_at_once(stack):
    _, _, _, config = stack
    connection = await nats.connect(config.nats_url)
    try:
        too_long = b'{"description": "' + b"visa " * 201 + b'"}'  # a description longer than the page sends
        for payload in (b"{" * (OrientationRequest.MAX_BYTES + 1), b"not json", b'{"description": 42}', too_long,
                        OrientationRequest(description="visa").model_dump_json().encode()[:-1] + b', "x": 1}'):
            reply = await connection.request(streams.SUBJECT_ORIENTATION, payload, timeout=2)
            answer = Orientation.model_validate_json(reply.data)
            if payload.startswith(b'{"schema_version"'):  # a valid request with an unknown field: answered
                assert answer.outcome is OrientationOutcome.COMPETENT and answer.themes
            else:
                assert answer == Orientation()
    finally:
        await connection.close()


async def test_nobody_answering_is_a_quick_none(nats_server):
    connection = await nats.connect(nats_server.url)
    try:
        started = time.monotonic()
        answer = await NatsRequester(lambda: connection)(streams.SUBJECT_ORIENTATION,
                                                         OrientationRequest(description="visa"), Orientation)
    finally:
        await connection.close()
    assert answer is None and time.monotonic() - started < 2.5
