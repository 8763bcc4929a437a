"""The citizen's pages through ASGI (fast; the real registry, NATS and mail are in tests/e2e/test_citizen_link_flow.py):
the personal link's page shows what the registry answers and nothing for a bad link, a message or document sent
through it becomes a web-form event carrying the file's number and a proof the registry can check (never the token),
"send me my link again" answers the same whatever was typed, and the survey is answered through its link."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime, timezone
from typing import Any

import httpx
from pydantic import BaseModel

from services.intake.web.app import create_public_app
from services.intake.web.tokens import FormTokens
from services.registry.public.citizen_access import new_token
from shared import streams
from shared.events import (
    CitizenAccessRequest,
    CitizenFile,
    CitizenLinkResendRequest,
    CitizenLinkResent,
    CitizenThreadEntry,
    SurveyReply,
    SurveyRequest,
    SurveyState,
    citizen_proof_mac,
)
from tests.intake.test_public_form import PDF, SECRET, RecordingIntake, found, policy

TOKEN = new_token()
NUMBER = "MED-2026-00042"
FILE = CitizenFile(
    found=True, number=NUMBER, kind="complaint", status="in_review", received_on=date(2026, 11, 24),
    acknowledgment_due=date(2026, 12, 1), answer_due=date(2027, 1, 8), language="nl",
    messages=(CitizenThreadEntry(direction="in", at=datetime(2026, 11, 24, 9, tzinfo=timezone.utc),
                                 subject="Pensioen niet betaald", text="Mijn pensioen <b>ontbreekt</b>.",
                                 attachments=("brief.pdf",)),
              CitizenThreadEntry(direction="out", at=datetime(2026, 11, 24, 10, tzinfo=timezone.utc),
                                 subject=f"[{NUMBER}] Ontvangstmelding van uw klacht",
                                 notice_kind="acknowledgment")))


class Registry:
    """Stands for the registry's responders: answers by subject, records every request."""

    def __init__(self, file: CitizenFile | None = FILE, survey: SurveyState | None = SurveyState.OPEN) -> None:
        self.file = file
        self.survey = survey
        self.requests: list[tuple[str, BaseModel]] = []

    async def __call__(self, subject: str, request: BaseModel, reply_type: type, timeout: float = 2.0) -> Any:
        self.requests.append((subject, request))
        if subject == streams.SUBJECT_CITIZEN_FILE:
            return self.file if self.file is None or request.token == TOKEN.token else CitizenFile()
        if subject == streams.SUBJECT_CITIZEN_RESEND:
            return CitizenLinkResent()
        if subject == streams.SUBJECT_SURVEY:
            if self.survey is SurveyState.OPEN and request.answers is not None:
                self.survey = SurveyState.ANSWERED
                return SurveyReply(state=SurveyState.RECORDED)
            return None if self.survey is None else SurveyReply(state=self.survey)
        raise AssertionError(subject)


