"""Orientation, the public site's first step, through ASGI with a fake registry (fast; the real registry over NATS is
in tests/e2e/test_orientation_flow.py): `/` leads to it; each outcome says the right thing in the reader's language
(competent → the form filled in; another ombudsman → its name and contact, no form unless the citizen consents to a
transmission, which then travels with the complaint; nobody known, or no answer → the form anyway); only the words
and the theme are asked, bounded before anything is asked; hostile input stays text."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from services.intake.web.app import create_public_app
from services.intake.web.pages import orientation as orientation_page
from services.intake.web.tokens import FormTokens
from shared import streams
from shared.events import Orientation, OrientationContact, OrientationRequest, OrientationTheme
from tests.intake.test_public_form import SECRET, TODAY, RecordingIntake, filled, found, policy, token_of

THEMES = (OrientationTheme(id="pensions", labels={"fr": "Pensions", "nl": "Pensioenen", "de": "Pensionen",
                                                  "en": "Pensions"}),
          OrientationTheme(id="taxation", labels={"fr": "Fiscalité", "nl": "Fiscaliteit", "de": "Steuern",
                                                  "en": "Taxation"}))
PENSIONS_OMBUDSMAN = OrientationContact(
    id="be-pensions", names={"fr": "Service de médiation Pensions", "nl": "Ombudsdienst Pensioenen",
                             "de": "Ombudsdienst für Pensionen", "en": "Pensions Ombudsman"},
    website="https://www.mediateurpensions.be", phone="+32 2 274 19 80", address="WTC III, 1000 Bruxelles")
FRENCH_ONLY = OrientationContact(id="fr-defenseur-des-droits", names={"fr": "Défenseur des droits"},
                                 website="javascript:alert(1)", verified=True)


@dataclass
class FakeRegistry:
    """Stands for `NatsRequester`: records each question, answers `answer(request)` (None: nobody answered)."""

    answer: Any = None
    asked: list[tuple[str, BaseModel]] = field(default_factory=list)

    async def __call__(self, subject: str, request: BaseModel, reply_type: type, timeout: float = 2.0) -> Any:
        self.asked.append((subject, request))
        reply = self.answer(request) if callable(self.answer) else self.answer
        assert reply is None or isinstance(reply, reply_type)
        return reply

    @property
    def descriptions(self) -> list[str]:
        return [request.description for _, request in self.asked if request.description]


def answering(**fields: Any) -> FakeRegistry:
    return FakeRegistry(lambda request: Orientation(themes=THEMES, **fields))


def client_for(registry: FakeRegistry, intake: RecordingIntake | None = None) -> httpx.AsyncClient:
    app = create_public_app(policy(), FormTokens(SECRET, 3600), SECRET, intake or RecordingIntake(), found,
                            requester=registry, today=lambda: TODAY,
                            now=lambda: datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def hidden(page: str, name: str) -> str | None:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else None


def start_fields(page: str) -> dict[str, str]:
    """What the answer's form posts to /complaint/start (its hidden fields), as a browser sends them."""
    return {name: value for name in ("lang", "facts", "service", "subject", "transmit_to", "transmit_name")
            if (value := hidden(page, name)) is not None}


async def test_home_leads_to_orientation_which_keeps_a_direct_link_to_the_form() -> None:
    registry = answering()
    async with client_for(registry) as client:
        home = await client.get("/?lang=nl")
        question = await client.get(home.headers["location"])
    assert home.status_code == 303 and home.headers["location"] == "/orientation?lang=nl"
    assert question.status_code == 200 and "Wie kan u helpen?" in question.text
    assert 'href="/complaint?lang=nl"' in question.text
    assert '<option value="pensions">Pensioenen</option>' in question.text  # the registry's themes, in Dutch
    assert "<script" not in question.text and "default-src 'none'" in question.headers["content-security-policy"]
    [(subject, asked)] = registry.asked
    assert subject == streams.SUBJECT_ORIENTATION and asked == OrientationRequest()


