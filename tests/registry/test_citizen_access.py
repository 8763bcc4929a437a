"""The citizen's personal link in the register (issue 17), on SQLite and PostgreSQL, without NATS: tokens (random,
hash only stored, compared in constant time, expiring, revocable), what the link shows and what it never shows, the
audit trail of every access, "send me my link again", and how a message sent through the link becomes a verified
follow-up while a forged or replayed proof is held."""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from services.registry.public import citizen_access
from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.public.citizen_access import CitizenPolicy, link_usable, new_token, verifier_matches
from services.registry.public.citizen_responder import CitizenResponder
from services.registry.commands import AddNote, RevokeCitizenLinks
from services.registry.handlers import Registry
from services.registry.handlers.citizen_access import SUPERSEDED
from services.registry.models import CitizenLink, Complaint, HeldMessage, OutboxEvent, ThreadMessage
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from shared.events import (
    CitizenAccessRequest,
    CitizenLinkResendRequest,
    ComplaintRegistered,
    MessageReceived,
    NoticeRequested,
    Party,
    SenderVerdict,
    citizen_message_proof,
    citizen_token_parts,
)
from shared.sealing import LinkSeal
from tests.registry.conftest import CapturingPublisher, Clock, received

ZONE = ZoneInfo("Europe/Brussels")
BASE = "https://public.example.be/"
JEANNE = "jeanne.dupont@example.org"
TOKEN_IN_URL = re.compile(r"/my-file/([0-9a-f]{16}[A-Za-z0-9_-]{32})\?lang=fr$")


class Desk:
    """A registry whose personal links are on, its captured events, clock, seal and audit trail."""

    def __init__(self, registry: Registry, publisher: CapturingPublisher, clock: Clock, seal: LinkSeal,
                 audit: AuditTrail) -> None:
        self.registry, self.publisher, self.clock, self.seal, self.audit = registry, publisher, clock, seal, audit
        self.responder = CitizenResponder(registry, registry.policy.citizen, audit)

    async def register(self, **fields: object) -> tuple[str, str]:
        """A complaint from Jeanne: its number and the token of the link its acknowledgment carries."""
        outcome = await self.registry.handle(received(language="fr", **fields))
        [event] = [e for e in self.publisher.of(ComplaintRegistered) if e.complaint_number == outcome.number]
        url = self.seal.open(event.citizen_link)
        return outcome.number, TOKEN_IN_URL.search(url).group(1)

    async def view(self, token: str, *, writing: bool = False):
        return await self.responder.file(CitizenAccessRequest(token=token, client_ip="192.0.2.7",
                                                              user_agent="Test/1", writing=writing))

    async def actions(self) -> list[tuple[str, str | None, dict]]:
        return [(r.action, r.number, r.details) for r in reversed(await self.audit.search(AuditFilter(limit=100)))]

    async def set_complaint(self, number: str, **values: object) -> None:
        async with self.registry.store.transaction() as tx:
            await tx.session.execute(update(Complaint).where(Complaint.number == number).values(**values))


