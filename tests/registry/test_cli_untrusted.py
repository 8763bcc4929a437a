"""What a stranger wrote reaches a staff member's terminal and spreadsheet harmless (issue 10), through the real
`ombudsdesk register` commands on a real register (SQLite and PostgreSQL): no terminal escape is printed, no CSV
cell is a formula."""

from __future__ import annotations

import asyncio
import csv
import io
import json

from typer.testing import CliRunner

from services.registry.cli import app
from services.registry.handlers import Registry
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from shared.events import SenderVerdict
from tests.registry.conftest import received

ESCAPES = "\x1b]0;pwned\x07\x1b[2J"
FORMULA = '=HYPERLINK("http://x","y")'


class _NoPublish:
    async def publish(self, rows):
        return None


def _register(database_url: str, *events) -> None:
    async def main() -> None:
        engine = create_engine(database_url)
        await migrate(engine)
        registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), _NoPublish())
        for event in events:
            await registry.on_message_received(event)
        await engine.dispose()

    asyncio.run(main())


def _cli(database_url, monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    return CliRunner()


def _no_control(output: str) -> list[str]:
    return [hex(ord(c)) for c in output if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]


def test_terminal_escapes_in_what_a_sender_wrote_are_never_printed(database_url, monkeypatch, tmp_path):
    hostile = received(name=f"Eve{ESCAPES}\x9b2J", subject=f"Objet{ESCAPES}", message_id="<first@example.org>",
                       sender_evidence=f"dmarc=pass{ESCAPES}", sender_verdict=SenderVerdict.VERIFIED,
                       identity_notes=(f"note{ESCAPES}",)
                       ).model_copy(update={"text": f"Bonjour\n{ESCAPES}ligne deux\r\n\x1b[31mrouge\x1b[0m"})
    stranger = received(email="intrus@example.com", name=f"Intrus{ESCAPES}", subject=f"Re: [MED-2026-00001]{ESCAPES}")
    _register(database_url, hostile, stranger)
    runner = _cli(database_url, monkeypatch, tmp_path)

    shown = runner.invoke(app, ["show", "MED-2026-00001"])
    assert shown.exit_code == 0, shown.output
    assert _no_control(shown.output) == [] and "pwned" not in shown.output
    assert "| Bonjour" in shown.output and "| ligne deux" in shown.output and "| rouge" in shown.output
    assert "Objet                             Objet" in shown.output  # the text stays, aligned
    for command in (["list"], ["held"], ["held", "--json"], ["show", "MED-2026-00001", "--json"],
                    ["list", "--json"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert _no_control(result.output) == [], command
    # JSON keeps the value whole, escaped: a script reads exactly what the sender wrote.
    as_json = json.loads(runner.invoke(app, ["show", "MED-2026-00001", "--json"]).output)
    assert as_json["subject"] == f"Objet{ESCAPES}" and as_json["complainant"]["name"] == f"Eve{ESCAPES}\x9b2J"


def test_csv_export_never_holds_a_formula(database_url, monkeypatch, tmp_path):
    _register(database_url, received(subject=FORMULA))
    runner = _cli(database_url, monkeypatch, tmp_path)
    # The improvement action is staff's, often copied from the complaint's subject.
    for command in (["recommend", "MED-2026-00001", FORMULA, "--by", "agent@med.be"],
                    ["transition", "MED-2026-00001", "acknowledged", "--by", "agent@med.be"],
                    ["transition", "MED-2026-00001", "in_review", "--by", "agent@med.be"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    answer = tmp_path / "answer.txt"
    answer.write_text("Réponse.", encoding="utf-8")
    for command in (["transition", "MED-2026-00001", "answered", "--by", "a@med.be", "--answer-file", str(answer)],
                    ["transition", "MED-2026-00001", "closed", "--by", "a@med.be", "--outcome", "unfounded"]):
        assert runner.invoke(app, command).exit_code == 0
    exported = runner.invoke(app, ["indicators", "2026", "--format", "csv", "--as-of", "2026-12-31"])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.reader(io.StringIO(exported.output)))
    cells = [cell for row in rows for cell in row]
    assert [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")] == []
    assert ["improvement_actions", "action:MED-2026-00001", "'" + FORMULA] in rows
    assert ["outcomes", "by_outcome.unfounded", "1"] in rows  # figures stay figures
