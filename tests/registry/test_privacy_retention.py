"""Retention in the register (issue 16), on SQLite and PostgreSQL: the annual indicators of a past year are identical
before and after the retention run anonymises that year's closed files; a dry run lists exactly what the real run
does; a legal hold suspends it; and afterwards the citizen's name, email, postal address and a unique phrase of their
text are found in no row of any table of the register's database (the full-text index, change log, thread, notes,
holding pen and published outbox rows included), while another citizen's file is intact."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select, text, update

from services.registry.access.audit import AuditFilter, AuditTrail
from services.registry.commands import AddNote, PlaceLegalHold, ReleaseLegalHold, SendMessage, Transition
from services.registry.handlers import Conflict
from services.registry.models import OutboxEvent
from services.registry.privacy import retention
from services.registry.privacy.anonymise import ANONYMISED
from services.registry.privacy.schedule import Action, RetentionSchedule, Rule
from services.registry.reports import annual_report
from services.registry.repository import ComplaintFilter
from shared.events import MessageReceived, Party, PersonalDataErased
from tests.registry.privacy_scan import rows_mentioning

_serial = iter(range(1, 10_000))

NAME = "Zébulon Quaxtorff-Plimm"
EMAIL = "zebulon.quaxtorff@example.org"
OTHER_ADDRESS = "z.quaxtorff.second@example.net"
POSTAL = "Rue des Hirondelles Zinzolines 977, 4999 Wxyzville"
PHRASE = "the purple walrus ate my tax refund form 77XQ"
SECRETS = (NAME, EMAIL, OTHER_ADDRESS, POSTAL, PHRASE, "Quaxtorff", "walrus ate my tax")
OTHER_NAME = "Héloïse Brindlecombe"
SCHEDULE = RetentionSchedule(closed_years=5, inadmissible_years=1, held_days=90)


def _mail(name: str, email: str, at: datetime, subject: str, body: str = "Je conteste la facture.",
          postal: str | None = None) -> MessageReceived:
    serial = next(_serial)
    return MessageReceived(message_key=f"privacy-{serial}", received_at=at,
                           sender=Party(name=name, email=email, postal_address=postal, language="fr"),
                           recipients=("plaintes@ombudsdesk.localhost",), subject_line=subject, text=body,
                           message_id=f"<p{serial}@mail.example.org>")


def _at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


async def _close(registry, number: str, clock, *, outcome: str = "founded", answer: str = "Votre plainte est fondée.",
                 category: str | None = "file_processing") -> None:
    for status in ("acknowledged", "in_review"):
        await registry.handle(Transition(number, status, "agent@med.be"))
    clock.advance(days=20)
    await registry.handle(Transition(number, "answered", "agent@med.be", answer_text=answer))
    clock.advance(days=3)
    await registry.handle(Transition(number, "closed", "agent@med.be", outcome=outcome, category=category))


async def _citizen_files(registry, clock) -> dict[str, str]:
    """Files of 2020 (the citizen's, closed; another's, closed and held; an inadmissible one) and a recent one."""
    clock.now = _at(2020, 3, 2)
    mine = await registry.handle(_mail(NAME, EMAIL, _at(2020, 3, 2, 9), f"Plainte {NAME}: {PHRASE}",
                                       f"Je soussigné {NAME}, domicilié {POSTAL}, écris: {PHRASE}.", POSTAL))
    number = mine.number
    # A follow-up from the same address (attached to the thread) and one from another of their addresses (held).
    follow_up = await registry.handle(_mail(NAME, EMAIL, _at(2020, 3, 5, 9), f"Re: {number} {PHRASE}",
                                            f"Encore: {PHRASE}"))
    assert follow_up.action == "appended", follow_up
    held = await registry.handle(_mail(NAME, OTHER_ADDRESS, _at(2020, 3, 6, 9), f"Re: {number} {PHRASE}",
                                       f"{NAME}, {POSTAL}: {PHRASE}"))
    assert held.action == "held", held
    await registry.handle(AddNote(number, f"Called {NAME} at home ({POSTAL}) about {PHRASE}", "agent@med.be"))
    await registry.handle(SendMessage(number, f"Dear {NAME}, about {PHRASE}: we are on it.", "agent@med.be"))
    await _close(registry, number, clock, answer=f"Cher {NAME}, {PHRASE}: fondée.")

    clock.now = _at(2020, 5, 4)
    other = (await registry.handle(_mail(OTHER_NAME, "heloise@example.org", _at(2020, 5, 4, 9),
                                         "Pension en retard"))).number
    await _close(registry, other, clock, outcome="unfounded", category=None)
    clock.now = _at(2020, 6, 1)
    inadmissible = (await registry.handle(_mail("Ana Third", "ana@example.org", _at(2020, 6, 1, 9),
                                                "Hors compétence"))).number
    await registry.handle(Transition(inadmissible, "inadmissible", "agent@med.be", reasons=("out_of_competence",)))

    clock.now = _at(2024, 2, 1)
    recent = (await registry.handle(_mail("Recent Citizen", "recent@example.org", _at(2024, 2, 1, 9),
                                          "Récent"))).number
    await _close(registry, recent, clock)
    return {"mine": number, "other": other, "inadmissible": inadmissible, "recent": recent}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_retention_keeps_the_indicators_and_leaves_no_trace(registry_on_db):
    registry, publisher, clock = registry_on_db
    files = await _citizen_files(registry, clock)
    store, zone = registry.store, registry.policy.timezone
    engine = store.engine
    audit = AuditTrail(engine)
    await registry.handle(PlaceLegalHold(files["other"], "dpo@med.be", "court case 2025/123"))

    # Before: the citizen is everywhere (the check below would see them), and the year's indicators.
    assert set(await rows_mentioning(engine, (NAME,))) >= {"complaints", "thread_messages", "complaint_notes",
                                                          "holding_pen", "outbox"}
    assert await store.list_complaints(ComplaintFilter(text="Quaxtorff")) != []
    if engine.dialect.name == "sqlite":
        assert await _fts_hits(engine, "Quaxtorff") != []  # the index the check below looks into has them now
    before = await annual_report(store, 2020, zone)
    before_2024 = await annual_report(store, 2024, zone)

    clock.now = _at(2026, 6, 1)
    dry = await retention.run(registry, audit, SCHEDULE, actor="dpo@med.be", dry_run=True)
    expected = {(files["mine"], Action.ANONYMISE, Rule.CLOSED), (files["other"], Action.SUSPENDED, Rule.CLOSED),
                (files["inadmissible"], Action.ANONYMISE, Rule.INADMISSIBLE)}
    got = {(d.subject, d.action, d.rule) for d in dry.decisions}
    assert expected <= got
    held_lines = got - expected
    assert [(action, rule) for _s, action, rule in held_lines] == [(Action.DELETE, Rule.HELD_MESSAGE)]
    assert all(d.subject != files["recent"] for d in dry.decisions)
    # The dry run changed nothing.
    assert await store.list_complaints(ComplaintFilter(text="Quaxtorff")) != []

    real = await retention.run(registry, audit, SCHEDULE, actor="dpo@med.be")
    assert real.decisions == dry.decisions
    assert sorted(real.done) == sorted(d.subject for d in dry.decisions if d.action is not Action.SUSPENDED)
    assert real.failed == {}

    # The indicators of the past year (and of a later one) are exactly what they were.
    assert await annual_report(store, 2020, zone) == before
    assert await annual_report(store, 2024, zone) == before_2024

    # Nothing of the citizen is left anywhere in the database; the held file of another citizen is whole.
    assert await rows_mentioning(engine, SECRETS) == {}
    assert await rows_mentioning(engine, (OTHER_NAME,)) != {}
    assert await store.list_complaints(ComplaintFilter(text="Quaxtorff")) == []
    assert await store.list_complaints(ComplaintFilter(text=EMAIL)) == []
    if engine.dialect.name == "sqlite":
        for needle in ("Quaxtorff", "quaxtorff@example", "walrus ate"):
            assert await _fts_hits(engine, needle) == [], needle
    anonymised = await store.complaint(files["mine"])
    assert anonymised.complainant_name == ANONYMISED and anonymised.complainant_email is None
    assert anonymised.anonymised_at is not None and anonymised.status == "closed"
    assert (anonymised.outcome, anonymised.outcome_category) == ("founded", "file_processing")

    # PersonalDataErased went out for each, naming identifiers only.
    erased = [e for e in publisher.of(PersonalDataErased)]
    by_number = {e.complaint_number: e for e in erased}
    assert {files["mine"], files["inadmissible"]} <= set(by_number)
    mine = by_number[files["mine"]]
    assert (mine.mode, mine.reason) == ("anonymised", "retention") and len(mine.message_keys) >= 2
    for event in erased:
        payload = event.model_dump_json()
        assert not any(secret.lower() in payload.lower() for secret in SECRETS)
    # The audit trail has each anonymisation and the run; the legal hold suspended the other file.
    entries = await audit.search(AuditFilter(action="change.*", limit=100))
    actions = [(e.action, e.number) for e in entries]
    assert ("change.anonymised", files["mine"]) in actions and ("change.retention_run", None) in actions
    assert (await store.complaint(files["other"])).complainant_name == OTHER_NAME

    # A second run has nothing left to do but the held file; releasing the hold lets the next run take it.
    again = await retention.run(registry, audit, SCHEDULE, actor="dpo@med.be")
    assert [(d.subject, d.action) for d in again.decisions] == [(files["other"], Action.SUSPENDED)]
    assert again.done == []
    await registry.handle(ReleaseLegalHold(files["other"], "dpo@med.be", "case settled"))
    last = await retention.run(registry, audit, SCHEDULE, actor="dpo@med.be")
    assert [(d.subject, d.action) for d in last.decisions] == [(files["other"], Action.ANONYMISE)]
    assert await rows_mentioning(engine, (OTHER_NAME,)) == {}
    assert await annual_report(store, 2020, zone) == before


async def test_a_held_file_refuses_anonymisation_and_published_outbox_rows_age_out(registry_on_db):
    from services.registry.commands import AnonymiseFile

    registry, publisher, clock = registry_on_db
    clock.now = _at(2026, 1, 5)
    number = (await registry.handle(_mail(NAME, EMAIL, _at(2026, 1, 5, 9), "Facture"))).number
    await registry.handle(PlaceLegalHold(number, "dpo@med.be", "inspection"))
    with pytest.raises(Conflict):
        await registry.handle(AnonymiseFile(number, "dpo@med.be", "request"))
    assert (await registry.store.complaint(number)).complainant_name == NAME
    await registry.handle(ReleaseLegalHold(number, "dpo@med.be"))
    first = await registry.handle(AnonymiseFile(number, "dpo@med.be", "request"))
    assert first is not None and first.mode == "erased"
    assert await registry.handle(AnonymiseFile(number, "dpo@med.be", "request")) is None  # idempotent

    # Published rows older than the outbox's retention go at the next run, whoever's they are; recent ones stay.
    clock.now = _at(2026, 1, 6)
    old_one = (await registry.handle(_mail("Old", "old@example.org", _at(2026, 1, 6, 9), "Ancien"))).number
    recent = (await registry.handle(_mail("Other", "o@example.org", _at(2026, 1, 6, 9), "Retard"))).number
    async with registry.store.transaction() as tx:
        await tx.session.execute(update(OutboxEvent).where(OutboxEvent.payload.like(f'%"{old_one}"%'))
                                 .values(published_at=_at(2025, 12, 1)))
    clock.now = _at(2026, 1, 7)
    report = await retention.run(registry, AuditTrail(registry.store.engine), SCHEDULE, actor="x", outbox_days=30)
    assert report.outbox_pruned >= 1 and report.decisions == []
    async with registry.store.engine.connect() as connection:
        left = [json.loads(p)["complaint_number"] for p in (await connection.execute(select(OutboxEvent.payload)
                                                                                     )).scalars()]
    assert recent in left and old_one not in left
    # The erased file's rows went with it: only its erasure (and the change logged with it) remain, naming nobody.
    assert sorted(json.loads(p)["event_type"] for p in await _payloads(registry, number)) == [
        "complaint.changed", "privacy.erased"]


async def _fts_hits(engine, needle: str) -> list[int]:
    """The rows SQLite's FTS5 trigram index (migration 0004) finds for a phrase: what its tokens still hold."""
    async with engine.connect() as connection:
        return list((await connection.execute(text("SELECT rowid FROM complaints_fts WHERE complaints_fts MATCH :q"),
                                              {"q": f'"{needle}"'})).scalars())