@asynccontextmanager
async def linked_registry(database_url: str, tmp_path: Path, **settings: object
                          ) -> AsyncIterator[tuple[Registry, CapturingPublisher, Clock, LinkSeal]]:
    """A `Registry` on a migrated database whose personal links are on (the public web's address set), with its
    captured events, a settable clock and the seal the notifier would open the links with."""
    engine = create_engine(database_url)
    await migrate(engine)
    store = RegistryStore(engine)
    publisher = CapturingPublisher()
    publisher.store = store
    clock = Clock(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    policy = policy_from_settings(RegistrySettings(public_web_url=BASE, var_dir=tmp_path / "var", **settings))
    try:
        yield Registry(store, policy, publisher, clock=clock), publisher, clock, LinkSeal(
            tmp_path / "var" / "citizen-link.key")
    finally:
        await engine.dispose()


@pytest.fixture
async def desk(database_url, tmp_path):
    async with linked_registry(database_url, tmp_path, citizen_link_days_after_close=180) as (
            registry, publisher, clock, seal):
        yield Desk(registry, publisher, clock, seal, AuditTrail(registry.store.engine, clock=clock))


# --- tokens (pure) -----------------------------------------------------------------------------------------------------
def test_tokens_are_random_well_formed_and_only_their_hash_is_kept():
    tokens = [new_token() for _ in range(200)]
    assert len({t.token for t in tokens}) == 200
    for t in tokens[:20]:
        selector, verifier = citizen_token_parts(t.token)
        assert selector == t.selector and len(verifier) == 32  # 24 random bytes: 192 bits
        assert t.verifier_hash != verifier and verifier not in t.verifier_hash and len(t.verifier_hash) == 64
        assert verifier_matches(t.verifier_hash, verifier)
        assert not verifier_matches(t.verifier_hash, verifier[:-1] + ("A" if verifier[-1] != "A" else "B"))
    for malformed in ("", "x" * 48, t.token[:-1], t.token + "A", t.token.upper(), "../" + t.token[3:],
                      t.token[:16] + "+" + t.token[17:]):
        assert citizen_token_parts(malformed) is None


def test_the_verifier_is_compared_in_constant_time(monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(citizen_access.hmac, "compare_digest", spy)
    token = new_token()
    assert verifier_matches(token.verifier_hash, citizen_token_parts(token.token)[1])
    assert compared and compared[-1][0] == token.verifier_hash.encode()


def _complaint(closed_at: datetime | None, status: str = "closed") -> Complaint:
    return Complaint(number="MED-2026-00001", status=status, closed_at=closed_at)


def test_a_link_expires_the_configured_days_after_the_file_closes_and_never_once_revoked():
    policy = CitizenPolicy(public_url=BASE, link_days_after_close=180)
    link = CitizenLink(revoked_at=None)
    closed = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    assert link_usable(link, _complaint(None, "in_review"), policy, date(2030, 1, 1), ZONE)  # open: no end
    assert link_usable(link, _complaint(closed), policy, date(2026, 3, 1) + timedelta(days=180), ZONE)
    assert not link_usable(link, _complaint(closed), policy, date(2026, 3, 1) + timedelta(days=181), ZONE)
    assert not link_usable(CitizenLink(revoked_at=closed), _complaint(None, "in_review"), policy, date(2026, 3, 2),
                           ZONE)
    assert not link_usable(link, _complaint(None, "merged"), policy, date(2026, 3, 2), ZONE)


# --- the register --------------------------------------------------------------------------------------------------
async def test_registration_issues_a_link_whose_token_is_stored_nowhere(desk):
    number, token = await desk.register()
    selector, verifier = citizen_token_parts(token)
    async with desk.registry.store.reading() as tx:
        [link] = (await tx.session.execute(select(CitizenLink))).scalars().all()
        payloads = [row.payload for row in (await tx.session.execute(select(OutboxEvent))).scalars()]
    assert link.selector == selector and link.verifier_hash == citizen_access.citizen_verifier_hash(verifier)
    assert payloads and not any(verifier in payload for payload in payloads)  # sealed in the event, not in clear
    found = await desk.view(token)
    assert found.found and found.number == number and found.status == "received"
    assert found.received_on == date(2026, 11, 24) and found.answer_due is not None
    assert await desk.actions() == [("citizen.view", number, {})]


async def test_an_unknown_or_altered_link_shows_nothing_and_is_audited(desk):
    number, token = await desk.register()
    wrong_verifier = token[:16] + ("a" if token[16] != "a" else "b") + token[17:]
    assert not (await desk.view(wrong_verifier)).found
    assert not (await desk.view(new_token().token)).found
    shown = await desk.view(wrong_verifier)
    assert shown.number is None and shown.messages == ()
    assert [(a, n, d) for a, n, d in await desk.actions()] == [("citizen.denied", None, {"reason": "unknown"})] * 3


async def test_the_link_shows_the_citizens_thread_and_nothing_internal(desk):
    number, token = await desk.register()
    await desk.registry.handle(AddNote(number, "Note interne: appeler le service", actor="agent@ombudsdesk"))
    complaint = await desk.registry.store.complaint(number)
    at = desk.clock()
    async with desk.registry.store.transaction() as tx:
        tx.stage(
            ThreadMessage(complaint_id=complaint.id, direction="in", message_key="admin-1", sender_email="fin@gov.be",
                          body="Réponse de l'administration", party="administration", citizen_visible=False,
                          occurred_at=at),
            ThreadMessage(complaint_id=complaint.id, direction="in", message_key="corr-1",
                          sender_email="avocat@example.org", body="Message du conseil", occurred_at=at),
            ThreadMessage(complaint_id=complaint.id, direction="out", message_key="out:ack", recipient=JEANNE,
                          subject_line=f"[{number}] Accusé de réception", notice_kind="acknowledgment",
                          occurred_at=at + timedelta(minutes=1)),
            ThreadMessage(complaint_id=complaint.id, direction="out", message_key="out:pos", recipient="fin@gov.be",
                          subject_line="Demande de position", notice_kind="position_request", occurred_at=at),
            ThreadMessage(complaint_id=complaint.id, direction="in", message_key="auto-1", sender_email=JEANNE,
                          body="Absent du bureau", automated=True, occurred_at=at))
    found = await desk.view(token)
    shown = [(m.direction, m.subject, m.text) for m in found.messages]
    assert shown == [("in", "Plainte: facture incorrecte", "Madame, Monsieur, je conteste la facture."),
                     ("out", f"[{number}] Accusé de réception", "")]
    text = found.model_dump_json()
    for secret in ("Note interne", "administration", "conseil", "Demande de position", "Absent", "screening"):
        assert secret not in text


async def test_revoked_and_expired_links_show_nothing(desk):
    number, token = await desk.register()
    assert (await desk.view(token)).found
    assert await desk.registry.handle(RevokeCitizenLinks(number, actor="agent@ombudsdesk", reason="mail lost")) == 1
    assert not (await desk.view(token)).found
    number2, token2 = await desk.register(key="second")
    await desk.set_complaint(number2, status="closed", closed_at=desk.clock() - timedelta(days=181))
    assert not (await desk.view(token2)).found
    await desk.set_complaint(number2, closed_at=desk.clock() - timedelta(days=179))
    assert (await desk.view(token2)).found
    assert [(a, n, d.get("reason")) for a, n, d in await desk.actions()] == [
        ("citizen.view", number, None), ("citizen.denied", number, "revoked"),
        ("citizen.denied", number2, "expired"), ("citizen.view", number2, None)]


async def test_the_link_is_sent_again_only_to_the_files_own_address_a_few_times_a_day(desk):
    number, first = await desk.register()

    async def resend(email: str) -> None:
        await desk.responder.resend(CitizenLinkResendRequest(number=number.lower(), email=email,
                                                             client_ip="192.0.2.9"))

    def links_sent() -> list[NoticeRequested]:
        return [e for e in desk.publisher.of(NoticeRequested) if e.notice_kind == "citizen_link"]

    await resend("someone@else.example")
    assert links_sent() == []
    for _ in range(4):
        await resend(" Jeanne.Dupont@Example.org ")
    sent = links_sent()
    assert len(sent) == 3  # the day's allowance (citizen_link_resends_per_day)
    assert sent[0].recipient.email == JEANNE
    tokens = [TOKEN_IN_URL.search(desk.seal.open(e.context["sealed_link"])).group(1) for e in sent]
    assert len(set(tokens)) == 3
    # Asking is not enough to cut anyone off (whoever knows the number and the address may ask): every link still
    # opens until a newer one is opened — then the links issued before that one stop, the later ones do not.
    assert (await desk.view(first)).found
    assert (await desk.view(tokens[1])).found
    assert not (await desk.view(first)).found and not (await desk.view(tokens[0])).found
    assert (await desk.view(tokens[2])).found
    assert not (await desk.view(tokens[1])).found
    denied = [d.get("reason") for a, n, d in await desk.actions() if a == "citizen.denied" and n == number]
    assert denied == ["revoked"] * 3
    assert [d["sent"] for a, _n, d in await desk.actions() if a == "citizen.resend"] == [False, True, True, True,
                                                                                         False]
    async with desk.registry.store.reading() as tx:
        links = (await tx.session.execute(select(CitizenLink).order_by(CitizenLink.id))).scalars().all()
    assert [(link.revoked_at is None, link.revoked_by) for link in links] == [
        (False, SUPERSEDED), (False, SUPERSEDED), (False, SUPERSEDED), (True, None)]
    desk.clock.advance(days=1, seconds=1)
    await resend(JEANNE)
    assert len(links_sent()) == 4
    fourth = TOKEN_IN_URL.search(desk.seal.open(links_sent()[-1].context["sealed_link"])).group(1)
    assert (await desk.view(tokens[-1])).found  # the new link's mail may never arrive: the old one still works
    assert (await desk.view(fourth)).found and not (await desk.view(tokens[-1])).found
    # A request that sends nothing (another address) changes nothing either.
    await resend("someone@else.example")
    assert (await desk.view(fourth)).found


async def test_a_reply_quoting_the_link_is_registered_without_it(desk):
    number, token = await desk.register()
    [registered] = [e for e in desk.publisher.of(ComplaintRegistered) if e.complaint_number == number]
    url = desk.seal.open(registered.citizen_link)
    survey_url = f"{BASE}survey/{new_token().token}?lang=nl"
    elsewhere = f"https://other.example/my-file/{new_token().token}"
    quoted = (f"Merci. Voici la pièce.\n\n> Vous pouvez aussi suivre votre dossier par ce lien personnel : {url}\n"
              f"> et l'enquête {survey_url}\n> Une autre adresse : {elsewhere}\n")
    reply = received(subject=f"Re: [{number}] {url}").model_copy(update={"text": quoted,
                                                                      "new_text": f"Merci ({url})."})
    outcome = await desk.registry.handle(reply)
    assert (outcome.action, outcome.number) == ("appended", number)
    # A stranger quoting it (held for staff) does not bring it into the holding pen either.
    stranger = received(email="mallory@example.net", subject=f"Re: {number}").model_copy(
        update={"text": f"Trouvé : {url}"})
    assert (await desk.registry.handle(stranger)).action == "held"
    async with desk.registry.store.reading() as tx:
        entry = await tx.thread_message_by_key(reply.message_key)
        held = (await tx.session.execute(select(HeldMessage.event))).scalars().all()
        complaint = await tx.complaint_by_number(number)
    stored = " ".join([entry.subject_line, entry.body, entry.new_text or "", *held, complaint.body or ""])
    assert token not in stored and survey_url.split("/")[-1].split("?")[0] not in stored
    assert entry.body.startswith("Merci. Voici la pièce.") and "personal link removed" in entry.body
    assert elsewhere in entry.body  # not our address: not our link
    assert "personal link removed" in entry.new_text and entry.subject_line.startswith(f"Re: [{number}]")
    assert (await desk.view(token)).found  # the link itself still works: only the register's copy lost it


# --- a message through the link ----------------------------------------------------------------------------------------
def _through_link(token: str, number: str, key: str) -> MessageReceived:
    return MessageReceived(message_key=key, channel="web_form", received_at=datetime(2026, 11, 25, tzinfo=timezone.utc),
                           sender=Party(language="fr"), subject_line=f"Message par mon lien personnel – {number}",
                           text="Voici la pièce manquante.", candidate_case_numbers=(number,),
                           citizen_link_proof=citizen_message_proof(token, key))


async def test_a_message_through_the_link_is_a_verified_follow_up_of_that_file(desk):
    number, token = await desk.register()
    outcome = await desk.registry.handle(_through_link(token, number, "link-1"))
    assert (outcome.action, outcome.number) == ("appended", number)
    async with desk.registry.store.reading() as tx:
        entry = await tx.thread_message_by_key("link-1")
    assert entry.sender_email == JEANNE and entry.sender_verdict == SenderVerdict.VERIFIED.value
    assert "personal link" in entry.sender_evidence
    assert [m.text for m in (await desk.view(token)).messages][-1] == "Voici la pièce manquante."


async def test_a_forged_replayed_or_revoked_proof_is_held_for_staff(desk):
    number, token = await desk.register()
    forged = _through_link(new_token().token[:16] + token[16:], number, "link-forged")
    replayed = _through_link(token, number, "link-2").model_copy(update={"message_key": "link-3"})
    for event in (forged, replayed):
        outcome = await desk.registry.handle(event)
        assert outcome.action == "held"
    # A mail naming the number, from a stranger, carries no proof: held as before (not the complainant).
    mail = received(email="mallory@example.net", subject=f"Re: {number}")
    assert (await desk.registry.handle(mail)).action == "held"
    await desk.registry.handle(RevokeCitizenLinks(number, actor="agent@ombudsdesk"))
    assert (await desk.registry.handle(_through_link(token, number, "link-4"))).action == "held"
    async with desk.registry.store.reading() as tx:
        held = (await tx.session.execute(select(HeldMessage.message_key))).scalars().all()
    assert set(held) == {"link-forged", "link-3", mail.message_key, "link-4"}


async def test_no_links_when_the_public_url_is_not_configured(database_url, tmp_path):
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        publisher = CapturingPublisher()
        publisher.store = store = RegistryStore(engine)
        policy = policy_from_settings(RegistrySettings(var_dir=tmp_path))
        registry = Registry(store, policy, publisher)
        await registry.handle(received())
        [event] = publisher.of(ComplaintRegistered)
        assert event.citizen_link is None
    finally:
        await engine.dispose()


async def test_staff_revoke_and_reissue_a_link_through_the_api(desk):
    from tests.registry.access.helpers import api_client

    number, token = await desk.register()
    async with await api_client(desk.registry) as client:
        revoked = await client.post(f"/complaints/{number}/citizen-link/revocation", json={"reason": "mail forwarded"})
        assert revoked.status_code == 200
        assert [c["change"] for c in revoked.json()["changes"]][-1] == "citizen_links_revoked"
        assert not (await desk.view(token)).found
        reissued = await client.post(f"/complaints/{number}/citizen-link", json={"reason": "asked by phone"})
        assert reissued.status_code == 200
        anonymous = await client.post(f"/complaints/{number}/citizen-link/revocation", json={},
                                      headers={"Authorization": "Bearer odk_forged"})
        assert anonymous.status_code == 401
    [notice] = [e for e in desk.publisher.of(NoticeRequested) if e.notice_kind == "citizen_link"]
    fresh = TOKEN_IN_URL.search(desk.seal.open(notice.context["sealed_link"])).group(1)
    assert (await desk.view(fresh)).found and fresh != token
    assert ("change.revoke_citizen_links", number) in [(a, n) for a, n, _d in await desk.actions()]


async def test_facts_stated_through_the_link_are_recorded_and_screened_again_those_of_a_mail_are_not(desk):
    """Issue 15: facts the citizen states on their file's page reach the file (change log "facts", proposal
    screened again); the same fields on a follow-up nobody verified change nothing."""
    number, token = await desk.register()
    stated = _through_link(token, number, "link-facts").model_copy(update={
        "facts_date": date(2026, 9, 14), "first_line_contacted": True, "last_step_date": date(2026, 10, 2)})
    assert (await desk.registry.handle(stated)).action == "appended"
    complaint = await desk.registry.store.complaint(number)
    assert (complaint.facts_date, complaint.first_line_contacted, complaint.last_step_date) == (
        date(2026, 9, 14), True, date(2026, 10, 2))
    _complaint, _thread, history, _parties = await desk.registry.store.complaint_file(number)
    changes = [c for c in history if c.change == "facts"]
    assert len(changes) == 1 and changes[0].details["first_line_contacted"] == {"from": None, "to": True}

    mail = MessageReceived(message_key="mail-facts", received_at=datetime(2026, 11, 26, tzinfo=timezone.utc),
                           sender=Party(email=JEANNE), subject_line=f"Re: {number}", text="Une précision.",
                           candidate_case_numbers=(number,), facts_date=date(2020, 1, 1),
                           first_line_contacted=False)
    assert (await desk.registry.handle(mail)).action == "appended"
    unchanged = await desk.registry.store.complaint(number)
    assert (unchanged.facts_date, unchanged.first_line_contacted) == (date(2026, 9, 14), True)
