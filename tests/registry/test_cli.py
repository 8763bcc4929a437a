"""`ombudsdesk register list|show|held|attach` against a real register (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from services.registry.cli import app
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from services.registry.handlers import Registry
from shared.database import create_engine
from shared.events import NotificationSent
from tests.registry.conftest import received


class _NoPublish:
    async def publish(self, rows):
        return None


def _seed(database_url: str) -> None:
    async def main() -> None:
        engine = create_engine(database_url)
        await migrate(engine)
        store = RegistryStore(engine)
        registry = Registry(store, policy_from_settings(RegistrySettings()), _NoPublish())
        await registry.on_message_received(received(name="Jeanne Dupont", subject="Facture contestée"))
        await registry.on_message_received(received(name="Luc Peeters", email="luc@example.be",
                                                    subject="Klacht over de trein"))
        await registry.on_notification_sent(NotificationSent(
            notification_key="ack-1", complaint_number="MED-2026-00001", notice_kind="acknowledgment",
            recipient="jeanne.dupont@example.org", message_id="<ack-1@ombudsdesk.localhost>"))
        await registry.on_message_received(received(email="intrus@example.com", subject="Re: [MED-2026-00001]"))
        await engine.dispose()

    asyncio.run(main())


def test_list_show_and_holding_pen_commands(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    _seed(database_url)
    runner = CliRunner()

    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0, listed.output
    header, *lines = listed.output.strip().splitlines()
    assert header.split()[:2] == ["Numéro", "Départ"] and "Statut" in header
    assert [line.split()[0] for line in lines] == ["MED-2026-00002", "MED-2026-00001"]
    # Aligned columns: each status starts under its header, in words.
    column = header.index("Statut")
    assert [line[column:].split("  ")[0] for line in lines] == ["Reçue", "Accusé de réception envoyé"]

    as_json = json.loads(runner.invoke(app, ["list", "--json", "--search", "train"]).output or "[]")
    assert as_json == []
    as_json = json.loads(runner.invoke(app, ["list", "--json", "--search", "trein"]).output)
    assert [row["number"] for row in as_json] == ["MED-2026-00002"]

    shown = runner.invoke(app, ["show", "med-2026-00001"])
    assert shown.exit_code == 0, shown.output
    assert "Jeanne Dupont" in shown.output and "jeanne.dupont@example.org" in shown.output
    assert "Accusé de réception envoyé" in shown.output and "Courriel" in shown.output
    assert "Réponse due le" in shown.output and "08/01/2027" in shown.output
    assert "Fil des messages\u00a0:" in shown.output and "Historique\u00a0:" in shown.output
    assert "ack-1@ombudsdesk.localhost" in shown.output and "envoyé" in shown.output
    assert "je conteste la facture" in shown.output
    for raw in ("acknowledged", "complaint", "pending", "(aucune)", "Fil des messages:"):
        assert raw not in shown.output

    missing = runner.invoke(app, ["show", "MED-2026-09999"])
    assert missing.exit_code == 1

    held = json.loads(runner.invoke(app, ["held", "--json"]).output)
    assert [(h["reason"], h["suggestions"][0]["number"]) for h in held] == [("sender_not_party", "MED-2026-00001")]
    attached = runner.invoke(app, ["attach", str(held[0]["id"]), "MED-2026-00001", "--by", "agent@service.be",
                                   "--correspondent"])
    assert attached.exit_code == 0, attached.output
    again = runner.invoke(app, ["attach", str(held[0]["id"]), "MED-2026-00001", "--by", "agent@service.be"])
    assert again.exit_code == 3
    shown = runner.invoke(app, ["show", "MED-2026-00001", "--lang", "en"])
    assert "intrus@example.com" in shown.output and "Held message attached" in shown.output
    as_json = json.loads(runner.invoke(app, ["show", "MED-2026-00001", "--json"]).output)
    assert as_json["status"] == "acknowledged" and as_json["changes"][-1]["change"] == "follow_up_attached"


def test_staff_actions_and_indicators_from_the_command_line(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    _seed(database_url)
    runner = CliRunner()
    number = "MED-2026-00001"

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    ok("transition", number, "in_review", "--by", "agent@med.be")
    refused = runner.invoke(app, ["transition", number, "closed", "--by", "agent@med.be"])
    assert refused.exit_code == 3 and "cannot go from in_review to closed" in refused.output
    ok("assign", number, "handler@med.be", "--by", "chef@med.be")
    ok("classify", number, "--by", "agent@med.be", "--kind", "question")
    ok("extend", number, "--by", "agent@med.be", "--reason", "expertise")
    ok("recommend", number, "Simplifier le formulaire de contestation", "--by", "agent@med.be")
    answer = tmp_path / "answer.txt"
    answer.write_text("Nous avons corrigé votre facture.", encoding="utf-8")
    ok("transition", number, "answered", "--by", "agent@med.be", "--answer-file", str(answer))
    ok("transition", number, "closed", "--by", "agent@med.be", "--outcome", "founded", "--category",
       "file_processing")
    ok("screening", "MED-2026-00002", "--by", "agent@med.be", "--inadmissible", "--inadmissible-reason",
       "first_line_not_contacted")

    shown = ok("show", number, "--lang", "en")
    assert "handler@med.be" in shown and "Closed" in shown and "Founded / Processing of the file" in shown
    assert "Question / information request" in shown and "Simplifier le formulaire de contestation" in shown

    report = json.loads(ok("indicators", "2026", "--as-of", "2026-12-31"))
    assert report["received"]["total"] == 2
    assert report["admissibility"]["inadmissible_by_reason"]["first_line_not_contacted"] == 1
    assert report["outcomes"]["by_outcome"]["founded"] == 1
    assert report["improvement_actions"]["total"] == 1
    as_csv = ok("indicators", "2026", "--format", "csv", "--as-of", "2026-12-31")
    assert as_csv.startswith("section,key,value") and "outcomes,by_outcome.founded,1" in as_csv
