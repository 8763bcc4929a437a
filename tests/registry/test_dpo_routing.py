"""The DPO and data-protection complaints (issue 15): mail sent to a configured DPO mailbox is routed to the DPO
whatever its words (screening reads the recipients), and the DPO is told once, at registration, of every file
flagged `data_protection` — with its number and dates, nothing a citizen wrote."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from services.registry.mediation.dpo import dpo_notification
from services.registry.screening import ScreeningConfig, ScreeningConfigError, ScreeningInput, screen
from services.registry.screening_files import EXAMPLE_DIRECTORY, EXAMPLE_RULES
from shared.events import ComplaintRegistered, NoticeRequested
from tests.registry.conftest import received

DPO_MAILBOX = "protection-donnees@ombudsdesk.localhost"
DPO_EMAIL = "dpo@example.org"  # the shipped example's DPO


def config_with_mailboxes(*mailboxes: str) -> ScreeningConfig:
    rules = EXAMPLE_RULES.read_text(encoding="utf-8")
    assert "addresses = []" in rules
    listed = ", ".join(f'"{mailbox}"' for mailbox in mailboxes)
    return ScreeningConfig.from_toml(rules.replace("addresses = []", f"addresses = [{listed}]"),
                                     EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))


def innocent(**fields: object) -> ScreeningInput:
    values: dict[str, object] = dict(received=datetime(2026, 11, 24).date(), sender_name="Jeanne Dupont",
                                     sender_email="jeanne@example.org", subject="Bonjour",
                                     text="Je vous écris au sujet de ma facture de septembre.")
    values.update(fields)
    return ScreeningInput(**values)  # type: ignore[arg-type]


# --- screening --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipient", [DPO_MAILBOX, "Protection-Donnees@OmbudsDesk.localhost",
                                       f"<{DPO_MAILBOX}>", f"  {DPO_MAILBOX} "])
def test_mail_to_a_dpo_mailbox_goes_to_the_dpo_whatever_its_words(recipient: str):
    config = config_with_mailboxes(DPO_MAILBOX)
    assert not screen(innocent(recipients=("plaintes@ombudsdesk.localhost",)), config).route_to_dpo
    proposal = screen(innocent(recipients=("plaintes@ombudsdesk.localhost", recipient)), config)
    assert proposal.route_to_dpo and proposal.dpo_evidence == (f"to:{DPO_MAILBOX}",)
    assert proposal.to_dict()["route_to_dpo"] is True


def test_the_words_still_route_and_a_lookalike_address_does_not():
    config = config_with_mailboxes(DPO_MAILBOX)
    worded = screen(innocent(text="Je demande l'effacement de mes données personnelles (RGPD).",
                             recipients=("plaintes@ombudsdesk.localhost",)), config)
    assert worded.route_to_dpo and "RGPD" in worded.dpo_evidence
    for lookalike in (f"x{DPO_MAILBOX}", f"{DPO_MAILBOX}.evil.example", "protection-donnees@evil.example",
                      f"Protection <{DPO_MAILBOX}x>", ""):
        assert not screen(innocent(recipients=(lookalike,)), config).route_to_dpo, lookalike
    # No mailbox configured (the shipped example): recipients alone route nothing.
    assert not screen(innocent(recipients=(DPO_MAILBOX,)), config_with_mailboxes()).route_to_dpo


@pytest.mark.parametrize(("mailboxes", "problem"), [
    ((DPO_EMAIL,), "is the DPO's own address"),
    (("DPO@Example.org",), "is the DPO's own address"),
    (("not an address",), "not a mail address"),
])
def test_dpo_mailboxes_are_checked_when_the_rules_are_read(mailboxes: tuple[str, ...], problem: str):
    with pytest.raises(ScreeningConfigError, match=problem):
        config_with_mailboxes(*mailboxes)


def test_the_dpo_notice_carries_the_number_and_dates_only():
    config = config_with_mailboxes(DPO_MAILBOX)
    notice = dpo_notification("MED-2026-00009", datetime(2026, 11, 24).date(), datetime(2027, 1, 8).date(),
                              config.dpo)
    assert notice is not None
    assert (notice.notice_kind, notice.request_key, notice.recipient.email) == (
        "dpo_notification", "dpo_notification:MED-2026-00009", DPO_EMAIL)
    assert notice.recipient.name == "" and notice.recipient.language is None  # the notifier's staff language
    assert notice.context == {"legal_start": "2026-11-24", "answer_due": "2027-01-08"}
    assert dpo_notification("MED-2026-00009", datetime(2026, 11, 24).date(), None, None) is None


# --- registration -----------------------------------------------------------------------------------------------------
@pytest.fixture
async def registry_with_dpo_mailbox(registry_on_db):
    from services.registry.handlers import Registry

    registry, published, clock = registry_on_db
    policy = dataclasses.replace(registry.policy, screening=config_with_mailboxes(DPO_MAILBOX))
    return Registry(registry.store, policy, published, clock=clock), published, clock


def dpo_notices(published) -> list[NoticeRequested]:
    return [notice for notice in published.of(NoticeRequested) if notice.notice_kind == "dpo_notification"]


async def test_a_message_to_the_dpo_mailbox_is_registered_for_the_dpo_who_is_told_once(registry_with_dpo_mailbox):
    registry, published, clock = registry_with_dpo_mailbox
    message = received(at=clock.now, subject="Merci pour votre accueil").model_copy(
        update={"recipients": (DPO_MAILBOX,), "text": "Bonjour, je voulais simplement vous remercier."})
    outcome = await registry.on_message_received(message)
    ordinary = await registry.on_message_received(received(at=clock.now, subject="Facture contestée"))
    assert (outcome.action, ordinary.action) == ("registered", "registered")
    complaint = await registry.store.complaint(outcome.number)
    assert complaint.data_protection is True and complaint.handler == DPO_EMAIL
    assert (await registry.store.complaint(ordinary.number)).data_protection is False

    replay = await registry.on_message_received(message)  # redelivered: nothing new, no second notice
    assert replay.replay and replay.number == outcome.number
    [notice] = dpo_notices(published)
    assert notice.complaint_number == outcome.number and notice.recipient.email == DPO_EMAIL
    # The replay published the very same registration again (same id), and no second DPO notice.
    registered, again = [e for e in published.of(ComplaintRegistered) if e.complaint_number == outcome.number]
    assert registered.event_id == again.event_id
    assert notice.context == {"legal_start": registered.legal_start.isoformat(),
                              "answer_due": registered.answer_due.isoformat()}
    assert "Merci" not in notice.model_dump_json() and "Jeanne" not in notice.model_dump_json()


async def test_a_data_protection_complaint_by_its_words_notifies_the_dpo_too(registry_on_db):
    registry, published, clock = registry_on_db  # the shipped example: no DPO mailbox, keywords only
    protected = await registry.on_message_received(
        received(at=clock.now, subject="RGPD : on a publié mes données personnelles"))
    await registry.on_message_received(received(at=clock.now, subject="Facture d'énergie contestée"))
    assert [notice.complaint_number for notice in dpo_notices(published)] == [protected.number]
