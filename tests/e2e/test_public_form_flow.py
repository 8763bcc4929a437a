"""Issue 17's form, end to end over real parts: a citizen fills the public form (HTTP to intake's public web port,
with a PDF), the complaint is durable in JetStream before the confirmation answers, the registry numbers it (the
confirmation page shows the number, asked over NATS), the notifier acknowledges it by mail in the citizen's language,
the PDF is in the object store, and a form posted twice is still one complaint. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx
import nats
import pytest

from shared import streams
from tests.e2e.stack import running_stack

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
NUMBER = re.compile(r"MED-\d{4}-\d{5}")


@pytest.fixture(params=["sqlite", "postgres"])
async def stack(request, nats_server, tmp_path):
    factory = request.getfixturevalue("postgres_database_factory") if request.param == "postgres" else None
    async with running_stack(nats_server.url, tmp_path, public_web=True,
                             databases=(factory(), factory()) if factory else None) as running:
        yield running.services, running.catcher, running.public_url, running.config


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


async def test_a_citizen_files_a_complaint_online_and_is_acknowledged(stack):
    services, catcher, base, config = stack
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        form = await browser.get("/complaint?lang=nl")
        assert form.status_code == 200 and "Een klacht indienen" in form.text
        data = {"token": token_of(form.text), "lang": "nl", "name": "Piet Peeters", "email": "piet@example.be",
                "service": "Pensioendienst", "subject": "Pensioen niet betaald",
                "facts": "Mijn pensioen van november werd niet gestort.", "facts_date": "2026-11-05",
                "first_line": "yes", "request": "Betaling van mijn pensioen.", "consent": "yes", "website": ""}
        sent = await browser.post("/complaint?lang=nl", data=data,
                                  files=[("documents", ("brief.pdf", PDF, "application/pdf"))])
        assert sent.status_code == 303
        again = await browser.post("/complaint?lang=nl", data=data,
                                   files=[("documents", ("brief.pdf", PDF, "application/pdf"))])
        assert again.status_code == 303  # a double click: the same submission
        confirmation = await browser.get(sent.headers["location"])
    assert confirmation.status_code == 200
    [number] = NUMBER.findall(confirmation.text)

    acknowledgment = await catcher.next_mail(timeout=20)
    assert acknowledgment["To"].addresses[0].addr_spec == "piet@example.be"
    assert number in acknowledgment["Subject"]
    body = acknowledgment.get_body(("plain",)).get_content()
    assert "Wij hebben uw klacht" in body and "Pensioen niet betaald" in body  # in Dutch, the form's language

    complaint = await services.registry.store.complaint(number)
    assert complaint.channel == "web_form" and complaint.complainant_name == "Piet Peeters"
    assert complaint.facts_date.isoformat() == "2026-11-05" and complaint.first_line_contacted is True
    assert "Mijn pensioen van november werd niet gestort." in complaint.body
    [attachment] = complaint.attachments
    connection = await nats.connect(config.nats_url)
    try:
        js = connection.jetstream()
        stored = await (await js.object_store(streams.BUCKET_ATTACHMENTS)).get(attachment["object_name"])
        assert stored.data == PDF
        raw = await (await js.object_store(streams.BUCKET_RAW_MESSAGES)).get(complaint.raw_object)
        assert b"Piet Peeters" in raw.data  # the form as submitted, kept
        info = await js.stream_info(streams.STREAM_INTAKE)
    finally:
        await connection.close()
    assert info.state.messages == 1  # the second post of the same form published nothing
    with pytest.raises(TimeoutError):  # one acknowledgment, not two
        await catcher.next_mail(timeout=2)


async def test_a_forged_forwarded_for_header_does_not_escape_the_per_address_limit(nats_server, tmp_path):
    """Over the real server (uvicorn): the client is the TCP peer, whatever X-Forwarded-For claims."""
    async with running_stack(nats_server.url, tmp_path, public_web=True,
                             intake_settings={"public_form_per_client_per_hour": 2}) as running:
        async with httpx.AsyncClient(base_url=running.public_url, timeout=30) as browser:
            statuses = []
            for index in range(3):
                form = await browser.get("/complaint?lang=fr")
                answer = await browser.post("/complaint?lang=fr", headers={"X-Forwarded-For": f"203.0.113.{index}"},
                                            data={"token": token_of(form.text), "lang": "fr", "name": "Ana",
                                                  "email": f"ana{index}@example.be", "service": "Pensions",
                                                  "subject": f"Plainte {index}", "facts": "Des faits.",
                                                  "first_line": "no", "request": "Une réponse.", "consent": "yes",
                                                  "website": ""})
                statuses.append(answer.status_code)
    assert statuses == [303, 303, 429]
