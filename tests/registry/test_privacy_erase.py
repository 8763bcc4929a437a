"""`ombudsdesk privacy erase|hold|release|rectify` against a real register (SQLite and PostgreSQL): the dry run lists
every file and copy and changes nothing; the erasure asks for confirmation, erases the citizen's own files, their
messages on another citizen's file (as an admitted correspondent, and as a sender staff attached without admitting)
and their held message — and nothing of them is left in any table — while a file under a legal hold is kept and the
other citizens' data stay; a rectification is recorded without its values."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

from typer.testing import CliRunner

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.commands import AddCorrespondent, AttachHeld
from services.registry.handlers import Registry
from services.registry.privacy.cli import app
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.wiring import policy_from_settings
from shared.database import create_engine
from sqlalchemy import select

from services.registry.models import HeldMessage, OutboxEvent
from shared.events import AttachmentRef, MessageReceived, Party, PersonalDataErased
from tests.registry.privacy_scan import rows_mentioning

NAME, EMAIL = "Ottoline Vexworth-Quabble", "ottoline.vexworth@example.org"
PHRASE = "my heron-shaped mailbox was confiscated 4QZ"
OTHER = "Baptistine Crumholt"
THIRD = "Hortense Plimsoll-Dagworth"
STRAY_PHRASE = "the wheelbarrow incident of 12 March QX7"
STRAY_OBJECT = "sha256-" + "7" * 64
AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


class _NoPublish:
    async def publish(self, rows):
        return None


def _mail(key: str, name: str, email: str, subject: str, body: str) -> MessageReceived:
    return MessageReceived(message_key=key, received_at=AT, sender=Party(name=name, email=email),
                           recipients=("plaintes@ombudsdesk.localhost",), subject_line=subject, text=body,
                           message_id=f"<{key}@mail.example.org>")


def _with_registry(database_url: str, action):
    async def main():
        engine = create_engine(database_url)
        await migrate(engine)
        try:
            return await action(Registry(RegistryStore(engine), policy_from_settings(RegistrySettings()),
                                         _NoPublish()), engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _seed(database_url: str) -> dict[str, str]:
    async def seed(registry: Registry, _engine) -> dict[str, str]:
        first = (await registry.handle(_mail("e-1", NAME, EMAIL, f"Plainte: {PHRASE}", f"{NAME}: {PHRASE}"))).number
        second = (await registry.handle(_mail("e-2", NAME, EMAIL, "Deuxième plainte", f"Encore {PHRASE}"))).number
        other = (await registry.handle(_mail("e-3", OTHER, "baptistine@example.org", "Pension", "Ma pension"))).number
        # The citizen writes on the other's file as an admitted correspondent, and once as a stranger (held).
        await registry.handle(AddCorrespondent(other, EMAIL, "agent@med.be"))
        appended = await registry.handle(_mail("e-4", NAME, EMAIL, f"Re: {other}", f"Témoignage: {PHRASE}"))
        assert appended.action == "appended", appended
        held = await registry.handle(_mail("e-5", NAME, EMAIL, "Sans numéro", f"{PHRASE} (bis)"))
        assert held.action in ("held", "registered"), held
        # On a third citizen's file she is no party: her testimony (with a document) is held, then staff attach it
        # without admitting her.
        third = (await registry.handle(_mail("e-7", THIRD, "hortense@example.org", "Allocations", "Mon dossier"))).number
        stray = _mail("e-6", NAME, EMAIL, f"Re: {third}", f"{NAME}: {STRAY_PHRASE}").model_copy(update={
            "raw_object": "e-6.eml", "attachments": (AttachmentRef(
                filename="témoignage.pdf", content_type="application/pdf", size=10, sha256="7" * 64,
                object_name=STRAY_OBJECT),)})
        assert (await registry.handle(stray)).action == "held"
        async with registry.store.reading() as tx:
            held_id = (await tx.session.execute(
                select(HeldMessage.id).where(HeldMessage.message_key == "e-6"))).scalar_one()
        await registry.handle(AttachHeld(held_id, third, "agent@med.be"))
        return {"first": first, "second": second, "other": other, "third": third}

    return _with_registry(database_url, seed)


def test_erasure_on_request_from_the_command_line(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    files = _seed(database_url)
    runner = CliRunner()

    held = runner.invoke(app, ["hold", files["second"], "--reason", "litigation 2026/77", "--by", "dpo@med.be"])
    assert held.exit_code == 0, held.output
    dry = runner.invoke(app, ["erase", EMAIL.upper(), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    roles = {f["number"]: (f["role"], f["on_hold"]) for f in planned["files"]}
    assert roles[files["first"]] == ("complainant", False)
    assert roles[files["second"]] == ("complainant", True)
    assert roles[files["other"]] == ("correspondent", False)
    assert roles[files["third"]] == ("correspondent", False)
    first_copies = next(f["copies"] for f in planned["files"] if f["number"] == files["first"])
    assert first_copies["thread_messages"] >= 1 and first_copies["outbox_rows"] >= 1 and first_copies["parties"] == 1
    # On the third file, only her part is listed: her one message, its original and document, no party row.
    third_copies = next(f["copies"] for f in planned["files"] if f["number"] == files["third"])
    assert {key: third_copies[key] for key in ("thread_messages", "message_keys", "raw_objects", "attachment_objects",
                                               "parties", "notes", "position_requests")} == {
        "thread_messages": 1, "message_keys": 1, "raw_objects": 1, "attachment_objects": 1, "parties": 0, "notes": 0,
        "position_requests": 0}
    assert third_copies["change_log_entries"] >= 1  # the attachment of her message names it
    text = runner.invoke(app, ["erase", EMAIL, "--dry-run", "--lang", "en"])
    assert "complainant" in text.output and "dry run: nothing changed" in text.output and NAME not in text.output
    assert _with_registry(database_url, lambda _r, engine: rows_mentioning(engine, (PHRASE,))) != {}

    refused = runner.invoke(app, ["erase", EMAIL], input="n\n")
    assert refused.exit_code == 1
    assert _with_registry(database_url, lambda _r, engine: rows_mentioning(engine, (PHRASE,))) != {}

    done = runner.invoke(app, ["erase", EMAIL, "--yes", "--json", "--by", "dpo@med.be"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    erased_files = [n for n in result["done"] if not n.startswith("held:")]
    assert sorted(erased_files) == sorted(n for n, (_role, on_hold) in roles.items() if not on_hold)
    assert result["kept"] == {files["second"]: "legal hold"}

    async def after(registry: Registry, engine):
        store = registry.store
        async with store.reading() as tx:
            erasures = [PersonalDataErased.model_validate_json(payload) for payload in (await tx.session.execute(
                select(OutboxEvent.payload).where(OutboxEvent.dedup_id.like("erased:%")))).scalars()]
        return (await rows_mentioning(engine, (NAME, EMAIL, PHRASE, "Vexworth", STRAY_PHRASE)),
                await store.complaint(files["other"]), await store.complaint(files["second"]),
                await AuditTrail(engine).search(AuditFilter(action="change.*", limit=50)),
                await store.complaint_file(files["third"]), erasures)

    found, other, kept, audit, third_file, erasures = _with_registry(database_url, after)
    # Only the held file still holds the citizen: no other table or row does.
    assert set(found) <= {"complaints", "thread_messages", "outbox", "case_parties", "change_log",
                          "complaints_fts", "complaints_fts_data"}
    assert all(needle != STRAY_PHRASE for needles in found.values() for needle in needles)
    assert other.complainant_name == OTHER and other.complainant_email == "baptistine@example.org"
    assert kept.complainant_email == EMAIL
    assert ("change.anonymised", files["first"]) in [(e.action, e.number) for e in audit]
    assert ("change.correspondent_erased", files["other"]) in [(e.action, e.number) for e in audit]
    assert ("change.correspondent_erased", files["third"]) in [(e.action, e.number) for e in audit]
    assert all(EMAIL not in json.dumps(e.details) for e in audit)
    # The third file: its complainant whole, her message blanked, the erasure in its change log without her.
    third, thread, changes, _parties = third_file
    assert third.complainant_name == THIRD and third.complainant_email == "hortense@example.org"
    [hers] = [m for m in thread if m.message_key == "e-6"]
    assert (hers.sender_email, hers.raw_object, hers.attachments) == (None, None, [])
    assert STRAY_PHRASE not in hers.body and NAME not in hers.sender_name
    assert any(m.body == "Mon dossier" for m in thread if m.direction == "in")
    [logged] = [c for c in changes if c.change == "correspondent_erased"]
    assert set(logged.details) == {"erasure_id", "mode", "reason"} and logged.reason is None
    # What intake and the notifier are told: her message's original and document, and her address's hash only.
    [told] = [e for e in erasures if e.complaint_number == files["third"]]
    assert (told.scope, told.message_keys, told.raw_objects, told.attachment_objects) == (
        "messages", ("e-6",), ("e-6.eml",), (STRAY_OBJECT,))
    assert told.recipient_hashes == (PersonalDataErased.address_hash(EMAIL),) and told.erasure_id == \
        logged.details["erasure_id"]

    # Releasing the hold and erasing again leaves nothing of the citizen anywhere.
    assert runner.invoke(app, ["release", files["second"], "--reason", "settled"]).exit_code == 0
    again = runner.invoke(app, ["erase", EMAIL, "--yes"])
    assert again.exit_code == 0, again.output
    assert _with_registry(database_url, lambda _r, engine: rows_mentioning(engine, (NAME, EMAIL, PHRASE))) == {}
    assert _with_registry(database_url, lambda _r, engine: rows_mentioning(engine, (OTHER,))) != {}
    assert _with_registry(database_url, lambda _r, engine: rows_mentioning(engine, (THIRD,))) != {}


def test_rectification_records_the_fields_not_the_values(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    files = _seed(database_url)
    runner = CliRunner()
    new_address = "ottoline.new-address@example.net"
    done = runner.invoke(app, ["rectify", files["first"], "--email", new_address, "--postal-address",
                               "Quai Nouveau 1, 1000 Bruxelles", "--by", "dpo@med.be", "--reason", "citizen asked"])
    assert done.exit_code == 0, done.output
    bad = runner.invoke(app, ["rectify", files["first"], "--email", "not an address"])
    assert bad.exit_code == 3

    async def read(registry: Registry, engine):
        found = await registry.store.complaint_file(files["first"])
        audit = await AuditTrail(engine).search(AuditFilter(action="change.rectified", limit=5))
        return found, audit

    (complaint, _thread, changes, parties), audit = _with_registry(database_url, read)
    assert complaint.complainant_email == new_address and complaint.complainant_postal_address.startswith("Quai")
    assert new_address in parties and EMAIL not in parties
    rectified = [c for c in changes if c.change == "rectified"]
    assert rectified[0].details == {"fields": ["complainant_email", "complainant_postal_address"]}
    assert [e.details for e in audit] == [{"fields": ["complainant_email", "complainant_postal_address"]}]
    assert all(new_address not in json.dumps(e.details) and EMAIL not in (e.reason or "") for e in audit)


def test_an_official_s_answers_stay_in_the_files_they_answer(database_url, monkeypatch, tmp_path):
    """The security review: an administration's answers are the official record of someone else's file; erasing
    the official's (or the administration's shared) address must not blank them there."""
    from sqlalchemy import update

    from services.registry.models import ThreadMessage

    monkeypatch.setenv("OMBUDSDESK_REGISTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    official = "courrier@commune.example.be"

    async def seed(registry: Registry, engine) -> str:
        number = (await registry.handle(_mail("a-1", THIRD, "hortense@example.org", "Voirie", "Mon trottoir"))).number
        answer = _mail("a-2", "Commune", official, f"Re: {number}", "Réponse de la commune: travaux prévus")
        assert (await registry.handle(answer)).action == "held"
        async with registry.store.reading() as tx:
            held_id = (await tx.session.execute(
                select(HeldMessage.id).where(HeldMessage.message_key == "a-2"))).scalar_one()
        await registry.handle(AttachHeld(held_id, number, "agent@med.be"))
        async with engine.begin() as connection:  # as issue 15's filing of an administration's answer marks it
            await connection.execute(update(ThreadMessage).where(ThreadMessage.message_key == "a-2")
                                     .values(party="administration"))
        return number

    number = _with_registry(database_url, seed)
    dry = CliRunner().invoke(app, ["erase", official, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert [f["number"] for f in json.loads(dry.output)["files"]] == []
    done = CliRunner().invoke(app, ["erase", official, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    found = _with_registry(database_url, lambda _r, engine: rows_mentioning(engine, ("travaux prévus",)))
    assert "thread_messages" in found, number


def test_a_notice_reported_after_the_erasure_files_nothing_personal(database_url):
    """The notifier may report a notice it sent, or that failed, after the file was erased (its report left before
    the erasure reached it, or is redelivered): the register files the fact, without whom to, the subject or the
    refusal (which may quote the address)."""
    from services.registry.commands import AnonymiseFile
    from shared.events import NotificationFailed, NotificationSent

    async def report_after_erasure(registry: Registry, engine):
        number = (await registry.handle(_mail("n-1", NAME, EMAIL, f"Plainte: {PHRASE}", PHRASE))).number
        assert await registry.handle(AnonymiseFile(number, "dpo@med.be", reason="request")) is not None
        await registry.handle(NotificationSent(
            notification_key=f"ack:{number}", complaint_number=number, notice_kind="acknowledgment",
            recipient=EMAIL, message_id=f"<ack-{number}@ombudsdesk.localhost>", subject_line=f"Reçu: {PHRASE}"))
        await registry.handle(NotificationFailed(
            notification_key=f"follow:{number}", complaint_number=number, notice_kind="follow_up_received",
            recipient=EMAIL, reason=f"recipient_refused: 550 5.1.1 <{EMAIL}>: no such user"))
        async with registry.store.reading() as tx:
            complaint = await tx.complaint_by_number(number)
            entries = {entry.message_key for entry in await tx.thread(complaint.id)}
        return number, entries, await rows_mentioning(engine, (EMAIL, PHRASE, "heron"))

    number, entries, found = _with_registry(database_url, report_after_erasure)
    assert {f"out:ack:{number}", f"failed:follow:{number}"} <= entries  # both facts filed
    assert found == {}
