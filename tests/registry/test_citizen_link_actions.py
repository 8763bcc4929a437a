"""Issue 17's staff features in the back office, through ASGI on a real database (SQLite and PostgreSQL): the file
page's "personal link" section (what the register keeps of the citizen's links, never a token or its hash) with its
two actions — revoke the citizen's links, send a new one — each with a required reason, confirmed first, done with
the person as actor and recorded like every file action; and the satisfaction survey's comments on the annual report
page, for those who read the indicators, with nothing of who wrote them.

The registry is the real one with personal links on (a public web address, the link seal under `var/`); whether a
link still opens the file is asked of the citizen's own path (`CitizenResponder`), not read back from the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from services.registry.access.audit import AuditTrail
from services.registry.access.roles import Role
from services.registry.api import create_api
from services.registry.commands import AnswerSurvey, InviteToSurveys, ResendCitizenLink
from services.registry.models import CitizenLink, Complaint
from services.registry.public.citizen_responder import CitizenResponder
from shared.events import CitizenAccessRequest, ComplaintRegistered, NoticeRequested, SurveyAnswers
from shared.sealing import LinkSeal
from tests.backoffice.conftest import TEST_CSRF, BackofficeApp, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import principal
from tests.registry.test_citizen_access import linked_registry
from tests.registry.test_file_page import audit_of, changes_of, path, post, text_of

AGENT = principal("agent@med.example", Role.STAFF, account_id=11)
COLLEAGUE = principal("colleague@med.example", Role.STAFF, account_id=12)
ADMIN = principal("admin@med.example", Role.ADMIN, account_id=16)
DPO = principal("dpo@med.example", Role.DPO, account_id=14)
CHIEF = principal("chief@med.example", Role.SUPERVISOR, account_id=13)
TOKEN_IN_URL = re.compile(r"/my-file/([0-9a-f]{16}[A-Za-z0-9_-]{32})")


class LinkedApp(BackofficeApp):
    """The back office over a registry whose personal links are on; `.seal` opens the links its notices carry."""

    seal: LinkSeal
    responder: CitizenResponder

    def tokens_sent(self, number: str) -> list[str]:
        """The tokens of the links sent for `number`, oldest first: the acknowledgment's, then each `citizen_link`."""
        sealed = [e.citizen_link for e in self.publisher.of(ComplaintRegistered)
                  if e.complaint_number == number and e.citizen_link]
        sealed += [e.context["sealed_link"] for e in self.publisher.of(NoticeRequested)
                   if e.complaint_number == number and e.notice_kind == "citizen_link"]
        return [TOKEN_IN_URL.search(self.seal.open(s)).group(1) for s in sealed]

    async def opens(self, token: str) -> bool:
        """Whether the citizen's page would show the file for this token (the citizen's real path)."""
        found = await self.responder.file(CitizenAccessRequest(token=token, client_ip="192.0.2.7", user_agent="T/1"))
        return bool(found.found)

    async def links(self, number: str) -> list[CitizenLink]:
        async with self.store.reading() as tx:
            return list((await tx.session.execute(
                select(CitizenLink).join(Complaint, Complaint.id == CitizenLink.complaint_id)
                .where(Complaint.number == number).order_by(CitizenLink.id))).scalars())


@pytest.fixture
async def linked_app(database_url: str, tmp_path: Path) -> AsyncIterator[LinkedApp]:
    async with linked_registry(database_url, tmp_path, survey_kinds="complaint") as (registry, publisher, clock, seal):
        app = LinkedApp(create_api(registry), registry, clock, publisher)
        app.seal = seal
        app.responder = CitizenResponder(registry, registry.policy.citizen,
                                         AuditTrail(registry.store.engine, clock=clock))
        yield app


def section(html: str) -> str:
    """The visible words of the page's personal-link section."""
    found = re.search(r'<section class="panel" id="citizen-link".*?</section>', html, re.S)
    assert found, "no personal-link section"
    return text_of(found.group(0))


