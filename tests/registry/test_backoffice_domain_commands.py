"""The back office's commands over a real database (SQLite and PostgreSQL, issue 13): data-protection files, notes,
links, merge and its undoing, manual entry, messages to the citizen; and migration 0010's backfill."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import insert, select

from services.registry import views
from services.registry.commands import (
    AddCorrespondent,
    AddNote,
    Classify,
    LinkComplaints,
    MergeComplaints,
    RaiseDeadlineAlerts,
    RegisterManual,
    SendMessage,
    Transition,
    UndoMerge,
    UnlinkComplaints,
)
from services.registry.handlers import Conflict, NotFound
from services.registry.models import Complaint
from services.registry.repository import MIGRATIONS, migrate
from shared.database import alembic_config, create_engine
from shared.events import (
    ComplaintChanged,
    ComplaintRegistered,
    DeadlineApproaching,
    DeadlineMissed,
    NoticeRequested,
)
from tests.registry.conftest import received

BRUSSELS = ZoneInfo("Europe/Brussels")
STAFF = "agent@med.be"


async def _register(registry, clock, **fields) -> str:
    outcome = await registry.on_message_received(received(at=clock.now, **fields))
    assert outcome.action == "registered"
    return outcome.number


def _text(found, language: str = "fr") -> str:
    return "\n".join(views.complaint_file_lines(*found, views.TextContext(language=language), found.extras))


# --- data protection -------------------------------------------------------------------------------------------------
async def test_a_data_protection_complaint_is_flagged_and_its_alerts_name_only_the_number(registry_on_db):
    registry, published, clock = registry_on_db
    protected = await _register(registry, clock, subject="RGPD : on a publié mes données personnelles")
    ordinary = await _register(registry, clock, subject="Facture d'énergie contestée")
    dpo_file, other_file = await registry.store.complaint(protected), await registry.store.complaint(ordinary)
    assert (dpo_file.data_protection, other_file.data_protection) == (True, False)
    assert dpo_file.handler == "dpo@example.org"  # the shipped screening example's DPO
    assert views.complaint_summary(dpo_file)["data_protection"] is True

    clock.advance(days=90)  # both deadlines of both files missed
    for complaint in (dpo_file, other_file):
        assert await registry.handle(RaiseDeadlineAlerts(complaint.id, (3,))) > 0
    alerts = published.of(DeadlineMissed) + published.of(DeadlineApproaching)
    assert {alert.complaint_number for alert in alerts} == {protected, ordinary}
    assert {alert.subject_line for alert in alerts if alert.complaint_number == protected} == {""}
    assert {alert.subject_line for alert in alerts if alert.complaint_number == ordinary} == {
        "Facture d'énergie contestée"}


async def test_staff_classify_a_file_as_data_protection_and_back(registry_on_db):
    registry, _published, clock = registry_on_db
    number = await _register(registry, clock, subject="Facture")
    complaint = await registry.handle(Classify(number, STAFF, "the citizen speaks of his file at the DPO",
                                               data_protection=True))
    assert complaint.data_protection is True
    again = await registry.handle(Classify(number, STAFF, data_protection=True))  # no change, no entry
    assert again.data_protection is True
    await registry.handle(Classify(number, STAFF, data_protection=False))
    found = await registry.store.complaint_file(number)
    classified = [c.details for c in found[2] if c.change == "classification"]
    assert classified == [{"data_protection": {"from": False, "to": True}},
                          {"data_protection": {"from": True, "to": False}}]
    assert "Protection des données oui → non" in _text(found).replace("\u00a0", " ")


# --- notes and links -------------------------------------------------------------------------------------------------
async def test_a_note_is_added_once_per_request_and_never_joins_the_thread(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _register(registry, clock)
    note = AddNote(number, "Appelé la citoyenne :\nelle envoie la facture lundi.", STAFF)
    await registry.handle(note)
    await registry.handle(note)  # the same request again (a form sent twice)
    await registry.handle(AddNote(number, "Facture reçue.", "autre@med.be"))
    with pytest.raises(Conflict):
        await registry.handle(AddNote(number, "   ", STAFF))
    found = await registry.store.complaint_file(number)
    complaint, thread, changes, _parties = found
    assert [(n.author, n.text) for n in found.extras.notes] == [
        (STAFF, "Appelé la citoyenne :\nelle envoie la facture lundi."), ("autre@med.be", "Facture reçue.")]
    assert len(thread) == 1  # the registering message only
    assert [c.details for c in changes if c.change == "note_added"] == [{"note_id": n.id} for n in found.extras.notes]
    as_json = views.complaint_file(*found, found.extras)
    assert [n["text"] for n in as_json["notes"]] == ["Appelé la citoyenne :\nelle envoie la facture lundi.",
                                                    "Facture reçue."]
    text = _text(found)
    assert "Notes internes" in text and "      | elle envoie la facture lundi." in text
    assert "Internal notes" in _text(found, "en") and "Interne Notizen" in _text(found, "de")
    assert [c.change for c in published.of(ComplaintChanged)].count("note_added") == 2


async def test_links_are_recorded_on_both_files_once(registry_on_db):
    registry, published, clock = registry_on_db
    first = await _register(registry, clock, email="a@example.org")
    second = await _register(registry, clock, email="b@example.org")
    await registry.handle(LinkComplaints(first, second.lower(), STAFF, "same facts"))
    await registry.handle(LinkComplaints(second, first, STAFF))  # the same pair: nothing new
    for number, other in ((first, second), (second, first)):
        found = await registry.store.complaint_file(number)
        assert [(link.number, link.linked_by) for link in found.extras.links] == [(other, STAFF)]
        assert [(c.change, c.details, c.reason) for c in found[2] if c.change.startswith("link")] == [
            ("link_added", {"other": other}, "same facts")]
        assert views.complaint_file(*found, found.extras)["links"][0]["number"] == other
        assert "Dossiers liés" in _text(found) and other in _text(found)
    with pytest.raises(Conflict):
        await registry.handle(LinkComplaints(first, first, STAFF))
    with pytest.raises(NotFound):
        await registry.handle(LinkComplaints(first, "MED-2026-09999", STAFF))
    await registry.handle(UnlinkComplaints(second, first, STAFF, "not the same after all"))
    await registry.handle(UnlinkComplaints(first, second, STAFF))  # not linked any more: nothing
    for number in (first, second):
        found = await registry.store.complaint_file(number)
        assert found.extras.links == []
        assert [c.change for c in found[2] if c.change.startswith("link")] == ["link_added", "link_removed"]
    assert [c.change for c in published.of(ComplaintChanged)].count("link_removed") == 2


# --- merge -----------------------------------------------------------------------------------------------------------
async def _snapshot(registry, number: str) -> dict:
    found = await registry.store.complaint_file(number)
    complaint, thread, _changes, parties = found
    return {"status": complaint.status, "closed_at": complaint.closed_at, "merged_into": complaint.merged_into,
            "thread": sorted(m.id for m in thread), "parties": parties, "answer_due": complaint.answer_due,
            "acknowledged_at": complaint.acknowledged_at}


async def test_merge_moves_the_thread_and_undo_restores_exactly(registry_on_db):
    registry, published, clock = registry_on_db
    source = await _register(registry, clock, email="jeanne@example.org", subject="Facture de mars")
    clock.advance(hours=2)
    await registry.on_message_received(received(at=clock.now, email="jeanne@example.org",
                                                subject=f"Re: [{source}] la facture", candidate_case_numbers=(source,)))
    await registry.handle(AddCorrespondent(source, "avocat@example.org", STAFF))
    await registry.handle(Transition(source, "acknowledged", STAFF))
    await registry.handle(Transition(source, "in_review", STAFF))
    target = await _register(registry, clock, email="jeanne@example.org", subject="Facture de mars (bis)")
    before = {source: await _snapshot(registry, source), target: await _snapshot(registry, target)}
    assert len(before[source]["thread"]) == 2 and before[target]["parties"] == ["jeanne@example.org"]

    merged = await registry.handle(MergeComplaints(source, target, STAFF, "the same complaint, sent twice"))
    assert merged.number == target
    after_source, after_target = await _snapshot(registry, source), await _snapshot(registry, target)
    assert after_source["thread"] == [] and after_source["status"] == "merged"
    assert after_source["merged_into"] == target and after_source["closed_at"] == clock.now
    assert after_target["thread"] == sorted(before[source]["thread"] + before[target]["thread"])
    assert after_target["parties"] == ["avocat@example.org", "jeanne@example.org"]
    target_file, source_file = await registry.store.complaint_file(target), await registry.store.complaint_file(source)
    assert target_file.extras.merged_from == [source]
    assert [(c.change, c.actor, c.reason) for c in source_file[2]][-1] == (
        "merged_into", STAFF, "the same complaint, sent twice")
    assert target_file[2][-1].change == "merged_from" and target_file[2][-1].details["source"] == source
    assert views.complaint_file(*source_file, source_file.extras)["merged_into"] == target
    assert views.complaint_file(*target_file, target_file.extras)["merged_from"] == [source]
    assert any(line.startswith("Fusionnée dans") and line.endswith(target) for line in _text(source_file).splitlines())
    assert any(line.startswith("Dossiers fusionnés dans celui-ci") and line.endswith(source)
               for line in _text(target_file).splitlines())
    # Ended: no workflow move out of it, no deadline alert, not among the open files.
    with pytest.raises(Conflict):
        await registry.handle(Transition(source, "in_review", STAFF))
    assert source not in {c.number for c in await registry.store.open_complaints()}
    # Merging again into the same file changes nothing.
    changes_before = len((await registry.store.complaint_file(target))[2])
    await registry.handle(MergeComplaints(source, target, STAFF))
    assert len((await registry.store.complaint_file(target))[2]) == changes_before

    restored = await registry.handle(UndoMerge(source, STAFF, "not the same after all"))
    assert restored.number == source
    assert await _snapshot(registry, source) == before[source]
    assert await _snapshot(registry, target) == before[target]
    for number in (source, target):
        found = await registry.store.complaint_file(number)
        assert found[2][-1].change == "merge_undone" and found[2][-1].reason == "not the same after all"
        assert found.extras.merged_from == []
    await registry.handle(UndoMerge(source, STAFF))  # nothing merged any more: nothing changes
    assert await _snapshot(registry, source) == before[source]
    assert [c.change for c in published.of(ComplaintChanged)].count("merge_undone") == 2
    # The file works as before: its workflow goes on.
    await registry.handle(Transition(source, "waiting_for_citizen", STAFF))


async def test_a_reply_naming_a_merged_file_joins_the_file_it_was_merged_into(registry_on_db):
    registry, _published, clock = registry_on_db
    source = await _register(registry, clock, email="jeanne@example.org", subject="Facture")
    target = await _register(registry, clock, email="paul@example.org", subject="Facture aussi")
    await registry.handle(MergeComplaints(source, target, STAFF))
    outcome = await registry.on_message_received(received(at=clock.now, email="jeanne@example.org",
                                                          subject=f"Re: [{source}] encore",
                                                          candidate_case_numbers=(source,)))
    assert (outcome.action, outcome.number) == ("appended", target)


async def test_merges_that_would_chain_or_expose_a_protected_file_are_refused(registry_on_db):
    registry, _published, clock = registry_on_db
    first = await _register(registry, clock, email="a@example.org")
    second = await _register(registry, clock, email="b@example.org")
    third = await _register(registry, clock, email="c@example.org")
    protected = await _register(registry, clock, email="d@example.org", subject="RGPD : mes données personnelles")
    with pytest.raises(Conflict, match="itself"):
        await registry.handle(MergeComplaints(first, first.lower(), STAFF))
    with pytest.raises(Conflict, match="data-protection"):
        await registry.handle(MergeComplaints(protected, first, STAFF))
    await registry.handle(MergeComplaints(first, second, STAFF))
    with pytest.raises(Conflict, match="undo those merges first"):
        await registry.handle(MergeComplaints(second, third, STAFF))
    with pytest.raises(Conflict, match="is merged into"):
        await registry.handle(MergeComplaints(third, first, STAFF))
    with pytest.raises(Conflict, match="already merged"):
        await registry.handle(MergeComplaints(first, third, STAFF))
    # An ordinary file may go into a protected one (it becomes only more restricted).
    await registry.handle(MergeComplaints(third, protected, STAFF))
    assert (await registry.store.complaint(third)).merged_into == protected


# --- manual entry ----------------------------------------------------------------------------------------------------
def _manual(channel: str = "phone", **fields) -> RegisterManual:
    values = {"name": "Marc Lejeune", "email": "marc@example.be", "language": "fr",
              "subject": "Allocation non versée", "body": "Il appelle : son allocation n'est pas arrivée.",
              "received_on": date(2026, 11, 24)}
    return RegisterManual(channel, STAFF, **{**values, **fields})


async def test_manual_entry_continues_the_numbering_with_the_same_screening(registry_on_db):
    registry, published, clock = registry_on_db
    mailed = await _register(registry, clock)
    entry = _manual()
    complaint = await registry.handle(entry)
    assert complaint.number == f"MED-2026-{int(mailed[-5:]) + 1:05d}"
    assert (complaint.channel, complaint.legal_start, complaint.kind) == ("phone", date(2026, 11, 24), "complaint")
    assert complaint.screening_proposal is not None and complaint.admissibility == "pending"
    assert (await registry.handle(entry)).number == complaint.number  # the same request: the same complaint
    next_mailed = await _register(registry, clock, email="autre@example.org")
    assert next_mailed == f"MED-2026-{int(mailed[-5:]) + 2:05d}"  # no number lost to the repeated request

    registered = [e for e in published.of(ComplaintRegistered) if e.complaint_number == complaint.number]
    assert len(registered) == 1
    [event] = registered
    assert (event.channel.value, event.legal_start, event.complainant.email) == ("phone", date(2026, 11, 24),
                                                                                  "marc@example.be")
    assert event.answer_due == complaint.answer_due and event.reply_to_message_id is None
    found = await registry.store.complaint_file(complaint.number)
    assert [(m.direction, m.body) for m in found[1]] == [("in", "Il appelle : son allocation n'est pas arrivée.")]
    assert [(c.change, c.actor) for c in found[2]] == [("registered", STAFF)]
    assert "Enregistrement : Téléphone" in _text(found).replace("\u00a0", " ")


async def test_manual_letter_without_email_and_a_past_day_in_the_registers_zone(registry_on_db):
    registry, published, clock = registry_on_db
    clock.now = datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc)  # already 25 November in Brussels
    today = await registry.handle(_manual("in_person", received_on=date(2026, 11, 25), email=None))
    assert today.legal_start == date(2026, 11, 25)
    assert today.received_at == clock.now
    letter = await registry.handle(_manual(
        "letter", email=None, postal_address="Rue de la Loi 16\n1000 Bruxelles", received_on=date(2026, 11, 20),
        body="Je conteste le traitement de mes données personnelles (RGPD)."))
    assert letter.legal_start == date(2026, 11, 20)
    assert letter.received_at.astimezone(BRUSSELS) == datetime(2026, 11, 20, tzinfo=BRUSSELS)
    assert letter.data_protection is True and letter.handler == "dpo@example.org"  # screened like mail
    event = [e for e in published.of(ComplaintRegistered) if e.complaint_number == letter.number][0]
    # No email: the notifier acknowledges by a printed letter to this address.
    assert (event.complainant.email, event.complainant.postal_address) == (None, "Rue de la Loi 16\n1000 Bruxelles")
    assert event.channel.value == "letter" and event.legal_start == date(2026, 11, 20)
    for refused in (_manual(received_on=date(2026, 11, 26)), _manual("email"), _manual(email="not an address"),
                    _manual(subject="", body="  "), _manual(kind="gossip"), _manual(language="xx")):
        with pytest.raises(Conflict):
            await registry.handle(refused)


# --- messages to the citizen -----------------------------------------------------------------------------------------
async def test_a_message_to_the_citizen_is_requested_once_per_request(registry_on_db):
    registry, published, clock = registry_on_db
    number = await _register(registry, clock)
    message = SendMessage(number, "Bonjour,\nnous avons bien reçu votre facture.", STAFF)
    await registry.handle(message)
    await registry.handle(message)  # handled twice (a retried request): one notice
    notices = [n for n in published.of(NoticeRequested) if n.notice_kind == "staff_message"]
    assert len(notices) == 1
    [notice] = notices
    assert notice.request_key == f"staff_message:{number}:{message.request_key}"
    assert notice.recipient.email == "jeanne.dupont@example.org" and notice.complaint_number == number
    assert notice.context["text"] == "Bonjour,\nnous avons bien reçu votre facture."
    found = await registry.store.complaint_file(number)
    logged = [c for c in found[2] if c.change == "staff_message"]
    assert [(c.actor, c.details["text"]) for c in logged] == [(STAFF, "Bonjour,\nnous avons bien reçu votre facture.")]
    assert "Message envoyé au citoyen" in _text(found)

    await registry.handle(SendMessage(number, "Goedendag.", STAFF, "nl-BE"))  # another request, in Dutch
    dutch = [n for n in published.of(NoticeRequested) if n.notice_kind == "staff_message"][-1]
    assert (dutch.context["language"], dutch.recipient.language, dutch.context["text"]) == ("nl", "nl", "Goedendag.")
    for refused in (SendMessage(number, "  ", STAFF), SendMessage(number, "x", STAFF, "klingon"),
                    SendMessage(number, "ligne\n" * 401, STAFF)):
        with pytest.raises(Conflict):
            await registry.handle(refused)
    anonymous = await _register(registry, clock, email=None, name="")
    with pytest.raises(Conflict, match="neither an email nor a postal address"):
        await registry.handle(SendMessage(anonymous, "Bonjour", STAFF))
    assert len([n for n in published.of(NoticeRequested) if n.notice_kind == "staff_message"]) == 2


# --- migration 0010 --------------------------------------------------------------------------------------------------
async def test_migration_0010_flags_existing_data_protection_files(database_url):
    engine = create_engine(database_url)
    now = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    try:
        await migrate(engine)
        config = alembic_config(MIGRATIONS, database_url)

        def run(connection, step) -> None:  # type: ignore[no-untyped-def]
            config.attributes["connection"] = connection
            step(config)

        async with engine.begin() as connection:
            await connection.run_sync(run, lambda c: command.downgrade(c, "0009_audit_trail"))
        proposals = {1: {"admissible": True, "route_to_dpo": True}, 2: {"admissible": True, "route_to_dpo": False},
                     3: None, 4: {"admissible": False}}
        table = Complaint.__table__
        async with engine.begin() as connection:
            for sequence, proposal in proposals.items():
                values = {"number": f"MED-2026-{sequence:05d}", "year": 2026, "sequence": sequence,
                          "message_key": f"k{sequence}", "kind": "complaint", "channel": "email", "received_at": now,
                          "legal_start": date(2026, 11, 24), "complainant_name": "", "subject_line": "",
                          "body": "", "attachments": [], "admissibility": "pending", "admissibility_reasons": [],
                          "screening_proposal": proposal, "status": "received",
                          "acknowledgment_due": date(2026, 12, 1), "answer_due": date(2027, 1, 8),
                          "answer_extended": False, "paused_days": 0, "recommendations": [], "automated": False,
                          "created_at": now, "updated_at": now}
                await connection.execute(insert(table).values(values))
        async with engine.begin() as connection:
            await connection.run_sync(run, lambda c: command.upgrade(c, "head"))
        async with engine.connect() as connection:
            flags = dict((await connection.execute(
                select(table.c.sequence, table.c.data_protection).order_by(table.c.sequence))).all())
            merged = set((await connection.execute(select(table.c.merged_into))).scalars())
        assert flags == {1: True, 2: False, 3: False, 4: False}
        assert merged == {None}
    finally:
        await engine.dispose()


# --- the command line ------------------------------------------------------------------------------------------------
def test_register_cli_enters_notes_links_merges_and_manual_complaints(database_url, monkeypatch, tmp_path):
    import json

    from typer.testing import CliRunner

    from services.registry.cli import app

    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    today = datetime.now(BRUSSELS).date()  # the register's default zone
    first = ok("new", "phone", "--by", STAFF, "--name", "Marc Lejeune", "--email", "marc@example.be",
               "--subject", "Allocation non versée").split()[0]
    second = ok("new", "letter", "--by", STAFF, "--name", "Anne Noël", "--postal-address", "Rue Haute 1, Bruxelles",
                "--subject", "Courrier perdu", "--received-on", today.isoformat(), "--kind", "question").split()[0]
    assert second == f"{first[:-5]}{int(first[-5:]) + 1:05d}"
    ok("note", first, "Rappeler lundi", "--by", STAFF)
    ok("link", first, second, "--by", STAFF, "--reason", "même famille")
    shown = json.loads(ok("show", first, "--json"))
    assert (shown["channel"], shown["notes"][0]["text"], shown["links"][0]["number"]) == (
        "phone", "Rappeler lundi", second)
    ok("unlink", first, second, "--by", STAFF)
    ok("merge", second, first, "--by", STAFF, "--reason", "doublon")
    assert json.loads(ok("show", first, "--json"))["merged_from"] == [second]
    text = ok("show", second, "--lang", "nl")
    assert "Samengevoegd met" in text and first in text and "Samengevoegd" in text
    assert [row["number"] for row in json.loads(ok("list", "--json", "--channel", "letter"))] == [second]
    assert [row["number"] for row in json.loads(ok("list", "--json", "--status", "merged"))] == [second]
    ok("unmerge", second, "--by", STAFF)
    assert json.loads(ok("show", second, "--json"))["status"] == "received"
    refused = runner.invoke(app, ["new", "phone", "--by", STAFF, "--subject", "x", "--received-on", "2999-01-01"])
    assert refused.exit_code == 3 and "refused" in refused.output

