"""Issue 15 end to end: mail goes in over real SMTP, through intake, NATS JetStream, the registry and the notifier,
and what comes out lands in a real mail catcher. A compliment is thanked without deadlines or appeal notice; a
message sent to the DPO's mailbox, whatever its words, becomes a data-protection file and the DPO is told of it once.
"""

from __future__ import annotations

import asyncio
import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.intake.settings import IntakeSettings
from services.intake.wiring import build_intake
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import build_notifier
from services.registry.screening_files import EXAMPLE_DIRECTORY, EXAMPLE_RULES
from services.registry.settings import RegistrySettings
from services.registry.wiring import build_registry
from shared.settings import load_settings
from tests.e2e.stack import COMPLAINT_ADDRESS, StackConfig, complaint_mail, send_mail_async, start_catcher

DPO_MAILBOX = "protection-donnees@ombudsdesk.localhost"
DPO_EMAIL = "dpo@example.org"  # the shipped screening example's DPO


@pytest.fixture
async def stack(nats_server, tmp_path: Path):
    """The three services, intake also accepting the DPO's mailbox, the registry's rules naming it."""
    catcher = await start_catcher(tmp_path / "outbox")
    rules_dir = tmp_path / "screening"
    rules_dir.mkdir()
    rules = EXAMPLE_RULES.read_text(encoding="utf-8").replace("addresses = []", f'addresses = ["{DPO_MAILBOX}"]')
    (rules_dir / "screening.toml").write_text(rules, encoding="utf-8")
    shutil.copy(EXAMPLE_DIRECTORY, rules_dir / "directory.toml")
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
                         notifier_database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
                         relay_port=catcher.port)
    mailboxes = [COMPLAINT_ADDRESS, DPO_MAILBOX]
    common = config.overrides()
    services = [
        build_registry(load_settings(RegistrySettings, **common, registry_database_url=config.registry_database_url,
                                     registry_api_port=0, screening_config_path=rules_dir)),
        build_notifier(load_settings(NotifierSettings, **common, notifier_database_url=config.notifier_database_url,
                                     relay_host="127.0.0.1", relay_port=config.relay_port, staff_language="en",
                                     complaint_addresses=mailboxes)),
        build_intake(load_settings(IntakeSettings, **common, smtp_port=config.smtp_port, intake_health_port=0,
                                   complaint_addresses=mailboxes)),
    ]
    for service in services:
        await service.start()
    try:
        yield config, catcher
    finally:
        for service in reversed(services):
            await service.stop()
        await catcher.stop()


async def caught(catcher, count: int) -> list[EmailMessage]:
    return [await catcher.next_mail(timeout=20) for _ in range(count)]


async def nothing_more(catcher, seconds: float = 1.5) -> None:
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await catcher.next_mail(timeout=seconds)


async def test_a_compliment_sent_by_smtp_is_thanked_without_deadline_or_appeal(stack):
    config, catcher = stack
    await send_mail_async(config.smtp_port, complaint_mail(
        "Jeanne Dupont <jeanne.dupont@example.org>", "Un grand merci",
        "Bonjour,\nje tiens à remercier votre service : félicitations pour votre excellent service, très satisfaite.\n"
        "Jeanne Dupont", message_id="<compliment-1@example.org>"))
    [thanks] = await caught(catcher, 1)
    text = thanks.get_body(("plain",)).get_content()
    assert thanks["To"].addresses[0].addr_spec == "jeanne.dupont@example.org"
    assert thanks["Subject"].endswith("] Merci pour votre message") and "MED-" in thanks["Subject"]
    assert "vos mots aimables" in text
    for absent in ("délai", "recours", "Médiateur fédéral", "second niveau", "au plus tard"):
        assert absent not in text, absent
    assert thanks["In-Reply-To"] == "<compliment-1@example.org>"
    await nothing_more(catcher)  # no DPO notice for an ordinary file


async def test_mail_to_the_dpo_mailbox_is_the_dpos_whatever_its_words_and_the_dpo_is_told_once(stack):
    config, catcher = stack
    mail = complaint_mail("Marie Secret <marie.secret@example.org>", "Question sur ma facture",
                          "Bonjour,\nje conteste le montant de ma facture de septembre.\nMarie Secret",
                          message_id="<to-dpo-1@example.org>")
    mail.replace_header("To", DPO_MAILBOX)
    await send_mail_async(config.smtp_port, mail)
    mails = await caught(catcher, 2)
    by_recipient = {m["To"].addresses[0].addr_spec: m for m in mails}
    assert set(by_recipient) == {"marie.secret@example.org", DPO_EMAIL}
    citizen, dpo = by_recipient["marie.secret@example.org"], by_recipient[DPO_EMAIL]
    number = dpo["Subject"][1:15]
    assert dpo["Subject"] == f"[{number}] New data-protection complaint"  # the staff language
    assert number in citizen["Subject"] and citizen["Subject"].endswith("Accusé de réception de votre réclamation")
    dpo_text = dpo.get_body(("plain",)).get_content()
    assert number in dpo_text
    for private in ("Marie", "Secret", "facture", "marie.secret"):
        assert private not in dpo_text and private not in dpo["Subject"]
    await nothing_more(catcher)  # the DPO is told once