async def _payloads(registry, number: str) -> list[str]:
    async with registry.store.engine.connect() as connection:
        return [p for p in (await connection.execute(select(OutboxEvent.payload))).scalars()
                if json.loads(p).get("complaint_number") == number]


def test_the_schedule_decides_by_how_and_when_a_file_ended():
    from services.registry.privacy.schedule import FileFacts, add_years, decide, held_due

    schedule = RetentionSchedule(closed_years=5, inadmissible_years=1, kind_years={"question": 2})
    today = date(2026, 6, 1)

    def of(status: str, ended: date | None, kind: str = "complaint", **flags: bool):
        return decide(FileFacts("N", status, kind, ended, **flags), today, schedule)

    assert of("closed", date(2021, 6, 1)).rule is Rule.CLOSED
    assert of("closed", date(2021, 6, 2)) is None  # due tomorrow
    assert of("answered", date(2021, 5, 1)).due_on == date(2026, 5, 1)
    assert of("closed", date(2024, 6, 1), kind="question").due_on == date(2026, 6, 1)
    assert of("inadmissible", date(2025, 6, 1)).rule is Rule.INADMISSIBLE
    assert of("inadmissible", date(2025, 6, 2)) is None
    assert of("in_review", date(2000, 1, 1)) is None  # open: never due
    assert of("closed", None) is None
    assert of("closed", date(2020, 1, 1), on_hold=True).action is Action.SUSPENDED
    assert of("closed", date(2020, 1, 1), anonymised=True) is None
    assert add_years(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert held_due(7, date(2026, 3, 3), today, schedule).subject == "held:7"
    assert held_due(7, date(2026, 3, 4), today, schedule) is None
    with pytest.raises(ValueError):
        RetentionSchedule(closed_years=-1)


def test_settings_build_the_schedule_and_refuse_unknown_kinds():
    from pydantic import ValidationError

    from services.registry.settings import RegistrySettings

    schedule = RegistrySettings(retention_closed_years=7, retention_kind_years="question=2, suggestion=3",
                                retention_held_days=30).retention_schedule()
    assert (schedule.closed_years, schedule.held_days) == (7, 30)
    assert dict(schedule.kind_years) == {"question": 2, "suggestion": 3}
    for bad in ({"retention_kind_years": "idea=2"}, {"retention_kind_years": "question=two"},
                {"retention_run_at": "25:00"}, {"retention_closed_years": 0}):
        with pytest.raises(ValidationError):
            RegistrySettings(**bad)



def test_the_daily_run_waits_for_its_time_of_day_in_the_register_zone():
    from datetime import time
    from zoneinfo import ZoneInfo

    from services.registry.privacy.retention import seconds_until
    from services.registry.settings import RegistrySettings
    from services.registry.wiring import build_registry

    brussels = ZoneInfo("Europe/Brussels")
    # 01:00 UTC in winter is 02:00 in Brussels: the 02:30 run is half an hour away; just after it, a day less 1 s.
    assert seconds_until(datetime(2026, 1, 10, 1, 0, tzinfo=timezone.utc), time(2, 30), brussels) == 1800
    assert seconds_until(datetime(2026, 1, 10, 1, 30, 1, tzinfo=timezone.utc), time(2, 30), brussels) == 86399
    service = build_registry(RegistrySettings(registry_database_url="sqlite+aiosqlite:///unused.db",
                                              retention_run_at="04:15"))
    assert service.retention is not None and service.retention.at == time(4, 15)
    assert build_registry(RegistrySettings(registry_database_url="sqlite+aiosqlite:///unused.db",
                                           retention_enabled=False)).retention is None
