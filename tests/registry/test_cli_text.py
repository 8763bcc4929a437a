"""What staff read from `ombudsdesk register`: translated values, French typography, the history of follow-ups, and
help texts that list the allowed values (views' text rendering is pure; the rest runs on a real register)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from services.registry import views
from services.registry.cli import app
from services.registry.commands import AttachHeld
from services.registry.followups import HoldReason
from services.registry.models import ChangeLogEntry, Complaint, HeldMessage, ThreadMessage
from services.registry.screening_files import load_screening_config
from services.registry.vocabulary import LANGUAGES, VOCABULARIES, Status, label
from shared.events import Channel
from tests.registry.conftest import received

AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


def _complaint(**fields: object) -> Complaint:
    values: dict[str, object] = dict(
        number="MED-2026-00007", kind="complaint", channel="email", received_at=AT, legal_start=date(2026, 11, 24),
        complainant_name="Jeanne Dupont", complainant_email="jeanne@example.org", complainant_postal_address=None,
        complainant_language="fr", subject_line="Allocations suspendues", body="", attachments=[],
        service_concerned=None, theme="social_security", admissibility="pending", admissibility_reasons=[],
        screening_proposal=None, status="acknowledged", handler=None, acknowledgment_due=date(2026, 12, 1),
        answer_due=date(2027, 1, 8), answer_extended=False, paused_days=0, paused_since=None,
        acknowledged_at=AT, answered_at=None, closed_at=None, outcome=None, outcome_category=None,
        recommendations=[], linked_number=None, redirected_to=None)
    values.update(fields)
    return Complaint(**values)


def _out(subject: str = "") -> ThreadMessage:
    return ThreadMessage(direction="out", message_key="out:ack", message_id="ack@ombudsdesk.localhost",
                         sender_name="", sender_email=None, recipient="jeanne@example.org", subject_line=subject,
                         body="", notice_kind="acknowledgment", attachments=[], occurred_at=AT)


def _context(language: str) -> views.TextContext:
    return views.TextContext(language=language, zone=ZoneInfo("Europe/Brussels"), screening=load_screening_config())


def test_french_file_translates_every_value_with_french_typography():
    closed = _complaint(status="closed", outcome="partially_founded", outcome_category="staff_attitude",
                        service_concerned="fps-finance", closed_at=AT)
    changes = [ChangeLogEntry(change="status", actor="agent@med.be", reason=None, at=AT,
                              details={"from": "answered", "to": "closed", "outcome": "partially_founded",
                                       "category": "staff_attitude"})]
    text = "\n".join(views.complaint_file_lines(closed, [_out()], changes, ["jeanne@example.org"], _context("fr")))

    for shown in ("Clôturée", "Plainte", "Courriel", "Sécurité sociale et allocations", "SPF Finances",
                  "Partiellement fondée / Attitude du personnel", "Réponse due le", "08/01/2027",
                  "Reçue le                       24/11/2026 10:30",  # in the organisation's zone, not UTC
                  "Fil des messages\u00a0:", "Historique\u00a0:",
                  "Changement de statut\u00a0: Réponse envoyée → Clôturée\u00a0; Partiellement fondée"):
        assert shown in text, shown
    for raw in ("closed", "complaint", "email", "social_security", "fps-finance", "staff_attitude", "(aucune)",
                "acknowledgment", " :", "Fil des messages:"):
        assert raw not in text.replace("jeanne@example.org", ""), raw
    assert "Gestionnaire                   \u2014" in text  # neither "aucun" nor "aucune"


def test_outgoing_notice_shows_its_kind_and_the_subject_sent():
    ctx = _context("fr")
    with_subject = views.complaint_file_lines(
        _complaint(), [_out("Votre plainte MED-2026-00007 est bien reçue")], [], [], ctx)
    assert "      Objet\u00a0: Accusé de réception \u2014 Votre plainte MED-2026-00007 est bien reçue" in with_subject
    # A notice recorded before its subject was known still says what it was.
    assert "      Objet\u00a0: Accusé de réception" in views.complaint_file_lines(_complaint(), [_out()], [], [], ctx)
    failed = _out()
    failed.message_key = "failed:ack"
    assert any("non remis" in line for line in views.complaint_file_lines(_complaint(), [failed], [], [], ctx))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_every_text_and_label(language):
    assert set(views.TEXTS[language]) == set(views.TEXTS["fr"])
    for vocabulary, values in VOCABULARIES.items():
        for value, labels in values.items():
            assert labels.get(language), (vocabulary, value, language)
    for channel in Channel:
        assert label(channel.value, language, "channel") != channel.value
    for reason in HoldReason:
        assert label(reason.value, language, "hold_reason") != reason.value
    for status in Status:
        assert label(status.value, language) != status.value


def test_list_and_holding_pen_tables_have_translated_headers_and_aligned_columns():
    ctx = _context("nl")
    rows = [_complaint(), _complaint(number="MED-2026-00008", status="in_review", complainant_name="Luc Peeters")]
    header, *lines = views.complaint_table_lines(rows, ctx)
    assert header.startswith("Nummer") and "Onderwerp" in header
    column = header.index("Status")
    assert [line[column:].split("  ")[0] for line in lines] == ["Ontvangstbevestiging verstuurd", "In behandeling"]
    held = HeldMessage(id=3, reason="sender_not_party", suggestions=[{"number": "MED-2026-00007"}],
                       sender_email="x@example.com", subject_line="Re: dossier", received_at=AT)
    header, line = views.held_table_lines([held], ctx)
    assert "Reden" in header and "Afzender is geen partij" in line and line.endswith("MED-2026-00007")


async def test_a_follow_up_is_in_the_history_once(registry_on_db):
    registry, _published, clock = registry_on_db
    first = received(at=clock.now)
    number = (await registry.on_message_received(first)).number
    reply = received(at=clock.now, subject=f"Re: [{number}] pièce jointe", candidate_case_numbers=(number,))
    assert (await registry.on_message_received(reply)).action == "appended"
    await registry.on_message_received(reply)  # redelivered: nothing more in the file
    stranger = received(email="intrus@example.com", subject=f"Re: [{number}]", candidate_case_numbers=(number,))
    assert (await registry.on_message_received(stranger)).action == "held"
    [held] = await registry.store.held_messages()
    await registry.handle(AttachHeld(held.id, number, "agent@med.be"))

    _complaint_row, thread, changes, _parties = await registry.store.complaint_file(number)
    assert len(thread) == 3
    assert [(c.change, c.actor) for c in changes] == [
        ("registered", "registry"), ("follow_up_appended", "registry"), ("follow_up_attached", "agent@med.be")]
    assert changes[1].details["message_key"] == reply.message_key
    assert changes[1].details["sender"] == "jeanne.dupont@example.org"
    text = "\n".join(views.complaint_file_lines(_complaint_row, thread, changes, [], _context("fr")))
    assert f"Message ajouté au dossier\u00a0: jeanne.dupont@example.org \u2014 Re: [{number}] pièce jointe" in text


def _help(runner: CliRunner, *command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_help_names_arguments_and_lists_allowed_values(monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    runner = CliRunner()
    outputs = {name: _help(runner, name) for name in ("list", "show", "classify", "transition", "held", "attach")}
    outputs["group"] = _help(runner)
    for name, output in outputs.items():
        for odd in ("<str>", "<bool>", "<int>", "{number}", "{NUMBER}", "{"):
            assert odd not in output, (name, odd)
    assert "show [OPTIONS] NUMBER" in outputs["show"] and "attach [OPTIONS] HELD_ID NUMBER" in outputs["attach"]
    assert "complaint, suggestion, compliment, question" in outputs["classify"]
    assert "social_security" in outputs["classify"] and "fps-finance" in outputs["classify"]
    assert "fps-finance" in outputs["list"] and "waiting_for_citizen" in outputs["list"]
    assert "partially_founded" in outputs["transition"] and "fr, nl, de, en" in outputs["show"]


def test_classify_refuses_a_theme_the_configuration_does_not_know(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    runner = CliRunner()
    import asyncio

    from services.registry.handlers import Registry
    from services.registry.repository import RegistryStore, migrate
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import policy_from_settings
    from shared.database import create_engine

    class NoPublish:
        async def publish(self, rows):
            return None

    async def seed() -> None:
        engine = create_engine(database_url)
        await migrate(engine)
        await Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()), NoPublish()
                       ).on_message_received(received(at=AT))
        await engine.dispose()

    asyncio.run(seed())
    refused = runner.invoke(app, ["classify", "MED-2026-00001", "--by", "a@med.be", "--theme", "taxes"])
    assert refused.exit_code == 3 and "taxation" in refused.output
    done = runner.invoke(app, ["classify", "MED-2026-00001", "--by", "a@med.be", "--theme", "taxation",
                               "--kind", "suggestion", "--lang", "de"])
    assert done.exit_code == 0, done.output
    assert "Vorschlag" in done.output and "Steuern" in done.output
    wrong_kind = runner.invoke(app, ["classify", "MED-2026-00001", "--by", "a@med.be", "--kind", "complain"])
    assert wrong_kind.exit_code == 2
