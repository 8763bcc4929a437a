"""Issue 11 on the registry's side: the facts screening weighs are set by staff (handler, API, CLI) or come with a
letter's metadata; intake's rule record and the sender's new text are kept with each incoming message and shown
(file view, `register show`, holding pen). Real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from services.registry import views
from services.registry.cli import app
from services.registry.commands import AttachHeld, DecideScreening, RecordFacts
from services.registry.handlers import Conflict, Registry
from services.registry.repository import RegistryStore, migrate
from services.registry.screening_files import load_screening_config
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from shared.events import ComplaintChanged, RuleHit
from tests.registry.access.helpers import api_client
from tests.registry.conftest import LostRace, received

ZONE = ZoneInfo("Europe/Brussels")


def _reasons(complaint) -> list[str]:
    return [reason["code"] for reason in complaint.screening_proposal["reasons"]]


def _text(found, language: str = "fr") -> str:
    ctx = views.TextContext(language=language, zone=ZONE, screening=load_screening_config())
    return "\n".join(views.complaint_file_lines(*found, ctx))


async def test_staff_record_the_facts_and_screening_proposes_again(registry_on_db):
    registry, published, clock = registry_on_db  # received Tuesday 24 November 2026
    number = (await registry.on_message_received(received(at=clock.now))).number
    assert _reasons(await registry.store.complaint(number)) == []

    # Facts of January 2024, more than the configured 365 days before receipt, no step since; the service
    # concerned was not contacted first: both are reasons to propose inadmissibility.
    await registry.handle(RecordFacts(number, "agent@med.be", "au téléphone", facts_date=date(2024, 1, 10),
                                      first_line_contacted=False))
    complaint = await registry.store.complaint(number)
    assert (complaint.facts_date, complaint.last_step_date, complaint.first_line_contacted) == (
        date(2024, 1, 10), None, False)
    assert sorted(_reasons(complaint)) == ["facts_too_old", "first_line_not_contacted"]
    # A step taken in October 2026 is within the 365 days: the facts are no longer too old.
    await registry.handle(RecordFacts(number, "agent@med.be", last_step_date=date(2026, 10, 1)))
    assert _reasons(await registry.store.complaint(number)) == ["first_line_not_contacted"]
    # Recording the same facts again changes nothing and logs nothing.
    await registry.handle(RecordFacts(number, "agent@med.be", last_step_date=date(2026, 10, 1)))
    await registry.handle(RecordFacts(number, "agent@med.be", "erreur de saisie", forget=("first_line_contacted",)))
    complaint = await registry.store.complaint(number)
    assert complaint.first_line_contacted is None and _reasons(complaint) == []

    facts = [c for c in published.of(ComplaintChanged) if c.change == "facts"]
    assert [(c.actor, c.reason) for c in facts] == [("agent@med.be", "au téléphone"), ("agent@med.be", None),
                                                    ("agent@med.be", "erreur de saisie")]
    assert facts[0].details == {"facts_date": {"from": None, "to": "2024-01-10"},
                                "first_line_contacted": {"from": None, "to": False},
                                "proposal_admissible": False}
    text = _text(await registry.store.complaint_file(number))
    assert ("Faits consignés\u00a0: Date des faits \u2014 → 10/01/2024\u00a0; Service concerné contacté d'abord "
            "\u2014 → non\u00a0; Proposition du tri\u00a0: Irrecevable (au téléphone)") in text
    assert "Dernière démarche le" in text and "01/10/2026" in text

    # Staff confirm the proposal made with the facts: admissible now.
    await registry.handle(DecideScreening(number, "chef@med.be"))
    assert (await registry.store.complaint(number)).admissibility == "admissible"
    with pytest.raises(Conflict, match="unknown fact"):
        await registry.handle(RecordFacts(number, "agent@med.be", forget=("weather",)))


async def test_a_letters_stated_facts_are_filed_and_screened(registry_on_db):
    registry, _published, clock = registry_on_db
    letter = received(at=clock.now, channel="letter", letter_received_on=date(2026, 11, 23),
                      facts_date=date(2023, 5, 2), first_line_contacted=True)
    complaint = await registry.store.complaint((await registry.on_message_received(letter)).number)
    assert (complaint.facts_date, complaint.first_line_contacted) == (date(2023, 5, 2), True)
    assert _reasons(complaint) == ["facts_too_old"]
    checks = [check["code"] for check in complaint.screening_proposal["checks"]]
    assert "first_line_to_verify" not in checks


async def test_the_api_and_the_cli_record_facts(registry_on_db, database_url, monkeypatch, tmp_path):
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    async with await api_client(registry) as client:
        recorded = await client.post(f"/complaints/{number}/facts", json={
            "actor": "agent@med.be", "facts_date": "2026-10-02", "first_line_contacted": True})
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["facts"] == {"facts_date": "2026-10-02", "last_step_date": None,
                                            "first_line_contacted": True}
        assert recorded.json()["changes"][-1]["change"] == "facts"
        unknown = await client.post(f"/complaints/{number}/facts", json={"actor": "a@med.be", "forget": ["mood"]})
        assert unknown.status_code == 422
        missing = await client.post("/complaints/MED-2026-09999/facts", json={"actor": "a@med.be"})
        assert missing.status_code == 404

    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, app, [
        "facts", number, "--by", "agent@med.be", "--last-step-date", "2026-11-02", "--first-line-not-contacted",
        "--lang", "nl"])
    assert result.exit_code == 0, result.output
    assert "Datum van de feiten: 02-10-2026" in result.output and "Laatste stap op: 02-11-2026" in result.output
    assert "Betrokken dienst eerst gecontacteerd: nee" in result.output
    bad_date = await asyncio.to_thread(runner.invoke, app, ["facts", number, "--by", "a@med.be",
                                                             "--facts-date", "yesterday"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    shown = await asyncio.to_thread(runner.invoke, app, ["show", number, "--json"])
    assert json.loads(shown.output)["facts"]["first_line_contacted"] is False


QUOTED = "Bonjour,\nvoici la facture demandée.\n\nLe 3 mars, le service a écrit :\n> Envoyez-nous la facture."


async def test_the_rule_record_and_the_new_text_are_kept_and_shown(registry_on_db):
    registry, _published, clock = registry_on_db
    hit = RuleHit(rule="x-auto-response-suppress", outcome="acknowledgment-suppressed",
                  why="X-Auto-Response-Suppress: All")
    reply = received(at=clock.now, new_text="Bonjour,\nvoici la facture demandée.", rules=(hit,),
                     acknowledgment_suppressed="x_auto_response_suppress").model_copy(update={"text": QUOTED})
    number = (await registry.on_message_received(reply)).number
    found = await registry.store.complaint_file(number)
    [entry] = views.complaint_file(*found)["thread"]
    assert entry["text"] == QUOTED  # the whole text, as received
    assert entry["new_text"] == "Bonjour,\nvoici la facture demandée."
    assert entry["rules"] == [{"rule": "x-auto-response-suppress", "outcome": "acknowledgment-suppressed",
                               "why": "X-Auto-Response-Suppress: All"}]

    lines = _text(found).splitlines()
    assert ("      Accusé de réception supprimé par la règle x-auto-response-suppress "
            "(X-Auto-Response-Suppress: All)") in lines
    new_first = lines.index("      | voici la facture demandée.")
    quoted = lines.index("      Historique cité\u00a0:")
    assert new_first < quoted and lines[quoted + 1:quoted + 3] == [
        "      \u00a6 Le 3 mars, le service a écrit :", "      \u00a6 > Envoyez-nous la facture."]
    english = _text(found, "en")
    assert "Acknowledgment suppressed by rule x-auto-response-suppress" in english and "Quoted history:" in english


async def test_the_holding_pen_shows_the_rules_that_classified_a_message(registry_on_db):
    registry, _published, clock = registry_on_db
    vacation = RuleHit(rule="vacation-subject", outcome="automated", why="Subject: Absence du bureau")
    held = await registry.on_message_received(received(at=clock.now, subject="Absence du bureau", automated=True,
                                                       automated_reason="vacation", rules=(vacation,)))
    assert held.action == "held"
    [row] = await registry.store.held_messages()
    assert views.held_message(row)["rules"] == [vacation.model_dump()]
    ctx = views.TextContext(language="fr", zone=ZONE)
    _header, line = views.held_table_lines([row], ctx)
    assert "Message automatique sans dossier (Classé automatique par la règle vacation-subject)" in line
    _header, line = views.held_table_lines([row], views.TextContext(language="de", zone=ZONE))
    assert "Als automatisch eingestuft durch Regel vacation-subject" in line


async def test_holding_pen_actions_retry_a_unique_key_race(registry_on_db, monkeypatch):
    """Another process admits the same correspondent while staff attach a held message: the unit of work runs the
    whole action again, and the message is attached once."""
    registry, _published, clock = registry_on_db
    number = (await registry.on_message_received(received(at=clock.now))).number
    await registry.on_message_received(received(at=clock.now, email="avocat@example.be", subject=f"Re: [{number}]",
                                                candidate_case_numbers=(number,)))
    [held] = await registry.store.held_messages()
    race = LostRace(monkeypatch)
    outcome = await registry.handle(AttachHeld(held.id, number.lower(), "agent@med.be", add_correspondent=True))
    assert (outcome.action, outcome.number, race.calls) == ("appended", number, 2)
    _complaint, thread, changes, parties = await registry.store.complaint_file(number)
    assert len(thread) == 2 and [c.change for c in changes].count("follow_up_attached") == 1
    assert "avocat@example.be" in parties
    with pytest.raises(Conflict, match="already attached"):
        await registry.handle(AttachHeld(held.id, number, "agent@med.be"))


async def test_a_registry_on_its_own_database_handles_facts_like_the_service(sqlite_url):
    """The CLI builds its own `Registry` on the database: the same handlers as the service."""
    engine = create_engine(sqlite_url)
    await migrate(engine)

    class NoPublish:
        async def publish(self, rows):
            return None

    registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), NoPublish())
    try:
        number = (await registry.on_message_received(received())).number
        complaint = await registry.handle(RecordFacts(number.lower(), "agent@med.be", facts_date=date(2026, 1, 5)))
        assert (complaint.number, complaint.facts_date) == (number, date(2026, 1, 5))
    finally:
        await engine.dispose()
