"""`ombudsdesk privacy export EMAIL --output FILE --reason TEXT` (`privacy/export_cli.py`) against a real register
(SQLite, PostgreSQL) and a real NATS server: the archive written owner-only and never over an existing file, the
originals read from the object store, the export in the audit trail, and NATS unreachable handled."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import zipfile

import nats
import typer
from typer.testing import CliRunner

from ombudsdesk.embedded_nats import free_port
from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.handlers import Registry
from services.registry.privacy.export_cli import export_command
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared import streams
from shared.database import create_engine
from shared.events import MessageReceived, Party
from shared.stream_admin import ensure_streams
from tests.registry.test_dpo_access import _NoPublish

# Mounted as H11's `privacy` group mounts it (one line in privacy/cli.py).
app = typer.Typer()
app.command("export")(export_command)
app.command("unused")(lambda: None)  # two commands: typer keeps the name `export` on the command line
RAW = b"From: Alix <alix@example.be>\r\nSubject: Dossier\r\n\r\nTexte.\r\n"


def _seed(database_url: str, nats_url: str) -> list[str]:
    async def main() -> list[str]:
        client = await nats.connect(nats_url)
        await ensure_streams(client.jetstream())
        await (await client.jetstream().object_store(streams.BUCKET_RAW_MESSAGES)).put("alix-cli.eml", RAW)
        await client.close()
        engine = create_engine(database_url)
        await migrate(engine)
        registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), _NoPublish())
        numbers = []
        for i in range(2):
            outcome = await registry.handle(MessageReceived(
                message_key=f"alix-cli-{i}", received_at=registry.clock.now(), sender=Party(name="Alix",
                                                                                          email="alix@example.be"),
                subject_line=f"Dossier {i}", text="Texte.", message_id=f"<cli{i}@example.be>",
                raw_object="alix-cli.eml"))
            numbers.append(outcome.number)
        await engine.dispose()
        return numbers

    return asyncio.run(main())


def _exports(database_url: str) -> list:
    async def main() -> list:
        engine = create_engine(database_url)
        try:
            return await AuditTrail(engine).search(AuditFilter(action="export", limit=20))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_the_command_writes_the_archive_and_records_it(database_url, nats_server, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_NATS_URL", nats_server.url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    numbers = _seed(database_url, nats_server.url)
    output = tmp_path / "alix.zip"
    runner = CliRunner()
    done = runner.invoke(app, ["export", "ALIX@example.be", "--output", str(output), "--reason", "ref 17",
                               "--language", "en"])
    assert done.exit_code == 0, done.output
    assert "2 file(s), 0 missing" in done.output and "alix" not in done.output.replace(str(output), "")
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    with zipfile.ZipFile(io.BytesIO(output.read_bytes())) as archive:
        document = json.loads(archive.read("export.json"))
        assert [f["number"] for f in document["files"]] == numbers and document["language"] == "en"
        path = document["files"][0]["messages_received"][0]["raw_original_path"]
        assert archive.read(path) == RAW
    again = runner.invoke(app, ["export", "alix@example.be", "--output", str(output), "--reason", "ref 17"])
    assert again.exit_code == 2 and "exists" in again.output
    entries = _exports(database_url)
    assert sorted(e.number for e in entries if e.number) == sorted(numbers) and len(entries) == 3
    assert all(e.actor.startswith("cli:") and e.reason == "ref 17" and e.details["via"] == "cli" for e in entries)


def test_nats_unreachable_stops_unless_told_to_go_without_originals(database_url, nats_server, monkeypatch,
                                                                    tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    _seed(database_url, nats_server.url)
    monkeypatch.setenv("OMBUDSDESK_NATS_URL", f"nats://127.0.0.1:{free_port()}")
    runner = CliRunner()
    stopped = runner.invoke(app, ["export", "alix@example.be", "-o", str(tmp_path / "a.zip"), "--reason", "r"])
    assert stopped.exit_code == 3 and "--without-originals" in stopped.output
    assert not (tmp_path / "a.zip").exists() and _exports(database_url) == []
    went = runner.invoke(app, ["export", "alix@example.be", "-o", str(tmp_path / "b.zip"), "--reason", "r",
                               "--without-originals"])
    assert went.exit_code == 0 and "2 file(s), 1 missing" in went.output, went.output
