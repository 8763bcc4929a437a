"""The last paths by which a data-protection file's details reached others than the DPO (issue 16), on SQLite and
PostgreSQL: the alerts of a request for an administration's position and of a recommendation's review carry no
administration's name and no subject line; the annual indicators count a data-protection file's improvement actions
but never list their texts with its number (and the published report shows neither); `register recommendation list`
leaves a data-protection file's recommendations out unless `--as-dpo` names an active DPO account, and records its
reads in the audit trail as `register list` does."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, datetime, timezone

from sqlalchemy import update
from typer.testing import CliRunner

from services.registry.access.accounts import AccountStore
from services.registry.access.roles import Role
from services.registry.annual_report.publication import annual_report_document
from services.registry.annual_report.rendering import render_html
from services.registry.commands import (
    Classify,
    IssueRecommendation,
    RemindRecommendationReviews,
    RequestPosition,
    SaveAdministration,
    SweepPositionRequests,
)
from services.registry.handlers import Registry
from services.registry.indicators import ComplaintRecord, annual_indicators, indicators_csv
from services.registry.models import Complaint
from services.registry.reports import annual_report
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from shared.events import DeadlineApproaching, DeadlineMissed
from tests.registry.conftest import received
from tests.registry.test_dpo_access import _NoPublish, _trail

STAFF = "agent@med.be"
DPO_EMAIL = "dpo@med.example"
SECRET_SUBJECT = "Fuite de mon dossier médical à l'hôpital"
SECRET_ADMINISTRATION = "Hôpital Saint-Secret"
SECRET_ACTION = "Chiffrer les dossiers médicaux envoyés par courriel"


async def _file(registry: Registry, clock, *, data_protection: bool, subject: str, email: str) -> str:
    outcome = await registry.on_message_received(received(at=clock.now, subject=subject, email=email))
    assert outcome.action == "registered"
    if data_protection:
        await registry.handle(Classify(outcome.number, STAFF, data_protection=True))
    return outcome.number


async def _two_files(registry: Registry, clock) -> tuple[str, str]:
    """(an ordinary file, a data-protection one)."""
    ordinary = await _file(registry, clock, data_protection=False, subject="Facture ordinaire",
                           email="jean.ordinaire@example.org")
    protected = await _file(registry, clock, data_protection=True, subject=SECRET_SUBJECT,
                            email="hortense@example.org")
    return ordinary, protected


def _alerts(published, kind: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for event in published.events:
        if isinstance(event, DeadlineApproaching | DeadlineMissed) and event.deadline_kind == kind:
            found.setdefault(event.complaint_number, []).append(event)
    return found


async def test_position_request_alerts_of_a_data_protection_file_name_no_administration(registry_on_db):
    registry, published, clock = registry_on_db  # Tuesday 24 November 2026
    ordinary, protected = await _two_files(registry, clock)
    administration = await registry.handle(SaveAdministration(
        "hospital", SECRET_ADMINISTRATION, STAFF, emails=("plaintes@hopital.example.be",), answer_days=30))
    for number in (ordinary, protected):
        await registry.handle(RequestPosition(number, administration, "Votre position ?", STAFF, reminder_days=7))

    clock.advance(days=23)  # 17 December: the reminder
    assert await registry.handle(SweepPositionRequests(clock.now.date())) == 2
    clock.advance(days=8)  # 25 December: the deadline (24 December) passed without an answer
    assert await registry.handle(SweepPositionRequests(clock.now.date())) == 2

    alerts = _alerts(published, "position_request")
    assert [type(e) for e in alerts[ordinary]] == [DeadlineApproaching, DeadlineMissed]
    assert [type(e) for e in alerts[protected]] == [DeadlineApproaching, DeadlineMissed]
    for event in alerts[ordinary]:  # the same alert of an ordinary file does name them
        assert (event.service_concerned, event.subject_line) == (SECRET_ADMINISTRATION, "Facture ordinaire")
    for event in alerts[protected]:
        assert (event.service_concerned, event.subject_line) == (None, "")
        assert event.due == date(2026, 12, 24)
        assert SECRET_ADMINISTRATION not in event.model_dump_json()


async def test_recommendation_review_alerts_of_a_data_protection_file_name_no_addressee(registry_on_db):
    registry, published, clock = registry_on_db
    ordinary, protected = await _two_files(registry, clock)
    review = date(2026, 11, 26)
    for number in (ordinary, protected):
        await registry.handle(IssueRecommendation(number, f"{SECRET_ACTION}\nDétails", STAFF,
                                                  addressee=SECRET_ADMINISTRATION, review_date=review))

    clock.advance(days=2)  # the review date
    assert await registry.handle(RemindRecommendationReviews(clock.now.date())) == 2
    alerts = _alerts(published, "recommendation_review")
    [plain], [secret] = alerts[ordinary], alerts[protected]
    assert (plain.service_concerned, plain.subject_line) == (SECRET_ADMINISTRATION, SECRET_ACTION)
    assert (secret.service_concerned, secret.subject_line) == (None, "")
    assert secret.due == review and secret.handler is not None and secret.handler.email == STAFF
    assert SECRET_ADMINISTRATION not in secret.model_dump_json() and SECRET_ACTION not in secret.model_dump_json()


# --- the annual indicators -------------------------------------------------------------------------------------------
def _closed(number: str, actions: tuple[str, ...], *, data_protection: bool) -> ComplaintRecord:
    day = date(2026, 3, 2)
    return ComplaintRecord(number, day, "email", "complaint", "closed", admissibility="admissible",
                           outcome="founded", answered_on=day, ended_on=day, improvement_actions=actions,
                           data_protection=data_protection)


def test_the_pure_indicators_count_a_data_protection_file_s_actions_and_list_none_of_them():
    records = [_closed("MED-2026-00001", ("Publier le calendrier",), data_protection=False),
               _closed("MED-2026-00002", (SECRET_ACTION, "Former le personnel"), data_protection=True),
               _closed("MED-2026-00003", (), data_protection=True)]
    actions = annual_indicators(records, 2026)["improvement_actions"]
    assert actions == {"total": 3, "complaints_with_actions": 2, "not_listed_data_protection": 2,
                       "list": [{"number": "MED-2026-00001", "action": "Publier le calendrier"}]}
    text = indicators_csv(annual_indicators(records, 2026))
    assert "MED-2026-00002" not in text and SECRET_ACTION not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert ["improvement_actions", "not_listed_data_protection", "2"] in rows
    assert ["improvement_actions", "action:MED-2026-00001", "Publier le calendrier"] in rows
    # A year without data-protection actions reads exactly as before: no such key.
    assert "not_listed_data_protection" not in annual_indicators(records[:1], 2026)["improvement_actions"]


async def _close_with_actions(registry: Registry, number: str, actions: tuple[str, ...]) -> None:
    for action in actions:
        await registry.handle(IssueRecommendation(number, action, STAFF, addressee=SECRET_ADMINISTRATION))
    async with registry.store.transaction() as tx:
        await tx.session.execute(update(Complaint).where(Complaint.number == number).values(
            status="closed", outcome="founded", closed_at=datetime(2026, 12, 1, 10, tzinfo=timezone.utc)))


async def test_the_register_s_indicators_and_published_report_keep_a_data_protection_file_s_actions_unlisted(
        registry_on_db):
    registry, _published, clock = registry_on_db
    ordinary, protected = await _two_files(registry, clock)
    await _close_with_actions(registry, ordinary, ("Publier le calendrier",))
    await _close_with_actions(registry, protected, (SECRET_ACTION, "Former le personnel"))

    figures = await annual_report(registry.store, 2026, registry.policy.timezone)
    assert figures["improvement_actions"] == {
        "total": 3, "complaints_with_actions": 2, "not_listed_data_protection": 2,
        "list": [{"number": ordinary, "action": "Publier le calendrier"}]}
    assert protected not in json.dumps(figures) and SECRET_ACTION not in json.dumps(figures, ensure_ascii=False)

    document = await annual_report_document(registry.store, 2026, registry.policy.timezone, language="fr",
                                            organisation="Médiateur test")
    page = render_html(document)
    assert protected not in page and SECRET_ACTION not in page and "Chiffrer" not in page
    assert ">3<" in page  # the published total counts every action, the data-protection file's too


# --- `register recommendation list` ----------------------------------------------------------------------------------
def _seed(database_url: str) -> tuple[str, str]:
    """An ordinary file and a data-protection one, each with a recommendation, and a general one; a DPO account, a
    supervisor's and a DPO account switched off."""

    async def main() -> tuple[str, str]:
        engine = create_engine(database_url)
        await migrate(engine)
        registry = Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), _NoPublish())
        numbers = []
        for subject, email, protected in (("Facture", "jean@example.org", False),
                                          (SECRET_SUBJECT, "hortense@example.org", True)):
            outcome = await registry.on_message_received(received(subject=subject, email=email))
            if protected:
                await registry.handle(Classify(outcome.number, STAFF, data_protection=True))
            numbers.append(outcome.number)
        await registry.handle(IssueRecommendation(numbers[0], "Publier le calendrier", STAFF, addressee="SPF Finances"))
        await registry.handle(IssueRecommendation(numbers[1], SECRET_ACTION, STAFF, addressee=SECRET_ADMINISTRATION))
        await registry.handle(IssueRecommendation(None, "Simplifier les formulaires", STAFF, addressee="Actiris"))
        accounts = AccountStore(engine)
        await accounts.create_account(DPO_EMAIL, roles=[Role.DPO])
        await accounts.create_account("boss@med.example", roles=[Role.SUPERVISOR])
        await accounts.create_account("old-dpo@med.example", roles=[Role.DPO])
        assert await accounts.disable("old-dpo@med.example")
        await engine.dispose()
        return numbers[0], numbers[1]

    return asyncio.run(main())