# --- what the section shows ------------------------------------------------------------------------------------------
async def test_the_section_shows_the_citizens_links_and_never_a_token_or_its_hash(linked_app):
    app = linked_app
    number = await app.file(name="Jeanne Dupont", email="jeanne@example.org", handler=AGENT.email)
    [token] = app.tokens_sent(number)  # the acknowledgment's link
    assert await app.opens(token)
    [stored] = await app.links(number)
    async with app.client(AGENT) as client:
        page = await client.get(path(number))
    assert page.status_code == 200
    words = section(page.text)
    assert "Lien personnel" in words and "Liens actifs du citoyen : 1" in words
    # Issued at registration (24/11/2026 10:30 in Brussels), by the system, working; the file is open.
    assert "24/11/2026" in words and "registre (automatique)" in words and "actif" in words
    assert "tant que le dossier est ouvert, puis 180 jours après sa clôture" in words
    for secret in (token, token[:16], token[16:], stored.verifier_hash, stored.selector):
        assert secret not in page.text
    # Both actions are offered, each with a required reason.
    assert 'action="/backoffice/files/{0}/actions/revoke_links"'.format(number) in page.text
    assert 'action="/backoffice/files/{0}/actions/send_link"'.format(number) in page.text
    assert page.text.count('name="reason" maxlength="500" required') == 2


async def test_the_section_is_in_the_readers_language(linked_app):
    app = linked_app
    number = await app.file(handler=AGENT.email)
    for language, words in (("nl", "Persoonlijke link"), ("de", "Persönlicher Link"), ("en", "Personal link")):
        async with app.client(principal(AGENT.email, Role.STAFF, account_id=11, language=language)) as client:
            page = await client.get(path(number))
        assert words in section(page.text), language


async def test_a_closed_file_says_until_when_its_links_work_and_an_old_one_offers_no_new_link(linked_app):
    app = linked_app
    number = await app.file(handler=AGENT.email)
    async with app.store.transaction() as tx:
        await tx.session.execute(update(Complaint).where(Complaint.number == number).values(
            status="closed", closed_at=datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)))
    async with app.client(AGENT) as client:
        recent = section((await client.get(path(number))).text)
        app.clock.advance(days=200)  # past the 180 days after closing (28/11/2026)
        old = section((await client.get(path(number))).text)
    assert "fonctionnent jusqu'au 28/11/2026 inclus" in recent and "Liens actifs du citoyen : 1" in recent
    assert "Le citoyen n'a aucun lien actif." in old and "expiré" in old
    assert "un nouveau lien ne l'ouvrirait pas" in old and "Envoyer un nouveau lien" not in old
    assert "Révoquer les liens du citoyen" in old  # it would work again if the file were reopened


async def test_without_links_configured_the_page_says_so_and_offers_no_new_link(backoffice_app):
    app = backoffice_app  # the default settings: no public web address, no link issued
    number = await app.file(handler=AGENT.email)
    async with app.client(AGENT) as client:
        page = await client.get(path(number))
        forced = await post(client, path(number, "/actions/send_link"), reason="perdu", confirmed="1")
    words = section(page.text)
    assert "Aucun lien n'a été émis pour ce dossier." in words
    assert "Les liens personnels sont désactivés dans ce bureau" in words
    assert "Envoyer un nouveau lien" not in words and "Révoquer" not in words
    # Posted anyway: nothing could be sent, and the page says so rather than "sent".
    assert forced.status_code == 303 and forced.headers["location"].endswith("?done=send_link_unreachable")
    async with app.client(AGENT) as client:
        shown = await client.get(forced.headers["location"])
    assert "Aucun lien n'a pu être envoyé" in text_of(shown.text)
    assert [e for e in app.publisher.of(NoticeRequested) if e.notice_kind == "citizen_link"] == []


