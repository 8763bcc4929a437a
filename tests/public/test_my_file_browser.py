"""The citizen's view of their file and the satisfaction survey in Chromium over the real system (issue 17): a
complaint mailed in, its acknowledgment's personal link opened with JavaScript switched off, a document added
through it (it shows in the thread), the file closed by staff, the survey invitation's link answered, still without
JavaScript; axe-core finds no serious violation on the file page, the "send me my link again" page and the survey
(checked in an ordinary tab: axe is a script). Screenshots "public-my-file" and "public-survey".

Synchronous on purpose (Playwright's sync API; see `tests/backoffice/conftest.py`)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.registry.commands import Transition
from tests.backoffice.helpers import assert_accessible
from tests.e2e.stack import complaint_mail, send_mail
from tests.public.conftest import LiveStack

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/(?:my-file|survey)/[0-9a-f]{16}[A-Za-z0-9_-]{32}(?:\?lang=[a-z]{2})?")


@pytest.fixture
def citizen_stack(tmp_path: Path, nats_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveStack]:
    """The live system with its public address known to the registry (the links it issues start with it) and a
    quick watcher (the survey's sweep runs with it)."""
    live = LiveStack(tmp_path, nats_server.url)
    monkeypatch.setenv("OMBUDSDESK_PUBLIC_WEB_URL", live.url("/"))
    monkeypatch.setenv("OMBUDSDESK_DEADLINE_CHECK_INTERVAL_SECONDS", "0.5")
    live.start()
    try:
        yield live
    finally:
        live.stop()


def link_in_next_mail(live: LiveStack, path: str) -> tuple[str, str]:
    """(the link to `path`, the subject) of the next mail that carries one."""
    while True:
        mail = live.run(live.catcher.next_mail(timeout=30))
        found = [url for url in LINK.findall(mail.get_body(("plain",)).get_content()) if f"/{path}/" in url]
        if found:
            return found[0], str(mail["Subject"])


def jeanne_complains(live: LiveStack, subject: str, text: str) -> tuple[str, str]:
    """Jeanne mails a complaint in: (the personal link of its acknowledgment, the file's number)."""
    send_mail(live.services.intake.settings.smtp_port,
              complaint_mail("Jeanne Dupont <jeanne.dupont@example.org>", subject, text))
    link, acknowledgment = link_in_next_mail(live, "my-file")
    return link, re.search(r"MED-\d{4}-\d{5}", acknowledgment).group(0)


def test_a_citizen_follows_the_file_adds_a_document_and_answers_the_survey_without_javascript(
        citizen_stack, browser, page, screenshot, tmp_path: Path):
    live = citizen_stack
    link, number = jeanne_complains(live, "Plainte : allocation non versée",
                                    "Mon allocation de novembre n'a pas été versée malgré deux rappels.")

    context = browser.new_context(locale="fr-BE", java_script_enabled=False, viewport={"width": 1000, "height": 900})
    context.set_default_timeout(20_000)
    try:
        citizen = context.new_page()
        citizen.goto(link)
        assert citizen.locator("h1").inner_text() == f"Votre dossier {number}"
        assert "Mon allocation de novembre" in citizen.locator(".thread").inner_text()
        document = tmp_path / "rappel.pdf"
        document.write_bytes(PDF)
        citizen.get_by_label("Votre message", exact=True).fill("Voici mon second rappel, resté sans réponse.")
        citizen.get_by_label("Documents").set_input_files(str(document))
        with citizen.expect_navigation():
            citizen.get_by_role("button", name="Envoyer").click()
        assert "Votre message est bien reçu" in citizen.get_by_role("status").inner_text()
        for _ in range(40):  # the registry files it within moments; the page shows it once filed
            if "rappel.pdf" in citizen.locator(".thread").inner_text():
                break
            time.sleep(0.25)
            citizen.goto(link)
        thread = citizen.locator(".thread").inner_text()
        assert "Voici mon second rappel" in thread and "rappel.pdf" in thread
        screenshot(citizen, "public-my-file")
        page.goto(link)
        assert_accessible(page)
        page.goto(live.url("/my-file/resend?lang=fr"))
        assert_accessible(page)

        registry = live.services.registry.registry
        for command in (Transition(number, "in_review", "agent@ombudsdesk"),
                        Transition(number, "answered", "agent@ombudsdesk", answer_text="L'allocation a été versée."),
                        Transition(number, "closed", "agent@ombudsdesk", outcome="unfounded")):
            live.run(registry.handle(command))
        survey, _subject = link_in_next_mail(live, "survey")
        citizen.goto(survey)
        assert citizen.locator("h1").inner_text() == "Votre avis sur le traitement de votre dossier"
        page.goto(survey)
        assert_accessible(page)
        clarity = citizen.get_by_role("group", name="Nos explications étaient-elles claires ?")
        clarity.get_by_label(re.compile("^4")).check()
        citizen.get_by_role("group", name="Dans l'ensemble, êtes-vous satisfait de notre service ?") \
            .get_by_label(re.compile("^5")).check()
        citizen.get_by_label("Votre commentaire").fill("Réponse claire et rapide.")
        screenshot(citizen, "public-survey")
        with citizen.expect_navigation():
            citizen.get_by_role("button", name="Envoyer mes réponses").click()
        assert citizen.locator("h1").inner_text() == "Merci pour vos réponses"
        citizen.goto(survey)
        assert citizen.locator("h1").inner_text() == "Vous avez déjà répondu à cette enquête"
    finally:
        context.close()

    async def satisfaction() -> Any:
        from services.registry.reports import annual_report

        indicators = await annual_report(live.services.registry.store, int(number.split("-")[1]),
                                         live.services.registry.registry.policy.timezone)
        return indicators.get("satisfaction")

    assert live.run(satisfaction()) == {"responses": 1, "average_by_question": {
        "clarity": 4.0, "delay": None, "respect": None, "overall": 5.0}}


def test_a_link_sent_again_replaces_the_earlier_ones(citizen_stack, browser, tmp_path: Path):
    """"Send me my link again": the citizen lost the link (or it leaked in a forwarded mail), so the new link opens
    the file and the acknowledgment's link no longer does — it shows the page of a link that is expired or disabled,
    as any dead link does."""
    live = citizen_stack
    old_link, number = jeanne_complains(live, "Plainte : dossier de pension",
                                        "Ma pension de retraite est calculée sur une carrière incomplète.")

    context = browser.new_context(locale="fr-BE", java_script_enabled=False)
    context.set_default_timeout(20_000)
    try:
        citizen = context.new_page()
        citizen.goto(old_link)
        assert citizen.locator("h1").inner_text() == f"Votre dossier {number}"
        citizen.goto(live.url("/my-file/resend?lang=fr"))
        citizen.get_by_label("Numéro de dossier").fill(number.lower())
        citizen.get_by_label("Adresse électronique", exact=False).fill("Jeanne.Dupont@example.org")
        with citizen.expect_navigation():
            citizen.get_by_role("button", name="Envoyer le lien").click()
        assert "un nouveau lien personnel vient d'y être envoyé" in citizen.locator("main").inner_text()
        new_link, _subject = link_in_next_mail(live, "my-file")
        assert new_link.split("?")[0] != old_link.split("?")[0]

        citizen.goto(new_link)
        assert citizen.locator("h1").inner_text() == f"Votre dossier {number}"
        assert "carrière incomplète" in citizen.locator(".thread").inner_text()
        citizen.goto(old_link)
        assert citizen.locator("h1").inner_text() == "Ce lien ne mène à aucun dossier"
        assert "a expiré ou a été désactivé" in citizen.locator("main").inner_text()
        assert "carrière incomplète" not in citizen.content()
    finally:
        context.close()
