"""The citizen's own data (issue 16): `privacy/export.py` against a register on SQLite and PostgreSQL and intake's
real JetStream object stores. The export of a citizen with 20 files is checked against what was registered and
sent: every file, every message with its raw original and attachment (bytes compared), every notice, every change-log
entry; another citizen's data is nowhere in the archive; the back-office page is the DPO's alone and its exports are
in the audit trail."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import nats
import pytest

from services.registry import commands
from services.registry.access.audit import AuditFilter
from services.registry.access.roles import Role
from services.registry.backoffice.pages.file_originals import OriginalStore
from services.registry.privacy.export import MAX_FILES, TooManyFiles, collect, export_person
from shared import streams
from shared.events import AttachmentRef, MessageReceived, NotificationSent, Party
from shared.stream_admin import ensure_streams
from tests.backoffice.conftest import TEST_CSRF, backoffice_app  # noqa: F401 - the fixture
from tests.backoffice.helpers import principal

CITIZEN = "Alix.Verhaegen@Example.be"  # as she typed it: the register keys addresses in lower case
ZONE = ZoneInfo("Europe/Brussels")
AT = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
DPO = principal("dpo@med.example", Role.DPO, account_id=31, language="en")
SUPERVISOR = principal("boss@med.example", Role.SUPERVISOR, account_id=32)
STAFF = principal("agent@med.example", Role.STAFF, account_id=33)


@pytest.fixture
async def js(nats_server) -> AsyncIterator[object]:
    client = await nats.connect(nats_server.url)
    context = client.jetstream()
    await ensure_streams(context)
    yield context
    await client.close()


def members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


async def register_citizen(app, js, files: int) -> dict[str, dict[str, object]]:
    """`files` complaints of the citizen through intake's path, each with a raw original and an attachment in the
    object stores, an acknowledgment sent and a staff change; returns what was registered, by number."""
    raws = await js.object_store(streams.BUCKET_RAW_MESSAGES)
    attachments = await js.object_store(streams.BUCKET_ATTACHMENTS)
    expected: dict[str, dict[str, object]] = {}
    for i in range(files):
        raw = f"From: Alix <{CITIZEN}>\r\nSubject: Dossier {i}\r\n\r\nPhrase unique {i}.\r\n".encode()
        piece = f"%PDF-1.4 pièce {i}\n".encode() * 20
        digest = hashlib.sha256(piece).hexdigest()
        ref = AttachmentRef(filename=f"../../pièce {i}.pdf", content_type="application/pdf", size=len(piece),
                            sha256=digest, object_name=f"sha256-{digest}")
        await raws.put(f"alix-{i}.eml", raw)
        await attachments.put(ref.object_name, piece)
        outcome = await app.registry.handle(MessageReceived(
            message_key=f"alix-{i}", received_at=AT + timedelta(hours=i), sender=Party(name="Alix Verhaegen",
                                                                                      email=CITIZEN),
            recipients=("plaintes@ombudsdesk.localhost",), subject_line=f"Dossier {i}", text=f"Phrase unique {i}.",
            message_id=f"<alix{i}@mail.example.be>", raw_object=f"alix-{i}.eml", attachments=(ref,),
            language="nl" if i == files - 1 else "fr"))
        number = outcome.number
        assert outcome.action == "registered" and number
        await app.registry.handle(NotificationSent(
            notification_key=f"ack:{number}", complaint_number=number, notice_kind="acknowledgment",
            recipient=CITIZEN.lower(), message_id=f"ack{i}@ombudsdesk.localhost", subject_line=f"[{number}] Reçu"))
        await app.registry.handle(commands.Assign(number, "agent@med.example", "boss@med.example", "routine"))
        expected[number] = {"raw": raw, "piece": piece, "ack": f"[{number}] Reçu"}
    return expected


async def test_the_export_of_a_citizen_with_20_files_is_complete(backoffice_app, js):
    app = backoffice_app
    expected = await register_citizen(app, js, 20)
    # A file of someone else where she is admitted as a correspondent (her lawyer's mailbox, say): hers too.
    theirs = await app.file(name="Bert Peeters", email="bert@example.be", text="Bert's own complaint")
    await app.registry.handle(commands.AddCorrespondent(theirs, CITIZEN, "agent@med.example", "she represents him"))
    # Another citizen, nothing to do with her: must be nowhere in the archive.
    await app.file(name="Zoé Unrelated", email="zoe@example.be", text="Le secret de Zoé", subject="Zoé seule")

    started = time.monotonic()
    result = await export_person(app.store, CITIZEN, OriginalStore(lambda: js), now=AT + timedelta(days=30),
                                 zone=ZONE, organisation="Médiateur")
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    parts = members(result.archive)
    document = json.loads(parts["export.json"])

    assert document["email"] == CITIZEN.lower()
    assert sorted(result.numbers) == sorted([*expected, theirs])
    assert [f["number"] for f in document["files"]] == result.numbers
    assert document["missing_objects"] == [] and result.missing == []
    assert document["language"] == "nl" == result.language  # her latest file's language
    for file in document["files"]:
        registered = await app.store.complaint_file(file["number"])
        complaint, thread, changes, parties = registered
        if file["number"] == theirs:
            # Bert's file: only her admission and what she wrote or was sent (GDPR art. 15(4)), nothing of Bert's.
            assert file["role"] == "correspondent" and "changes" not in file and "body" not in file
            assert [p["email"] for p in file["parties"]] == [CITIZEN.lower()]
            assert file["messages_received"] == [] and file["notices_sent"] == []
            continue
        assert [c["change_id"] for c in file["changes"]] == [c.change_id for c in changes] and changes
        assert {p["email"] for p in file["parties"]} == set(parties)
        # SQLAlchemy's insert bookkeeping (migration 0020) is nothing about the person.
        assert all("insert_sentinel" not in p for p in file["parties"])
        assert len(file["messages_received"]) + len(file["notices_sent"]) == len(thread)
        wanted = expected[file["number"]]
        [message] = file["messages_received"]
        assert parts[message["raw_original_path"]] == wanted["raw"]
        [attachment] = message["attachments"]
        assert parts[attachment["path"]] == wanted["piece"]
        assert "/" not in attachment["path"].split("/", 2)[2]  # the stranger's "../../" is no directory
        assert [n["subject_line"] for n in file["notices_sent"]] == [wanted["ack"]]
        assert file["complainant_name"] == "Alix Verhaegen" and file["body"].startswith("Phrase unique")
    everything = b"".join(parts.values())
    for foreign in ("zoe@example.be", "Le secret de Zoé", "Zoé seule", "bert@example.be", "Bert's own complaint",
                    "Bert Peeters"):
        assert foreign.encode() not in everything, foreign
    assert parts["summary.pdf"].startswith(b"%PDF") and len(parts["summary.pdf"]) > 1000


async def test_a_missing_original_is_listed_and_nobody_else_is_exported(backoffice_app, js):
    app = backoffice_app
    await app.registry.handle(MessageReceived(
        message_key="gone-1", received_at=AT, sender=Party(name="Alix", email=CITIZEN), subject_line="Sans original",
        text="x", message_id="<gone1@mail.example.be>", raw_object="removed-by-retention.eml"))
    result = await export_person(app.store, f"  {CITIZEN.upper()} ", OriginalStore(lambda: js), now=AT, zone=ZONE)
    document = json.loads(members(result.archive)["export.json"])
    assert len(document["files"]) == 1
    assert document["missing_objects"] == [{"kind": "original", "object": "removed-by-retention.eml",
                                            "why": "not in the object store"}]
    unreachable = await export_person(app.store, CITIZEN, None, now=AT, zone=ZONE)
    assert [m["why"] for m in unreachable.missing] == ["object store not reachable"]
    nobody = await export_person(app.store, "nobody@example.be", None, now=AT, zone=ZONE)
    assert json.loads(members(nobody.archive)["export.json"])["files"] == [] and nobody.numbers == []


async def test_her_message_attached_to_another_file_is_exported_alone(backoffice_app):
    app = backoffice_app
    other = await app.file(name="Bert Peeters", email="bert@example.be", text="Bert's private matter")
    # Her mail lands in the holding pen (a reply to nothing known), then staff attach it without admitting her.
    outcome = await app.registry.handle(MessageReceived(
        message_key="stray-1", received_at=AT, sender=Party(name="Alix", email=CITIZEN), subject_line=f"Re: {other}",
        text="About Bert's file, from Alix.", message_id="<stray1@mail.example.be>",
        in_reply_to="<unknown@nowhere>"))
    data = await collect(app.store, CITIZEN)
    if outcome.action == "held":
        assert [h.message_key for h in data.held] == ["stray-1"]
        [held] = data.held
        await app.registry.handle(commands.AttachHeld(held.id, other, "agent@med.example"))
        data = await collect(app.store, CITIZEN)
    assert data.complaints == [] or all(c.number != other for c in data.complaints)
    assert [(number, m.message_key) for number, m in data.elsewhere] == [(other, "stray-1")]
    result = await export_person(app.store, CITIZEN, None, now=AT, zone=ZONE)
    document = json.loads(members(result.archive)["export.json"])
    assert "Bert's private matter" not in json.dumps(document)
    assert [m["number"] for m in document["messages_in_other_files"]] == [other]


async def test_an_administrations_mailbox_is_refused(backoffice_app, monkeypatch):
    app = backoffice_app
    monkeypatch.setattr("services.registry.privacy.export.MAX_FILES", 2)
    for _ in range(3):
        await app.file(name="SPF", email="info@spf.example.be")
    with pytest.raises(TooManyFiles):
        await collect(app.store, "info@spf.example.be")
    assert MAX_FILES > 100  # the real bound leaves every citizen room


async def test_the_back_office_export_is_the_dpos_alone_and_audited(backoffice_app, js):
    app = backoffice_app
    expected = await register_citizen(app, js, 2)
    app.app.state.originals = OriginalStore(lambda: js)
    for someone in (STAFF, SUPERVISOR):
        async with app.client(someone) as client:
            assert (await client.get("/backoffice/privacy/export")).status_code == 403
            refused = await client.post("/backoffice/privacy/export",
                                        data={"csrf_token": TEST_CSRF, "email": CITIZEN, "reason": "x"})
            assert refused.status_code == 403 and not refused.content.startswith(b"PK")
    async with app.client(DPO) as client:
        form = await client.get("/backoffice/privacy/export")
        assert form.status_code == 200 and "Right of access" in form.text
        no_reason = await client.post("/backoffice/privacy/export",
                                      data={"csrf_token": TEST_CSRF, "email": CITIZEN, "reason": " "})
        assert no_reason.status_code == 422 and "Give the reason" in no_reason.text
        answer = await client.post("/backoffice/privacy/export", data={
            "csrf_token": TEST_CSRF, "email": CITIZEN, "reason": "request 2026/17", "language": "de"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    document = json.loads(members(answer.content)["export.json"])
    assert sorted(f["number"] for f in document["files"]) == sorted(expected) and document["language"] == "de"
    entries = await app.app.state.audit.search(AuditFilter(action="export", limit=10))
    assert sorted(e.number for e in entries if e.number) == sorted(expected)
    assert all(e.actor == DPO.email and e.reason == "request 2026/17" for e in entries) and len(entries) == 3
    assert all(CITIZEN.lower() not in json.dumps(e.details) for e in entries)
