"""The public complaint form's pages through ASGI (fast; the real pipeline, NATS and registry are in
tests/e2e/test_public_form_flow.py): each check answers a page that keeps the typing, the event carries what
admissibility needs, a form sent twice is one submission, abuse is limited without losing anyone else's complaint."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest

from services.intake.arrival import AcceptOutcome, AcceptStatus, Arrival
from services.intake.web.app import CATALOG, FormPolicy, create_public_app
from services.intake.web.tokens import FormTokens
from shared.events import CaseLookup, Channel

SECRET = b"0123456789abcdef0123456789abcdef-test"
TODAY = date(2026, 12, 5)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class RecordingIntake:
    """Stands for `IntakePipeline.accept`: keeps each prepared message; a key seen again is a duplicate."""

    accepted: list[tuple[bytes, Arrival]] = field(default_factory=list)
    fail: bool = False

    async def accept(self, raw: bytes, arrival: Arrival | None = None, **_: Any) -> AcceptOutcome:
        if self.fail:
            raise ConnectionError("NATS is away")
        assert arrival is not None and arrival.prepared is not None
        key = arrival.prepared.key
        if any(a.prepared.key == key for _, a in self.accepted):
            return AcceptOutcome(AcceptStatus.DUPLICATE, key)
        self.accepted.append((raw, arrival))
        return AcceptOutcome(AcceptStatus.PROCESSED, key, arrival.prepared.event)


def policy(**changes: Any) -> FormPolicy:
    values = dict(public_url="http://testserver/", per_client_per_hour=3, max_attachments=2,
                  max_attachment_bytes=64 * 1024, token_hours=12,
                  organisation={"fr": "Service de médiation", "nl": "Ombudsdienst", "de": "Ombudsstelle",
                                "en": "Ombudsman service"})
    values.update(changes)
    return FormPolicy(**values)


async def found(key: str) -> CaseLookup:
    return CaseLookup(number="MED-2026-00042", status="received")


def client_for(intake: RecordingIntake, form_policy: FormPolicy | None = None, lookup=found) -> httpx.AsyncClient:
    app = create_public_app(form_policy or policy(), FormTokens(SECRET, 3600), SECRET, intake, lookup,
                            today=lambda: TODAY, now=lambda: datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def filled(token: str, **changes: str) -> dict[str, str]:
    data = {"token": token, "lang": "fr", "name": "Jeanne Dupont", "email": "Jeanne.Dupont@Example.be",
            "postal_address": "Rue Haute 1\n1000 Bruxelles", "service": "Bureau des pensions",
            "subject": "Pension non versée", "facts": "Ma pension de novembre n'a pas été versée.",
            "facts_date": "2026-11-05", "first_line": "yes", "first_line_date": "2026-11-12",
            "first_line_answer": "On m'a dit d'attendre.", "request": "Le versement de ma pension.",
            "consent": "yes", "website": ""}
    data.update(changes)
    return data


async def test_a_complete_submission_becomes_one_web_form_event_and_a_confirmation() -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        form = await client.get("/complaint?lang=fr")
        assert form.status_code == 200 and "Introduire une plainte" in form.text
        assert "<script" not in form.text and "default-src 'none'" in form.headers["content-security-policy"]
        sent = await client.post("/complaint", data=filled(token_of(form.text)),
                                 files=[("documents", ("facture.pdf", PDF, "application/octet-stream"))])
        assert sent.status_code == 303
        confirmation = await client.get(sent.headers["location"])
    assert confirmation.status_code == 200
    assert "MED-2026-00042" in confirmation.text
    [(raw, arrival)] = intake.accepted
    event = arrival.prepared.event
    assert event.channel is Channel.WEB_FORM and arrival.channel is Channel.WEB_FORM
    assert event.sender.email == "jeanne.dupont@example.be" and event.sender.name == "Jeanne Dupont"
    assert event.sender.postal_address == "Rue Haute 1\n1000 Bruxelles" and event.language == "fr"
    assert event.facts_date == date(2026, 11, 5) and event.first_line_contacted is True
    assert event.last_step_date == date(2026, 11, 12)
    assert "Ma pension de novembre n'a pas été versée." in event.text and "Bureau des pensions" in event.text
    assert event.sender_verdict.value == "unverified" and event.needs_confirmation is None
    [document] = arrival.prepared.attachments
    assert document.content_type == "application/pdf" and document.data == PDF
    assert event.attachments[0].filename == "facture.pdf"
    assert b'"Jeanne Dupont"' in raw  # the raw original: the form as submitted


async def test_a_form_sent_twice_is_one_submission() -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        token = token_of((await client.get("/complaint")).text)
        first = await client.post("/complaint", data=filled(token))
        second = await client.post("/complaint", data=filled(token))
    assert first.status_code == second.status_code == 303
    assert len(intake.accepted) == 1
    assert first.headers["location"] == second.headers["location"]


@pytest.mark.parametrize(("changes", "field_name", "message"), [
    ({"name": ""}, "name", "une plainte anonyme ne peut pas être examinée"),
    ({"email": "jeanne@"}, "email", "Cette adresse électronique n&#39;est pas valable"),
    ({"first_line": ""}, "first_line", "Répondez par oui ou par non"),
    ({"facts_date": "2031-01-01"}, "facts_date", "Cette date n&#39;est pas valable"),
    ({"consent": ""}, "consent", "Sans votre accord"),
    ({"facts": "x" * 20_001}, "facts", "Ce texte est trop long"),
])
async def test_a_wrong_field_is_named_and_the_typing_kept(changes: dict[str, str], field_name: str,
                                                          message: str) -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        token = token_of((await client.get("/complaint")).text)
        answer = await client.post("/complaint", data=filled(token, **changes))
    assert answer.status_code == 422
    assert intake.accepted == []
    assert message in answer.text
    assert f'href="#{field_name}"' in answer.text  # the summary links to the field
    typed_facts = changes.get("facts", "Ma pension de novembre n'a pas été versée.").replace("'", "&#39;")
    assert typed_facts in answer.text  # nothing typed is lost


@pytest.mark.parametrize(("upload", "message"), [
    (("virus.exe", b"MZ\x90\x00", "application/pdf"), "Ce type de fichier n&#39;est pas accepté"),
    (("facture.pdf", b"<html>not a pdf</html>", "application/pdf"), "ne correspond pas à son type"),
    (("grand.pdf", b"%PDF-" + b"0" * (64 * 1024), "application/pdf"), "dépasse 0 Mo"),
])
async def test_documents_are_checked_by_their_content(upload: tuple[str, bytes, str], message: str) -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        token = token_of((await client.get("/complaint")).text)
        answer = await client.post("/complaint", data=filled(token), files=[("documents", upload)])
    assert answer.status_code == 422 and message in answer.text
    assert intake.accepted == []


async def test_a_forged_or_expired_token_gets_a_fresh_form_with_the_typing() -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        answer = await client.post("/complaint", data=filled("forged.token.value"))
    assert answer.status_code == 400 and intake.accepted == []
    assert "Le formulaire a expiré" in answer.text and "Pension non versée" in answer.text
    assert token_of(answer.text) != "forged.token.value"


async def test_a_cross_site_post_is_refused() -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        token = token_of((await client.get("/complaint")).text)
        answer = await client.post("/complaint", data=filled(token), headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and intake.accepted == []


async def test_a_hundred_submissions_from_one_address_are_limited_and_others_still_get_through() -> None:
    intake = RecordingIntake()
    async with client_for(intake, policy(per_client_per_hour=10)) as client:
        statuses = []
        for index in range(100):
            token = token_of((await client.get("/complaint")).text)
            answer = await client.post("/complaint", data=filled(token, subject=f"Plainte {index}"))
            statuses.append(answer.status_code)
        assert statuses == [303] * 10 + [429] * 90
        assert "Trop de plaintes" in answer.text and "Plainte 99" in answer.text  # the typing is kept
    # Legitimate citizens elsewhere are not concerned, before and after the flood: each is taken in.
    other = create_public_app(policy(per_client_per_hour=10), FormTokens(SECRET, 3600), SECRET, intake, found)
    for index, address in enumerate(("198.51.100.7", "203.0.113.20", "192.0.2.33")):
        transport = httpx.ASGITransport(app=other, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
            token = token_of((await elsewhere.get("/complaint")).text)
            sent = await elsewhere.post("/complaint", data=filled(token, subject=f"Légitime {index}"))
            assert sent.status_code == 303
    subjects = [arrival.prepared.event.subject_line for _raw, arrival in intake.accepted]
    assert subjects == [f"Plainte {index}" for index in range(10)] + [f"Légitime {index}" for index in range(3)]


async def test_a_filled_honeypot_is_kept_for_staff_to_confirm() -> None:
    intake = RecordingIntake()
    async with client_for(intake) as client:
        token = token_of((await client.get("/complaint")).text)
        answer = await client.post("/complaint", data=filled(token, website="http://spam.example"))
    assert answer.status_code == 303
    [(_raw, arrival)] = intake.accepted
    assert arrival.prepared.event.needs_confirmation == "web_form_honeypot"


async def test_nats_away_says_try_again_and_keeps_the_typing() -> None:
    async with client_for(RecordingIntake(fail=True)) as client:
        token = token_of((await client.get("/complaint")).text)
        answer = await client.post("/complaint", data=filled(token))
    assert answer.status_code == 503
    assert "n'a pas pu être enregistrée".replace("'", "&#39;") in answer.text and "Pension non versée" in answer.text


async def test_a_body_beyond_the_bound_is_refused_before_it_is_read() -> None:
    intake = RecordingIntake()
    async with client_for(intake, policy(max_attachments=1, max_attachment_bytes=1024)) as client:
        answer = await client.post("/complaint", content=b"x" * (3 * 1024 * 1024),
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413 and intake.accepted == []


@pytest.mark.parametrize("language", ["fr", "nl", "de", "en"])
async def test_the_form_speaks_four_languages(language: str) -> None:
    async with client_for(RecordingIntake()) as client:
        page = await client.get(f"/complaint?lang={language}")
    assert f'<html lang="{language}">' in page.text
    assert CATALOG.translate("form.title", language) in page.text


async def test_the_confirmation_without_a_number_yet_says_it_comes_by_mail() -> None:
    async def not_yet(key: str) -> CaseLookup:
        return CaseLookup()

    intake = RecordingIntake()
    async with client_for(intake, lookup=not_yet) as client:
        token = token_of((await client.get("/complaint?lang=en")).text)
        sent = await client.post("/complaint?lang=en", data=filled(token, lang="en"))
        confirmation = await client.get(sent.headers["location"])
        forged = await client.get("/complaint/received/not-a-receipt")
    assert "its number will be in the acknowledgment" in confirmation.text
    assert forged.status_code == 404


def test_production_needs_the_form_its_own_secret(tmp_path) -> None:
    from services.intake.settings import IntakeSettings

    assert any("OMBUDSDESK_PUBLIC_WEB_SECRET_FILE" in refusal
               for refusal in IntakeSettings(public_web_port=8480).production_refusals())
    secret = tmp_path / "public-web.secret"
    secret.write_text("changeme")
    assert any("placeholder secret" in refusal for refusal in
               IntakeSettings(public_web_port=8480, public_web_secret_file=secret).production_refusals())
    secret.write_text("9f" * 32)
    assert not any("PUBLIC_WEB" in refusal for refusal in
                   IntakeSettings(public_web_port=8480, public_web_secret_file=secret).production_refusals())
    assert not any("PUBLIC_WEB" in refusal for refusal in IntakeSettings(public_web_port=0).production_refusals())