async def test_competent_leads_to_the_form_filled_in_with_the_words_the_service_and_the_theme() -> None:
    registry = answering(outcome="competent", theme="taxation",
                         service={"fr": "SPF Finances", "nl": "FOD Financiën", "de": "FÖD Finanzen",
                                  "en": "FPS Finance"})
    async with client_for(registry) as client:
        answer = await client.post("/orientation?lang=fr", data={"lang": "fr", "theme": "",
                                                                 "description": "Mon impôt est mal calculé"})
        assert answer.status_code == 200
        assert "Notre service peut examiner votre plainte" in answer.text
        assert 'action="/complaint/start?lang=fr"' in answer.text and "transmit_consent" not in answer.text
        carried = start_fields(answer.text)
        assert carried == {"lang": "fr", "facts": "Mon impôt est mal calculé", "service": "SPF Finances",
                           "subject": "Fiscalité"}
        form = await client.post("/complaint/start?lang=fr", data=carried)
    assert form.status_code == 200 and "Introduire une plainte" in form.text
    assert ">Mon impôt est mal calculé</textarea>" in form.text
    assert 'name="service" value="SPF Finances"' in form.text and 'name="subject" value="Fiscalité"' in form.text
    assert token_of(form.text)  # a form that can be sent
    # Only the words and the theme were asked, nothing else about the citizen.
    assert [request.model_dump() for _, request in registry.asked][-1] == {
        "schema_version": 1, "description": "Mon impôt est mal calculé", "theme": None}


async def test_another_ombudsman_is_named_with_its_contact_and_the_complaint_is_not_taken() -> None:
    registry = answering(outcome="other", ombudsmen=(PENSIONS_OMBUDSMAN, FRENCH_ONLY), theme="pensions")
    async with client_for(registry) as client:
        answer = await client.post("/orientation?lang=nl", data={"lang": "nl", "theme": "pensions",
                                                                 "description": "Mijn pensioen is niet betaald"})
    page = answer.text
    assert answer.status_code == 200 and "Een andere ombudsman is bevoegd" in page
    assert "Ombudsdienst Pensioenen" in page and "Service de médiation Pensions" not in page
    assert 'href="https://www.mediateurpensions.be"' in page and "+32 2 274 19 80" in page
    assert "Controleer deze gegevens op zijn website" in page  # not verified: the citizen is told to check
    assert '<h3 lang="fr">Défenseur des droits</h3>' in page  # no Dutch name: the French one, marked so
    assert "javascript:" not in page  # a website that is not http(s) is not made a link
    # No way to the form but the transmission, and that one needs the box ticked.
    assert "Verder naar het klachtenformulier" not in page
    assert re.search(r'<input type="checkbox" id="transmit_consent" name="transmit_consent" value="yes" required>',
                     page)
    assert hidden(page, "transmit_to") == "be-pensions" and hidden(page, "transmit_name") == "Ombudsdienst Pensioenen"


async def test_a_transmission_with_consent_travels_with_the_complaint() -> None:
    intake = RecordingIntake()
    registry = answering(outcome="other", ombudsmen=(PENSIONS_OMBUDSMAN,), theme="pensions")
    async with client_for(registry, intake) as client:
        answer = await client.post("/orientation?lang=fr",
                                   data={"lang": "fr", "description": "Ma pension n'est pas versée"})
        form = await client.post("/complaint/start?lang=fr",
                                 data={**start_fields(answer.text), "transmit_consent": "yes"})
        assert "Vous avez demandé que cette plainte soit transmise au médiateur compétent, Service de médiation " \
               "Pensions." in form.text
        assert re.search(r'id="transmit_consent" name="transmit_consent" value="yes" checked', form.text)
        data = filled(token_of(form.text), transmit_to=hidden(form.text, "transmit_to"),
                      transmit_name=hidden(form.text, "transmit_name"), transmit_consent="yes")
        sent = await client.post("/complaint", data=data)
    assert sent.status_code == 303
    [(raw, arrival)] = intake.accepted
    text = arrival.prepared.event.text
    assert ("Transmission demandée : le citoyen demande que cette plainte soit transmise au médiateur compétent, "
            "Service de médiation Pensions (be-pensions), et accepte") in text
    record = json.loads(raw)
    assert record["form"]["transmit_to"] == "be-pensions" and record["form"]["transmit_consent"] == "yes"