# --- the actions -----------------------------------------------------------------------------------------------------
async def test_revoking_asks_a_reason_then_confirmation_then_the_links_stop_opening_the_file(linked_app):
    app = linked_app
    number = await app.file(handler=AGENT.email)
    [token] = app.tokens_sent(number)
    async with app.client(AGENT) as client:
        blank = await post(client, path(number, "/actions/revoke_links"), reason="  \t ")
        asked = await post(client, path(number, "/actions/revoke_links"), reason="Courriel  transféré\npar erreur")
        assert await app.opens(token)  # nothing happened before the confirmation
        done = await post(client, path(number, "/actions/revoke_links"), reason="Courriel  transféré\npar erreur",
                          confirmed="1")
        page = await client.get(done.headers["location"])
        again = await post(client, path(number, "/actions/revoke_links"), reason="encore", confirmed="1")
    assert blank.status_code == 422 and "Indiquez la raison" in text_of(blank.text)
    assert asked.status_code == 200
    assert "Révoquer tous les liens personnels de ce dossier" in text_of(asked.text)
    assert 'name="confirmed" value="1"' in asked.text
    assert done.status_code == 303 and done.headers["location"] == path(number, "?done=revoke_links")
    assert not await app.opens(token)
    [link] = await app.links(number)
    assert link.revoked_at is not None and link.revoked_by == AGENT.email
    words = section(page.text)
    assert "Liens du citoyen révoqués." in text_of(page.text)
    assert "Le citoyen n'a aucun lien actif." in words and "révoqué" in words and AGENT.email in words
    assert "Révoquer les liens du citoyen" not in words  # nothing left to revoke
    # A second revocation changes nothing, and says so.
    assert again.headers["location"] == path(number, "?done=revoke_links_none")
    revocations = [(c.actor, c.reason) for c in await changes_of(app, number) if c.change == "citizen_links_revoked"]
    assert revocations == [(AGENT.email, "Courriel transféré par erreur")]
    audited = [(e.action, e.actor, e.reason) for e in await audit_of(app, number) if e.action.startswith("change.")]
    assert sorted(audited) == [("change.revoke_citizen_links", AGENT.email, "Courriel transféré par erreur"),
                               ("change.revoke_citizen_links", AGENT.email, "encore")]


async def test_sending_a_new_link_revokes_the_earlier_ones_and_mails_one_that_opens_the_file(linked_app):
    app = linked_app
    number = await app.file(email="jeanne@example.org", handler=AGENT.email)
    [first] = app.tokens_sent(number)
    async with app.client(AGENT) as client:
        blank = await post(client, path(number, "/actions/send_link"), confirmed="1")
        asked = await post(client, path(number, "/actions/send_link"), reason="Lien perdu")
        # htmx: the confirmation, then the file swapped in place with what was done.
        done = await client.post(path(number, "/actions/send_link"), headers={"HX-Request": "true"},
                                 data={"csrf_token": TEST_CSRF, "reason": "Lien perdu", "confirmed": "1"})
    assert blank.status_code == 422 and "Indiquez la raison" in text_of(blank.text)
    assert "envoyer un nouveau lien personnel au citoyen" in text_of(asked.text)
    assert done.status_code == 200 and "<html" not in done.text
    assert "Nouveau lien envoyé au citoyen ; les précédents sont révoqués." in text_of(done.text)
    assert "Liens actifs du citoyen : 1" in section(done.text) and "révoqué" in section(done.text)
    [notice] = [e for e in app.publisher.of(NoticeRequested) if e.notice_kind == "citizen_link"]
    assert notice.recipient.email == "jeanne@example.org"
    [_, second] = app.tokens_sent(number)
    assert second not in done.text and second[16:] not in done.text
    assert not await app.opens(first) and await app.opens(second)
    links = await app.links(number)
    assert [(link.issued_by, link.revoked_by) for link in links] == [("registry", AGENT.email), (AGENT.email, None)]
    assert [(c.change, c.actor, c.reason) for c in await changes_of(app, number)
            if c.change.startswith("citizen_link")] == [("citizen_links_revoked", AGENT.email, "Lien perdu"),
                                                       ("citizen_link_sent", AGENT.email, "Lien perdu")]
    audited = [(e.action, e.actor, e.reason) for e in await audit_of(app, number) if e.action.startswith("change.")]
    assert audited == [("change.issue_citizen_link", AGENT.email, "Lien perdu")]


async def test_links_the_citizen_asked_for_again_are_shown_with_who_replaced_what(linked_app):
    app = linked_app
    number = await app.file(email="jeanne@example.org", handler=AGENT.email)
    assert await app.registry.handle(ResendCitizenLink(number, "jeanne@example.org"))
    async with app.client(AGENT) as client:
        before = section((await client.get(path(number))).text)
        [_, again] = app.tokens_sent(number)
        assert await app.opens(again)  # the new link, first opened, replaces the earlier one
        after = section((await client.get(path(number))).text)
    # Until then both work (the mail might not arrive); afterwards only the one the citizen opened.
    assert "Liens actifs du citoyen : 2" in before and "le citoyen (« renvoyer mon lien »)" in before
    assert "Liens actifs du citoyen : 1" in after
    assert "remplacé : le citoyen a ouvert un lien plus récent" in after and "superseded" not in after


