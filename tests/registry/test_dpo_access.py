"""Data-protection files are the DPO's alone on every remaining path (issue 16): the register's command line (its
reads recorded in the audit trail, data-protection files only with `--as-dpo` and a real DPO account), the CSV export
of the back office's list, and the deadline mails the notifier builds (warnings to the supervisor, the daily digest).
Database: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timezone

from typer.testing import CliRunner

from services.notifier.digest import digest_drafts
from services.notifier.handlers import organisation_variables
from services.notifier.models import FileAtRisk
from services.notifier.notices import draft_deadline_warnings
from services.notifier.rendering import TemplateRenderer
from services.notifier.settings import NotifierSettings
from services.registry import commands
from services.registry.access.accounts import AccountStore
from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.access.roles import Role
from services.registry.cli import app
from services.registry.handlers import Registry
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from shared.events import DeadlineMissed
from tests.backoffice.conftest import TEST_CSRF, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import file, principal

SECRET_SUBJECT = "Fuite de mon dossier médical"
SECRET_NAME = "Hortense Vandamme"
DPO_EMAIL = "dpo@med.example"


class _NoPublish:
    async def publish(self, rows):
        return None


def _seed(database_url: str) -> tuple[str, str]:
    """An ordinary file and a data-protection one; a DPO account and a staff account."""

    async def main() -> tuple[str, str]:
        engine = create_engine(database_url)
        await migrate(engine)
        registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), _NoPublish())
        ordinary = await file(registry, name="Jean Ordinaire", subject="Facture")
        protected = await file(registry, name=SECRET_NAME, subject=SECRET_SUBJECT, data_protection=True)
        accounts = AccountStore(engine)
        await accounts.create_account(DPO_EMAIL, roles=[Role.DPO])
        await accounts.create_account("boss@med.example", roles=[Role.SUPERVISOR])
        await engine.dispose()
        return ordinary, protected

    return asyncio.run(main())


def _trail(database_url: str) -> list:
    async def main() -> list:
        engine = create_engine(database_url)
        try:
            return list(reversed(await AuditTrail(engine).search(AuditFilter(limit=50))))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_the_command_line_hides_data_protection_files_and_records_its_reads(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    ordinary, protected = _seed(database_url)
    runner = CliRunner()

    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["number"] for row in json.loads(listed.output)] == [ordinary]
    assert SECRET_NAME not in runner.invoke(app, ["list"]).output
    refused_list = runner.invoke(app, ["list", "--data-protection"])
    assert refused_list.exit_code == 4 and SECRET_SUBJECT not in refused_list.output
    refused = runner.invoke(app, ["show", protected])
    assert refused.exit_code == 4 and SECRET_NAME not in refused.output and SECRET_SUBJECT not in refused.output
    for impostor in ("boss@med.example", "nobody@med.example"):
        denied = runner.invoke(app, ["show", protected, "--as-dpo", impostor])
        assert denied.exit_code == 4 and SECRET_NAME not in denied.output, impostor

    as_dpo = runner.invoke(app, ["list", "--json", "--as-dpo", DPO_EMAIL.upper()])
    assert sorted(row["number"] for row in json.loads(as_dpo.output)) == sorted([ordinary, protected])
    shown = runner.invoke(app, ["show", protected, "--json", "--as-dpo", DPO_EMAIL])
    assert shown.exit_code == 0 and json.loads(shown.output)["subject"] == SECRET_SUBJECT
    assert runner.invoke(app, ["show", ordinary]).exit_code == 0
    assert runner.invoke(app, ["held"]).exit_code == 0

    entries = [(e.action, e.number, e.actor) for e in _trail(database_url)]
    assert [(action, number) for action, number, _ in entries] == [
        ("search", None), ("search", None), ("file.denied", protected), ("search", None), ("file.read", protected),
        ("file.read", ordinary), ("held.read", None)]
    by_dpo = {entries[3], entries[4]}
    assert {actor for _, _, actor in by_dpo} == {DPO_EMAIL}
    assert all(entry[2].startswith("cli:") for entry in entries if entry not in by_dpo)


async def test_the_csv_export_leaves_data_protection_files_to_the_dpo(backoffice_app):
    app_ = backoffice_app
    ordinary = await app_.file(name="Jean Ordinaire", subject="Facture")
    protected = await app_.file(name=SECRET_NAME, subject=SECRET_SUBJECT, data_protection=True)
    for reader, wanted in ((principal("boss@med.example", Role.SUPERVISOR, account_id=2), {ordinary}),
                           (principal("agent@med.example", Role.STAFF, account_id=3), {ordinary}),
                           (principal(DPO_EMAIL, Role.DPO, account_id=4), {protected})):
        async with app_.client(reader) as client:
            answer = await client.get("/backoffice/register/export.csv")
        assert answer.status_code == 200, reader
        found = {number for number in (ordinary, protected) if number in answer.text}
        assert found == wanted, reader.roles
        assert (SECRET_SUBJECT in answer.text) == (protected in wanted)


def _render(draft, language: str = "fr"):
    variables = {**draft.variables, "org": organisation_variables(NotifierSettings(), language),
                 "case_number": draft.complaint_number, "recipient_name": draft.recipient_name, "channel": "email"}
    return TemplateRenderer().render(draft.template_name, language, variables)


async def test_deadline_mails_of_a_data_protection_file_name_nothing_of_it(backoffice_app):
    """The registry's alert of a data-protection file carries its number and dates only; the warnings the notifier
    writes from it (the handler's and the supervisor's, who is no DPO) and the daily digest show nothing else."""
    app_ = backoffice_app
    protected = await app_.file(name=SECRET_NAME, subject=SECRET_SUBJECT, data_protection=True,
                                service="fps-finance", handler=DPO_EMAIL)
    ordinary = await app_.file(name="Jean Ordinaire", subject="Facture ordinaire", service="fps-finance",
                               handler="agent@med.example")
    app_.clock.advance(days=120)
    for number in (protected, ordinary):
        complaint = await app_.store.complaint(number)
        await app_.registry.handle(commands.RaiseDeadlineAlerts(complaint.id, (5,)))
    alerts = {e.complaint_number: e for e in app_.publisher.of(DeadlineMissed) if e.deadline_kind == "answer"}
    assert alerts[ordinary].subject_line == "Facture ordinaire" and alerts[ordinary].service_concerned
    event = alerts[protected]
    assert (event.subject_line, event.service_concerned) == ("", None)

    warnings = draft_deadline_warnings(event, "boss@med.example", "fr")
    assert {d.recipient_email for d in warnings} == {DPO_EMAIL, "boss@med.example"}
    risk = FileAtRisk(complaint_number=event.complaint_number, deadline_kind=event.deadline_kind, due=event.due,
                      state="missed", handler_email=DPO_EMAIL, handler_name="", language="fr",
                      subject_line=event.subject_line, updated_at=datetime.now(timezone.utc))
    digests = digest_drafts([risk], date(2027, 3, 1))
    for draft in (*warnings, *digests):
        rendered = _render(draft)
        text = f"{rendered.subject}\n{rendered.text}\n{rendered.html}"
        assert protected in text
        for secret in (SECRET_SUBJECT, SECRET_NAME, "SPF Finances", "fps-finance"):
            assert secret not in text, (draft.kind, secret)
    ordinary_text = _render(draft_deadline_warnings(alerts[ordinary], "boss@med.example", "fr")[0]).text
    assert "Facture ordinaire" in ordinary_text  # the same template does show an ordinary file's details
