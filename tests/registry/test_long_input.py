"""Input longer than any former column bound is registered, never dead-lettered (review of issue 4: a VARCHAR
overflow on PostgreSQL is not a unique-key race, so the event was retried, then dead-lettered), over real NATS and
both databases; and migration 0005 keeps the data and SQLite's search triggers of a register that already exists."""

from __future__ import annotations

from datetime import date, datetime, timezone

from alembic import command
from sqlalchemy import insert, text

from services.registry.commands import Assign
from services.registry.models import CaseParty, Complaint, ThreadMessage
from services.registry.repository import MIGRATIONS, ComplaintFilter, RegistryStore, migrate
from shared import streams
from shared.database import alembic_config, create_engine
from shared.events import ComplaintRegistered
from tests.registry.conftest import next_events, publish, received


async def test_huge_headers_are_registered_whole_or_fitted(running_registry, js):
    recipients = tuple(f"{'service.des.reclamations.' * 3}{i}@{'administration-federale.' * 2}be" for i in range(12))
    name = "Dupont-" * 57 + "J"  # 400 characters
    subject = ("Plainte concernant une facture d'énergie " * 50)[:2000]
    long_address = "x" * 400 + "@example.org"  # beyond any real mailbox (RFC 5321: 256 octets), still filed
    event = received(name=name, email=long_address, subject=subject,
                     message_id="<" + "m" * 1200 + "@mail.example.org>",
                     references=("<" + "r" * 3000 + "@example.org>",), language="fr-BE, nl-BE, de-BE, en"
                     ).model_copy(update={"recipients": recipients})
    await publish(js, event)
    [payload] = await next_events(js, streams.SUBJECT_COMPLAINT_REGISTERED, 1, "t-long")
    number = ComplaintRegistered.model_validate_json(payload).complaint_number
    found = await running_registry.store.complaint_file(number)
    assert found is not None
    complaint, [incoming], _changes, parties = found
    assert complaint.complainant_name == name and complaint.subject_line == subject
    assert complaint.complainant_email == long_address[:Complaint.complainant_email.type.length]
    assert parties == [complaint.complainant_email]
    assert incoming.recipient == ", ".join(recipients) and incoming.sender_name == name
    assert len(incoming.message_id) == ThreadMessage.message_id.type.length

    # Staff input is free text too: a long actor, handler and reason are recorded.
    actor = "agent.traitant." * 30 + "@med.be"
    await running_registry.registry.handle(Assign(number, "h" * 500 + "@med.be", actor, "r" * 5000))
    complaint = await running_registry.store.complaint(number)
    assert complaint.handler == "h" * 500 + "@med.be"

    # The citizen's reply, by the same (fitted) address, joins the same case.
    reply = received(email=long_address, name=name, subject=f"Re: [{number}] " + subject,
                     candidate_case_numbers=(number,)).model_copy(update={"recipients": recipients})
    await publish(js, reply)
    await next_events(js, streams.SUBJECT_MESSAGE_APPENDED, 1, "t-long-reply")
    assert len(await running_registry.store.list_complaints(ComplaintFilter())) == 1


async def test_migration_0005_keeps_an_existing_register(database_url):
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        config = alembic_config(MIGRATIONS, database_url)

        def run(connection, step) -> None:  # type: ignore[no-untyped-def]
            config.attributes["connection"] = connection
            step(config)

        async with engine.begin() as connection:
            await connection.run_sync(run, lambda c: command.downgrade(c, "0004_sqlite_text_search"))
        await _insert_case(engine)
        async with engine.begin() as connection:
            await connection.run_sync(run, lambda c: command.upgrade(c, "head"))
        async with engine.connect() as connection:
            row = (await connection.execute(text(
                "SELECT c.complainant_name, t.recipient, p.added_by FROM complaints c "
                "JOIN thread_messages t ON t.complaint_id = c.id JOIN case_parties p ON p.complaint_id = c.id"
            ))).one()
            assert tuple(row) == ("Jeanne Dupont", "plaintes@med.be", "registry")
            if engine.dialect.name == "sqlite":
                triggers = (await connection.execute(text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'complaints'"))).scalars()
                fts = (await connection.execute(text(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'complaints_fts'"))).scalar_one()
                assert sorted(triggers) == (sorted(["complaints_fts_delete", "complaints_fts_insert",
                                                    "complaints_fts_update"]) if fts else [])
        # After the copy, the search still finds old and new complaints (SQLite's FTS triggers were re-created).
        store = RegistryStore(engine)
        async with store.transaction() as tx:
            await tx.add(_complaint("MED-2026-00002", 2, "Pension de retraite", "k2"))
        for fragment, number in (("facture", "MED-2026-00001"), ("retraite", "MED-2026-00002")):
            found = await store.list_complaints(ComplaintFilter(text=fragment))
            assert [c.number for c in found] == [number]
    finally:
        await engine.dispose()


NOW = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)


NOW = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)


def _complaint(number: str, sequence: int, subject: str, key: str) -> Complaint:
    now = NOW
    return Complaint(number=number, year=2026, sequence=sequence, message_key=key, kind="complaint", channel="email",
                     received_at=now, legal_start=date(2026, 11, 24), complainant_name="Jeanne Dupont",
                     complainant_email="jeanne@example.org", subject_line=subject, body="", attachments=[],
                     admissibility="pending", admissibility_reasons=[], status="received",
                     acknowledgment_due=date(2026, 12, 1), answer_due=date(2027, 1, 8), answer_extended=False,
                     paused_days=0, recommendations=[], automated=False, created_at=now, updated_at=now)


def _given_columns(row: object) -> dict[str, object]:
    """The values given to a model instance, by column: an INSERT naming only them also fits the older schema the
    migration tests go back to (the model has columns later migrations added)."""
    table = type(row).__table__  # type: ignore[attr-defined]
    return {column.name: row.__dict__[column.key] for column in table.columns if column.key in row.__dict__}


async def _insert_case(engine) -> None:  # type: ignore[no-untyped-def]
    now = NOW
    async with engine.begin() as connection:
        complaint = _complaint("MED-2026-00001", 1, "Facture contestée", "k1")
        complaint_id = (await connection.execute(insert(Complaint.__table__).values(_given_columns(complaint))
                                                 .returning(Complaint.__table__.c.id))).scalar_one()
        thread = ThreadMessage(complaint_id=complaint_id, direction="in", message_key="k1", message_id="m1@x",
                               sender_name="Jeanne Dupont", sender_email="jeanne@example.org",
                               recipient="plaintes@med.be", subject_line="Facture contestée", body="",
                               attachments=[], automated=False, occurred_at=now)
        party = CaseParty(complaint_id=complaint_id, email="jeanne@example.org", role="complainant",
                          added_by="registry", added_at=now)
        await connection.execute(insert(ThreadMessage.__table__).values(_given_columns(thread)))
        await connection.execute(insert(CaseParty.__table__).values(_given_columns(party)))