def test_the_recommendation_list_leaves_data_protection_files_to_the_dpo(database_url, monkeypatch, tmp_path):
    from services.registry.cli import app

    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    ordinary, protected = _seed(database_url)
    runner = CliRunner()

    listed = runner.invoke(app, ["recommendation", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(str(row["number"]) for row in json.loads(listed.output)) == sorted([ordinary, "None"])
    text = runner.invoke(app, ["recommendation", "list", "--lang", "en"])
    assert text.exit_code == 0 and ordinary in text.output and "Simplifier" in text.output
    for secret in (protected, SECRET_ACTION, SECRET_ADMINISTRATION):
        assert secret not in listed.output and secret not in text.output
    by_addressee = runner.invoke(app, ["recommendation", "list", "--json", "--to", SECRET_ADMINISTRATION])
    assert by_addressee.exit_code == 0 and json.loads(by_addressee.output) == []
    for impostor in ("boss@med.example", "old-dpo@med.example", "nobody@med.example"):
        refused = runner.invoke(app, ["recommendation", "list", "--as-dpo", impostor])
        assert refused.exit_code == 4 and SECRET_ACTION not in refused.output, impostor

    as_dpo = runner.invoke(app, ["recommendation", "list", "--json", "--as-dpo", DPO_EMAIL.upper()])
    assert as_dpo.exit_code == 0, as_dpo.output
    rows = {str(row["number"]): row for row in json.loads(as_dpo.output)}
    assert set(rows) == {ordinary, protected, "None"}
    assert rows[protected]["text"] == SECRET_ACTION and rows[protected]["addressee"] == SECRET_ADMINISTRATION

    searches = [e for e in _trail(database_url) if e.action == "search"]
    assert [(e.actor == DPO_EMAIL, e.details["rows"], e.details["data_protection_files"]) for e in searches] == [
        (False, 2, False), (False, 2, False), (False, 0, False), (True, 3, True)]
    assert all(e.actor.startswith("cli:") for e in searches[:3])
    assert searches[3].details["os_user"] == searches[0].actor  # the OS login, beside the DPO account named


async def test_the_addressees_offered_as_a_filter_leave_a_data_protection_file_s_to_the_dpo(registry_on_db):
    from services.registry.access.roles import VisibilityScope
    from services.registry.mediation import recommendation_store

    registry, _published, clock = registry_on_db
    ordinary, protected = await _two_files(registry, clock)
    await registry.handle(IssueRecommendation(ordinary, "Publier le calendrier", STAFF, addressee="SPF Finances"))
    await registry.handle(IssueRecommendation(protected, SECRET_ACTION, STAFF, addressee=SECRET_ADMINISTRATION))
    await registry.handle(IssueRecommendation(None, "Simplifier les formulaires", STAFF, addressee="Actiris"))
    staff = VisibilityScope(ordinary="all")
    dpo = VisibilityScope(ordinary="all", data_protection=True)
    assert await recommendation_store.addressees(registry.store, scope=staff) == ["Actiris", "SPF Finances"]
    assert await recommendation_store.addressees(registry.store, scope=dpo) == [
        "Actiris", SECRET_ADMINISTRATION, "SPF Finances"]


async def test_the_annual_figures_count_a_data_protection_file_s_recommendation_without_naming_its_addressee(
        registry_on_db):
    """The security review: recommendations by addressee are in the published report and the indicators, which
    everyone reading the report sees; a DP file's addressee is counted there unnamed."""
    from services.registry.mediation import recommendation_store

    registry, _published, clock = registry_on_db
    ordinary, protected = await _two_files(registry, clock)
    await registry.handle(IssueRecommendation(ordinary, "Publier le calendrier", STAFF, addressee="SPF Finances"))
    await registry.handle(IssueRecommendation(protected, SECRET_ACTION, STAFF, addressee=SECRET_ADMINISTRATION))
    await registry.handle(IssueRecommendation(None, "Simplifier les formulaires", STAFF, addressee="Actiris"))
    groups = await recommendation_store.indicator_groups(registry.store, clock.now.year)
    assert sorted((addressee, general, count) for addressee, _status, general, count in groups) == [
        ("", False, 1), ("Actiris", True, 1), ("SPF Finances", False, 1)]
    assert SECRET_ADMINISTRATION not in repr(groups)