async def test_only_those_who_may_act_on_a_file_they_read_can_touch_its_links(linked_app):
    app = linked_app
    number = await app.file(handler=AGENT.email)
    protected = await app.file(handler=AGENT.email, data_protection=True)
    [token] = app.tokens_sent(number)
    async with app.client(ADMIN) as client:  # accounts and the report, no file
        admin = await post(client, path(number, "/actions/revoke_links"), reason="x", confirmed="1")
    async with app.client(COLLEAGUE) as client:  # not the handler, no reason stated for reading the file
        colleague = await post(client, path(number, "/actions/send_link"), reason="x", confirmed="1")
        hidden = await post(client, path(protected, "/actions/revoke_links"), reason="x", confirmed="1")
    assert admin.status_code == 403
    assert colleague.status_code == 303 and colleague.headers["location"] == path(number)  # to the reason form
    assert hidden.status_code == 403
    assert await app.opens(token)
    assert [link.revoked_at for link in await app.links(number)] == [None]
    assert [link.revoked_at for link in await app.links(protected)] == [None]
    assert [e for e in app.publisher.of(NoticeRequested) if e.notice_kind == "citizen_link"] == []


def test_every_message_an_action_can_end_with_is_in_the_catalogue():
    from services.registry.backoffice.i18n import catalog
    from services.registry.backoffice.pages.file import PLAIN_CONFIRMATIONS
    from services.registry.backoffice.pages.file_actions import DONE_KEYS
    from services.registry.backoffice.pages.file_view import LINK_ACTORS

    keys = ([f"file.done.{key}" for key in DONE_KEYS] + [f"file.confirm.{name}" for name in PLAIN_CONFIRMATIONS]
            + [f"file.citizen_link.state.{state}" for state in ("active", "revoked", "expired", "merged")]
            + [f"file.citizen_link.unavailable.{why}" for why in ("off", "merged", "unreachable", "expired")]
            + list(LINK_ACTORS.values()))
    assert {"file.done.revoke_links_none", "file.done.send_link_unreachable"} <= set(keys)
    assert [key for key in keys if key not in catalog()] == []


# --- the survey's comments on the annual report page ------------------------------------------------------------------
async def _answer(app: LinkedApp, comment: str) -> None:
    """A citizen answers the survey of a file just closed (invited by the watcher's sweep, answered by token)."""
    number = await app.file(handler=AGENT.email, kind="complaint")
    async with app.store.transaction() as tx:
        await tx.session.execute(update(Complaint).where(Complaint.number == number)
                                 .values(status="closed", closed_at=app.clock()))
    assert await app.registry.handle(InviteToSurveys(app.clock().date())) == 1
    [invitation] = [e for e in app.publisher.of(NoticeRequested)
                    if e.notice_kind == "survey_invitation" and e.complaint_number == number]
    token = app.seal.open(invitation.context["sealed_link"]).split("/survey/")[1].split("?")[0]
    await app.registry.handle(AnswerSurvey(token, SurveyAnswers(overall=3, comment=comment)))


async def test_the_annual_report_page_shows_the_years_survey_comments_and_nothing_of_who_wrote_them(linked_app):
    app = linked_app
    hostile = "<script>alert('x')</script> Trop long\u202e à mon goût."
    await _answer(app, "Merci pour votre écoute.")
    await _answer(app, hostile)
    await _answer(app, "")  # an answer without a comment shows nothing
    async with app.client(CHIEF) as client:
        page = await client.get("/backoffice/annual-report?year=2026")
        other_year = await client.get("/backoffice/annual-report?year=2025")
    async with app.client(DPO) as client:  # files and the audit, not the indicators
        refused = await client.get("/backoffice/annual-report?year=2026")
    assert page.status_code == 200
    found = re.search(r'<section aria-labelledby="survey-comments-title".*?</section>', page.text, re.S)
    assert found
    comments = found.group(0)
    assert "Commentaires de l'enquête de satisfaction 2026" in text_of(comments)
    assert "Commentaires : 2." in text_of(comments)
    assert "Merci pour votre écoute." in comments
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in comments and "<script>alert" not in page.text
    # Nothing of a file or a person: no file number, no address, no link, no date of an answer.
    for number in await _numbers(app):
        assert number not in comments
    assert "@" not in comments and "/files/" not in comments and "24/11/2026" not in comments
    assert "Aucun commentaire pour cette année." in text_of(other_year.text)
    assert refused.status_code == 403


async def _numbers(app: LinkedApp) -> list[str]:
    async with app.store.reading() as tx:
        return list((await tx.session.execute(select(Complaint.number))).scalars())
