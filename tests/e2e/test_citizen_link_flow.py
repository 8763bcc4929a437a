"""Issue 17's citizen's view and survey, end to end over real parts (NATS, the three services, SMTP both ways, the
public web port): a complaint arrives by SMTP; its acknowledgment in the mail catcher carries the personal link; the
link's page shows the status and the thread; a document sent through it is threaded into the file as a verified
follow-up; an unknown and a revoked link show nothing; once the file is closed the survey invitation is mailed, the
survey is answered once (a second answer refused) and counted in the year's indicators."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from email.message import EmailMessage

import httpx
import pytest

from ombudsdesk.embedded_nats import free_port
from ombudsdesk.mailcatcher import MailCatcher
from services.registry.commands import RevokeCitizenLinks, Transition
from services.registry.reports import annual_report
from services.registry.public.citizen_access import new_token
from tests.e2e.stack import InProcessStack, StackConfig, complaint_mail, send_mail_async, start_catcher
from tests.probes import eventually

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/my-file/[0-9a-f]{16}[A-Za-z0-9_-]{32}(?:\?lang=[a-z]{2})?)")
SURVEY = re.compile(r"(http://127\.0\.0\.1:\d+/survey/[0-9a-f]{16}[A-Za-z0-9_-]{32}(?:\?lang=[a-z]{2})?)")
CITIZEN = "jeanne.dupont@example.org"


@pytest.fixture
async def stack(nats_server, tmp_path, monkeypatch):
    catcher = await start_catcher(tmp_path / "outbox")
    web_port = free_port()
    # One variable for the public web's address, read by intake (its pages) and the registry (the links it issues).
    monkeypatch.setenv("OMBUDSDESK_PUBLIC_WEB_URL", f"http://127.0.0.1:{web_port}/")
    monkeypatch.setenv("OMBUDSDESK_DEADLINE_CHECK_INTERVAL_SECONDS", "0.5")  # the survey sweep runs with it
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=catcher.port)
    services = InProcessStack(config, intake_settings={"public_web_port": web_port})
    await services.start()
    try:
        yield services, catcher, config
    finally:
        await services.stop()
        await catcher.stop()


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()


async def mail_where(catcher: MailCatcher, wanted: Callable[[EmailMessage], bool], timeout: float = 30) -> EmailMessage:
    """The next mail that matches (others, such as a follow-up's confirmation, are passed over)."""
    while True:
        mail = await catcher.next_mail(timeout=timeout)
        if wanted(mail):
            return mail


async def test_the_citizen_follows_the_file_writes_through_the_link_and_answers_the_survey(stack, capfd):
    services, catcher, config = stack
    await send_mail_async(config.smtp_port, complaint_mail(
        f"Jeanne Dupont <{CITIZEN}>", "Plainte : pension non versée", "Ma pension de novembre n'a pas été versée."))
    acknowledgment = await mail_where(catcher, lambda m: "/my-file/" in text_of(m))
    number = re.search(r"MED-\d{4}-\d{5}", acknowledgment["Subject"]).group(0)
    link = LINK.search(text_of(acknowledgment)).group(1)
    assert f'href="{link}"' in acknowledgment.get_body(("html",)).get_content()

    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(link)
        assert page.status_code == 200 and number in page.text
        assert "Plainte : pension non versée" in page.text and "Ma pension de novembre" in page.text
        form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        sent = await browser.post(link, data={"form_token": form_token, "lang": "fr",
                                              "message": "Voici l'extrait de compte."},
                                  files=[("documents", ("extrait.pdf", PDF, "application/pdf"))],
                                  follow_redirects=False)
        assert sent.status_code == 303

        async def follow_up():
            file = await services.registry.store.complaint_file(number)
            return [m for m in file[1] if m.message_key.startswith("link-")]

        [entry] = await eventually(follow_up, bool, timeout=20)
        assert entry.sender_email == CITIZEN and entry.sender_verdict == "verified"
        assert [a["filename"] for a in entry.attachments] == ["extrait.pdf"]
        shown = await browser.get(link)
        assert "Voici l'extrait de compte." in html.unescape(shown.text) and "extrait.pdf" in shown.text

        base = link.split("/my-file/")[0]
        assert (await browser.get(f"{base}/my-file/{new_token().token}")).status_code == 404

        # The file is answered and closed: the survey invitation follows.
        registry = services.registry.registry
        await registry.handle(Transition(number, "in_review", "agent@ombudsdesk"))
        await registry.handle(Transition(number, "answered", "agent@ombudsdesk",
                                         answer_text="Votre pension a été versée le 3 décembre."))
        await registry.handle(Transition(number, "closed", "agent@ombudsdesk", outcome="founded",
                                         category="file_processing"))
        invitation = await mail_where(catcher, lambda m: "/survey/" in text_of(m))
        assert number in invitation["Subject"] and invitation["To"].addresses[0].addr_spec == CITIZEN
        survey = SURVEY.search(text_of(invitation)).group(1)
        form = await browser.get(survey)
        assert form.status_code == 200 and "Nos explications étaient-elles claires" in form.text
        answers = {"form_token": re.search(r'name="form_token" value="([^"]+)"', form.text).group(1),
                   "lang": "fr", "clarity": "4", "delay": "3", "respect": "5", "overall": "4",
                   "comment": "Accueil aimable."}
        answered = await browser.post(survey, data=answers, follow_redirects=False)
        assert answered.status_code == 303
        again = await browser.post(survey, data={**answers, "overall": "1"}, follow_redirects=False)
        assert again.status_code == 409 and "déjà répondu" in html.unescape(again.text)

        # Staff revoke the link: it shows nothing any more.
        await registry.handle(RevokeCitizenLinks(number, "agent@ombudsdesk", "mail forwarded by mistake"))
        assert (await browser.get(link)).status_code == 404

    # Neither token was logged by any of the three services (their logs go to this process's output).
    logged = "".join(capfd.readouterr())
    assert "registry.message_received" in logged
    for token in (link.split("/my-file/")[1][:48], survey.split("/survey/")[1][:48]):
        assert token[16:] not in logged and token not in logged
    year = int(number.split("-")[1])
    indicators = await annual_report(services.registry.store, year, registry.policy.timezone)
    assert indicators["satisfaction"] == {"responses": 1, "average_by_question": {
        "clarity": 4.0, "delay": 3.0, "respect": 5.0, "overall": 4.0}}