async def test_a_transmission_without_consent_is_not_taken() -> None:
    intake = RecordingIntake()
    async with client_for(answering(), intake) as client:
        # The box left unticked on the orientation page (a browser honours `required`; a script may not).
        form = await client.post("/complaint/start?lang=en", data={
            "lang": "en", "facts": "My pension", "transmit_to": "be-pensions", "transmit_name": "Pensions Ombudsman"})
        assert "You asked that this complaint be passed on to the competent ombudsman, Pensions Ombudsman." \
            in form.text
        assert 'name="transmit_consent" value="yes">' in form.text  # shown unticked
        refused = await client.post("/complaint", data=filled(
            token_of(form.text), lang="en", transmit_to="be-pensions", transmit_name="Pensions Ombudsman"))
    assert refused.status_code == 422 and intake.accepted == []
    assert 'href="#transmit_consent"' in refused.text
    assert "Tick the box for us to pass your complaint on" in refused.text
    assert 'aria-describedby="transmit_consent-error"' in refused.text


@pytest.mark.parametrize(("outcome", "title", "status"), [
    ("unknown", "Wir wissen noch nicht, wer zuständig ist", 200),
    ("unclear", "Unsere Stelle kann Ihnen wohl helfen, ein anderer Ombudsmann vielleicht besser", 200),
    (None, "Wir können Sie im Moment nicht weiterleiten", 200),
])
async def test_nobody_known_unclear_or_no_answer_offer_the_form_anyway(outcome: str | None, title: str,
                                                                       status: int) -> None:
    fields = {"outcome": outcome, "ombudsmen": (PENSIONS_OMBUDSMAN,) if outcome == "unclear" else ()}
    registry = answering(**fields) if outcome else FakeRegistry(None)
    async with client_for(registry) as client:
        answer = await client.post("/orientation?lang=de", data={"lang": "de", "description": "Ein Problem"})
    assert answer.status_code == status and title in answer.text
    assert "Weiter zum Beschwerdeformular" in answer.text and "transmit_to" not in answer.text
    assert start_fields(answer.text)["facts"] == "Ein Problem"
    assert ("Ombudsdienst für Pensionen" in answer.text) == (outcome == "unclear")


async def test_the_question_works_without_the_registry() -> None:
    async with client_for(FakeRegistry(None)) as client:
        question = await client.get("/orientation?lang=en")
    assert question.status_code == 200 and "Your problem in a few words" in question.text
    assert "<select" not in question.text  # no themes to offer: the words alone


@pytest.mark.parametrize(("data", "message"), [
    ({"description": "x" * 1001}, "This text is too long"),
    ({"description": "   \u0000 ", "theme": ""}, "Describe your problem in a few words or choose a theme"),
])
async def test_a_description_too_long_or_empty_is_refused_before_anything_is_asked(data: dict[str, str],
                                                                                 message: str) -> None:
    registry = answering()
    async with client_for(registry) as client:
        answer = await client.post("/orientation?lang=en", data={"lang": "en", **data})
    assert answer.status_code == 422 and message in answer.text
    assert registry.descriptions == []  # the words never left the page
    if len(data["description"]) > 1000:
        assert "x" * 1001 in answer.text  # kept as typed, to be shortened


async def test_hostile_input_stays_text() -> None:
    registry = answering(outcome="competent")
    async with client_for(registry) as client:
        answer = await client.post("/orientation?lang=fr", data={
            "lang": "fr\"><script>", "theme": "x" * 500, "description": '"><script>alert(1)</script> impôt'})
        form = await client.post("/complaint/start", data={
            "facts": "<b>faits</b>", "transmit_to": "../../etc/passwd", "transmit_consent": "yes"})
    assert answer.status_code == 200 and "<script>" not in answer.text
    assert hidden(answer.text, "facts") == '"><script>alert(1)</script> impôt'
    [(_, asked)] = [item for item in registry.asked if item[1].description]
    assert asked.theme == "x" * 100  # bounded, and a theme the registry does not know is ignored there
    assert "&lt;b&gt;faits&lt;/b&gt;" in form.text and "transmit_to" not in form.text  # not an id: no transmission


async def test_one_address_asking_too_often_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orientation_page, "ORIENTATIONS_PER_CLIENT_PER_HOUR", 3)
    registry = answering(outcome="unknown")
    async with client_for(registry) as client:
        answers = [await client.post("/orientation", data={"description": f"question {n}"}) for n in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "Trop de demandes" in answers[-1].text and 'href="/complaint?lang=fr"' in answers[-1].text
    assert registry.descriptions == ["question 0", "question 1", "question 2"]