def client_for(intake: RecordingIntake, registry: Registry) -> httpx.AsyncClient:
    app = create_public_app(policy(per_client_per_hour=50), FormTokens(SECRET, 3600), SECRET, intake, found,
                            requester=registry, today=lambda: date(2026, 12, 5),
                            now=lambda: datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def form_token(page: str, name: str = "form_token") -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


async def test_the_link_shows_the_file_in_the_files_language_without_scripts_or_caching():
    registry = Registry()
    async with client_for(RecordingIntake(), registry) as client:
        page = await client.get(f"/my-file/{TOKEN.token}")
    assert page.status_code == 200
    assert f"Uw dossier {NUMBER}" in page.text and "In behandeling" in page.text  # Dutch: the file's language
    assert "Mijn pensioen &lt;b&gt;ontbreekt&lt;/b&gt;." in page.text and "brief.pdf" in page.text
    assert "Ontvangstmelding van uw klacht" in page.text and "08-01-2027" in page.text
    assert "<script" not in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "same-origin"
    [(subject, request)] = registry.requests
    assert subject == streams.SUBJECT_CITIZEN_FILE and isinstance(request, CitizenAccessRequest)
    assert request.token == TOKEN.token and request.client_ip and not request.writing


async def test_a_bad_link_shows_nothing_and_a_malformed_one_is_not_even_asked():
    registry = Registry()
    async with client_for(RecordingIntake(), registry) as client:
        unknown = await client.get(f"/my-file/{new_token().token}?lang=fr")
        malformed = await client.get("/my-file/' OR 1=1 --?lang=fr")
        short = await client.get(f"/my-file/{TOKEN.token[:-1]}?lang=fr")
        traversal = await client.get("/my-file/..%2F..%2Fetc%2Fpasswd?lang=fr")
    for page in (unknown, malformed, short):
        assert page.status_code == 404 and "ne mène à aucun dossier" in page.text
        assert NUMBER not in page.text
    assert traversal.status_code == 404 and NUMBER not in traversal.text
    assert len(registry.requests) == 1  # only the well-formed token was asked about
    async with client_for(RecordingIntake(), Registry(file=None)) as client:
        away = await client.get(f"/my-file/{TOKEN.token}?lang=en")
    assert away.status_code == 503 and "cannot be shown just now" in away.text


async def test_a_document_sent_through_the_link_carries_the_number_and_a_proof_never_the_token():
    intake, registry = RecordingIntake(), Registry()
    async with client_for(intake, registry) as client:
        page = await client.get(f"/my-file/{TOKEN.token}?lang=fr")
        data = {"form_token": form_token(page.text), "lang": "fr", "message": "Voici la lettre de refus."}
        sent = await client.post(f"/my-file/{TOKEN.token}?lang=fr", data=data,
                                 files=[("documents", ("refus.pdf", PDF, "application/pdf"))])
        again = await client.post(f"/my-file/{TOKEN.token}?lang=fr", data=data,
                                  files=[("documents", ("refus.pdf", PDF, "application/pdf"))])
        after = await client.get(sent.headers["location"])
    assert sent.status_code == 303 and again.status_code == 303
    assert "Votre message est bien reçu" in after.text
    [(raw, arrival)] = intake.accepted  # the second post of the same form is the same message
    event = arrival.prepared.event
    assert event.channel == "web_form" and event.candidate_case_numbers == (NUMBER,)
    assert event.sender_verdict == "unverified" and event.sender.email is None  # the registry decides who it is
    selector, mac = event.citizen_link_proof.split(".")
    assert selector == TOKEN.selector and mac == citizen_proof_mac(TOKEN.verifier_hash, event.message_key)
    assert [a.filename for a in arrival.prepared.attachments] == ["refus.pdf"]
    assert event.text == "Voici la lettre de refus." and NUMBER in event.subject_line
    verifier = TOKEN.token[16:]
    assert verifier not in event.model_dump_json() and verifier not in raw.decode()
    assert json.loads(raw)["files"] == ["refus.pdf"]
    assert [type(r).__name__ for _s, r in registry.requests].count("CitizenAccessRequest") == 4
    assert [r.writing for _s, r in registry.requests] == [False, True, True, False]


async def test_a_message_is_refused_with_a_reason_and_the_text_kept():
    intake = RecordingIntake()
    async with client_for(intake, Registry()) as client:
        page = await client.get(f"/my-file/{TOKEN.token}?lang=en")
        token = form_token(page.text)
        fake_pdf = await client.post(f"/my-file/{TOKEN.token}?lang=en",
                                     data={"form_token": token, "lang": "en", "message": "See attached"},
                                     files=[("documents", ("scan.pdf", b"MZ\x90\x00", "application/pdf"))])
        empty = await client.post(f"/my-file/{TOKEN.token}?lang=en",
                                  data={"form_token": token, "lang": "en", "message": "  "})
        forged = await client.post(f"/my-file/{TOKEN.token}?lang=en",
                                   data={"form_token": "forged", "lang": "en", "message": "Hello"})
        cross = await client.post(f"/my-file/{TOKEN.token}?lang=en", headers={"origin": "https://evil.example"},
                                  data={"form_token": token, "lang": "en", "message": "Hello"})
        other = await client.post(f"/my-file/{new_token().token}?lang=en",
                                  data={"form_token": token, "lang": "en", "message": "Hello"})
    assert fake_pdf.status_code == 422 and "does not match its type" in fake_pdf.text and "See attached" in fake_pdf.text
    assert empty.status_code == 422 and "Write a message or attach a document" in empty.text
    assert forged.status_code == 400 and "Hello" in forged.text
    assert cross.status_code == 403 and other.status_code == 404
    assert intake.accepted == []


async def test_send_my_link_again_answers_the_same_whatever_was_typed():
    registry = Registry()
    async with client_for(RecordingIntake(), registry) as client:
        pages = []
        for email in ("jeanne@example.org", "nobody@example.org"):
            form = await client.get("/my-file/resend?lang=fr")
            posted = await client.post("/my-file/resend?lang=fr", data={
                "token": form_token(form.text, "token"), "lang": "fr", "number": "med-2026-00042", "email": email})
            assert posted.status_code == 303
            pages.append((await client.get(posted.headers["location"])).text)
        await asyncio.sleep(0.05)  # the request to the registry goes in the background
        assert pages[0] == pages[1] and "Si ce numéro et cette adresse correspondent" in pages[0]
        sent = [r for s, r in registry.requests if s == streams.SUBJECT_CITIZEN_RESEND]
        assert [(r.number, r.email) for r in sent] == [(NUMBER, "jeanne@example.org"),
                                                        (NUMBER, "nobody@example.org")]
        assert all(isinstance(r, CitizenLinkResendRequest) for r in sent)
        statuses = []
        for _ in range(5):
            form = await client.get("/my-file/resend?lang=fr")
            statuses.append((await client.post("/my-file/resend?lang=fr", data={
                "token": form_token(form.text, "token"), "lang": "fr", "number": NUMBER,
                "email": "x@example.org"})).status_code)
    assert statuses == [303, 303, 303, 429, 429]  # five an hour from one address


async def test_the_survey_is_answered_through_its_link_once():
    registry = Registry()
    token = new_token().token
    async with client_for(RecordingIntake(), registry) as client:
        form = await client.get(f"/survey/{token}?lang=de")
        assert form.status_code == 200 and "Waren unsere Erklärungen klar?" in form.text
        data = {"form_token": form_token(form.text), "lang": "de", "clarity": "4", "delay": "9", "respect": "5",
                "overall": "", "comment": "Sehr freundlich."}
        empty = await client.post(f"/survey/{token}?lang=de", data={"form_token": data["form_token"], "lang": "de"})
        sent = await client.post(f"/survey/{token}?lang=de", data=data)
        thanks = await client.get(sent.headers["location"])
        again = await client.post(f"/survey/{token}?lang=de", data=data)
        unknown = await client.get("/survey/not-a-token?lang=de")
    assert empty.status_code == 422
    assert sent.status_code == 303 and "Vielen Dank" in thanks.text
    assert again.status_code == 409 and "bereits beantwortet" in again.text
    assert unknown.status_code == 404
    answers = [r.answers for s, r in registry.requests if isinstance(r, SurveyRequest) and r.answers is not None]
    assert answers[0].model_dump() == {"clarity": 4, "delay": None, "respect": 5, "overall": None,
                                       "comment": "Sehr freundlich."}


async def test_the_citizen_states_the_facts_screening_needs_through_the_link():
    """Issue 15: the facts date, the first-line contact and its date, settable by the citizen's reply form."""
    intake, registry = RecordingIntake(), Registry()
    async with client_for(intake, registry) as client:
        page = await client.get(f"/my-file/{TOKEN.token}?lang=nl")
        assert 'name="facts_date"' in page.text and 'name="first_line"' in page.text
        wrong = await client.post(f"/my-file/{TOKEN.token}?lang=nl", data={
            "form_token": form_token(page.text), "lang": "nl", "facts_date": "2099-01-01", "first_line": "yes"})
        assert wrong.status_code == 422 and intake.accepted == []
        assert 'value="2099-01-01"' in wrong.text  # what was typed is kept
        sent = await client.post(f"/my-file/{TOKEN.token}?lang=nl", data={
            "form_token": form_token(wrong.text), "lang": "nl", "facts_date": "2026-09-14", "first_line": "yes",
            "first_line_date": "2026-10-02"})
    assert sent.status_code == 303
    [(raw, arrival)] = intake.accepted
    event = arrival.prepared.event
    assert (event.facts_date, event.first_line_contacted, event.last_step_date) == (
        date(2026, 9, 14), True, date(2026, 10, 2))
    assert event.text  # a facts-only message still says what it is
    assert json.loads(raw)["facts"] == {"facts_date": "2026-09-14", "first_line": "yes",
                                        "first_line_date": "2026-10-02"}
