"""The proof of issue 16: after an erasure, no byte the deployment stores holds the citizen.

One citizen with a unique name, postal address, e-mail address and phrase writes through every channel the stack
offers — SMTP, IMAP (a real Dovecot mailbox read by intake's poller), a staff member's forward of their mail that
reached the wrong desk (through the staff mailbox, attached as message/rfc822), the public web form (with a PDF), a
scanned letter in the letters folder — and sends one mail intake quarantines (MIME nested deeper than the limit),
which the operator then releases into the register (`ombudsdesk intake quarantine replay --all` with a higher limit).
Each complaint is registered and acknowledged; an event about one of the files is dead-lettered by the notifier.
Another citizen writes once by SMTP. Then the erasure runs as the operator runs it: the register's part
(`AnonymiseFile(reason="request")`, which publishes `PersonalDataErased`), intake's and the notifier's consumers of
that event, the register's compaction, the streams' part (`ombudsdesk.privacy_streams.scrub_streams`) and, on
PostgreSQL, the operator's documented step (ANALYZE then VACUUM FULL of both databases; docs/privacy.md).

What is searched — for the name, the postal address, the e-mail address and the phrase, in UTF-8, JSON-escaped and
quoted-printable forms, and for the unique token they all carry, plain and as base64 (tests/e2e/erasure_search.py):
- every file under the test's folder: the NATS data folder, `var/` (letters folders), NATS's log and, on SQLite, both
  databases with their WAL and SHM;
- on PostgreSQL, both databases' tables read through SQL (every table, every column, and the values the planner's
  statistics sampled from them, `pg_stats`), and their relation files in the server's data directory (`base/<oid>/`:
  heap, TOAST, indexes, free-space and visibility maps, the database's own catalogs such as `pg_statistic`) read by
  the server after a CHECKPOINT. Before the erasure the statistics are sampled (ANALYZE, as autovacuum does in
  production; it is off on the test server), so that the proof covers them. Not searched: the cluster-wide
  write-ahead log (`pg_wal`, shared with every other database of the server; see docs/privacy.md). Reading the files
  needs a role that may read server files (superuser or `pg_read_server_files`): the test's administrative
  connection is one; when it is not, the test fails in CI and warns elsewhere, and only the SQL search runs.

Zero hits afterwards, while the other citizen's file, notice and raw original are intact and the year's indicators
are identical. The quarantine's own stream is asserted apart (`QUARANTINE_STREAM`): it rests on intake erasing the
quarantine entries of an erased file's messages, every revision, by sequence (the released mail's entry has two: a
first replay before the fix quarantines it again).

Outside the deployment, not searched: the organisation's IMAP mailbox (Dovecot's maildir, the mail server's copy)
and the test's mail catcher (the citizen's own mailbox).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import smtplib
import sys
import uuid
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import httpx
import nats
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ombudsdesk.embedded_nats import free_port
from ombudsdesk.privacy_streams import ErasedFiles, scrub_streams
from services.registry.commands import AnonymiseFile
from services.registry.privacy.retention import compact
from services.registry.reports import annual_report
from shared import streams
from tests.conftest import IN_CI, POSTGRES_ADMIN_URL
from tests.e2e import erasure_search as search
from tests.e2e.stack import (COMPLAINT_ADDRESS, InProcessStack, StackConfig, complaint_mail, send_mail_async,
                             start_catcher)
from tests.intake.conftest import running_dovecot
from tests.intake.dovecot import Dovecot
from tests.intake.imap_support import append_mails, imap_client, imported_message_ids, mailbox_for
from tests.intake.letter_support import make_pdf

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WAIT_SECONDS = 60
STAFF_DOMAIN = "mediation.example.be"
STAFF_FOLDER = "Transferts"
# The stack quarantines MIME nested deeper than this; the operator's release raises it (a "fix").
STACK_MIME_DEPTH, QUARANTINED_DEPTH, RELEASE_MIME_DEPTH = 8, 12, 40
# The key-value stream of intake's quarantine, in the NATS data folder.
QUARANTINE_STREAM = f"KV_{streams.BUCKET_INTAKE_QUARANTINE}"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """The organisation's IMAP server: a real Dovecot (tests/intake/dovecot.py), outside the test's folder."""
    yield from running_dovecot(tls=False)


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The registry's and the notifier's databases: two SQLite files in the test's folder, or two PostgreSQL
    databases."""
    if request.param == "sqlite":
        return (f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}")
    factory = request.getfixturevalue("postgres_database_factory")
    return factory(), factory()


async def wait_until(condition, what: str, timeout: float = WAIT_SECONDS):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def query(url: str, sql: str, **params: object) -> list[tuple]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql), params)]
    finally:
        await engine.dispose()


async def registered(url: str) -> list[tuple[str, str | None]]:
    return await query(url, "SELECT number, complainant_email FROM complaints ORDER BY number")


async def channels_and_forwarders(url: str, numbers: list[str]) -> list[tuple[str, str | None, bool | None]]:
    rows = await query(url, "SELECT number, channel, forwarded_by_email, forward_verified FROM complaints")
    return sorted(((channel, forwarder, bool(verified)) for number, channel, forwarder, verified in rows
                   if number in numbers), key=repr)


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def imap_mail(name: str, email: str, subject: str, body: str) -> bytes:
    mail = complaint_mail(f"{name} <{email}>", subject, body, message_id=f"<{uuid.uuid4().hex}@example.org>")
    mail["Date"] = format_datetime(datetime.now(timezone.utc))
    return bytes(mail)


def staff_forward(citizen_mail: bytes) -> bytes:
    """A staff member's forward of a citizen's mail that reached the wrong desk, the original attached."""
    forward = EmailMessage()
    forward["From"] = f"Marc Peeters <m.peeters@{STAFF_DOMAIN}>"
    forward["To"] = COMPLAINT_ADDRESS
    forward["Subject"] = "TR: plainte arrivée à l'accueil"
    forward["Message-ID"] = f"<{uuid.uuid4().hex}@{STAFF_DOMAIN}>"
    forward["Date"] = format_datetime(datetime.now(timezone.utc))
    forward.set_content("Bonjour,\nreçu à l'accueil, pour enregistrement.\nMarc")
    forward.add_attachment(message_from_bytes(citizen_mail, policy=policy.default))
    return bytes(forward)


def nested_mail(name: str, email: str, subject: str, body: str, depth: int) -> bytes:
    """The citizen's mail with its text under `depth` levels of multipart nesting: quarantined by the stack."""
    part = f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    for level in range(depth):
        boundary = f"nest{level}"
        part = (f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n--{boundary}\r\n{part}\r\n"
                f"--{boundary}--\r\n")
    head = (f"From: {name} <{email}>\r\nTo: {COMPLAINT_ADDRESS}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\nDate: {format_datetime(datetime.now(timezone.utc))}\r\n"
            f"MIME-Version: 1.0\r\n")
    return (head + part).encode("utf-8")


def send_raw(port: int, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(sender, [COMPLAINT_ADDRESS], raw)


async def replay_quarantine(config: StackConfig, mime_depth: int) -> tuple[int | None, str]:
    """The operator's `ombudsdesk intake quarantine replay --all` with this MIME depth limit: (exit status, output)."""
    environment = {**os.environ, **config.environment(), "OMBUDSDESK_MAX_MIME_DEPTH": str(mime_depth),
                   "OMBUDSDESK_STAFF_DOMAINS": STAFF_DOMAIN}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ombudsdesk", "intake", "quarantine", "replay", "--all", env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), WAIT_SECONDS)
    return process.returncode, output.decode(errors="replace")


def split_quarantine(found: list[str]) -> tuple[list[str], list[str]]:
    """(hits in the quarantine's stream folder, every other hit)."""
    quarantine = [hit for hit in found if f"/{QUARANTINE_STREAM}/" in f"/{hit}"]
    return quarantine, [hit for hit in found if hit not in quarantine]


async def postgres_hits(urls: tuple[str, str], needles: set[bytes]) -> tuple[list[str], bool]:
    """Both databases: their tables through SQL (`database:schema.table: needle`) and, when the server lets this
    role read them, their relation files (`database/base/oid/file: needle`); and whether the files were read."""
    await search.checkpoint(POSTGRES_ADMIN_URL)
    found: list[str] = []
    files_read = True
    for url in urls:
        database = search.database_name(url)
        found += [f"{database}:{hit}" for hit in await search.rows_hits(url, needles)]
        try:
            found += await search.relation_file_hits(POSTGRES_ADMIN_URL, database, needles)
        except search.RelationFilesUnreadable as error:
            if IN_CI:
                pytest.fail(f"the proof must read PostgreSQL's relation files in CI: {error}")
            warnings.warn(f"PostgreSQL's relation files not searched (SQL only): {error}", stacklevel=1)
            files_read = False
    return found, files_read


async def test_an_erased_citizen_leaves_no_byte_anywhere_and_another_stays_whole(nats_server, tmp_path, dovecot,
                                                                                 databases):
    unique = uuid.uuid4().hex[:10]
    name = f"Zéphyrine Quillebœuf{unique}"
    postal = f"Rue du Lampadaire {unique} 17, 1000 Bruxelles"
    email = f"zq{unique}@example.org"
    phrase = f"le réverbère {unique} clignote"
    secrets = search.secret_forms(unique, name, postal, email, phrase)
    other_unique = uuid.uuid4().hex[:10]
    other_name, other_email = f"Bartholomé Kessel{other_unique}", f"bk{other_unique}@example.org"
    registry_url, notifier_url = databases
    on_postgres = registry_url.startswith("postgresql")

    with imap_client(dovecot) as client:  # the staff folder exists before its poller starts
        client.create_folder(STAFF_FOLDER)
    catcher = await start_catcher(tmp_path / "outbox-catcher")
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var", registry_database_url=registry_url,
                         notifier_database_url=notifier_url, relay_port=catcher.port)
    web_port = free_port()
    letters = tmp_path / "var" / "letters"
    services = InProcessStack(config, intake_settings={
        "public_web_port": web_port, "letters_dir": letters, "letters_poll_seconds": 0.3,
        "letters_settle_seconds": 0.2, "max_mime_depth": STACK_MIME_DEPTH, "staff_domains": [STAFF_DOMAIN],
        "imap_poll_seconds": 1.0,
        "imap_mailboxes": [mailbox_for(dovecot, name="plaintes"),
                           mailbox_for(dovecot, folder=STAFF_FOLDER, name="transferts", staff=True)]})
    await services.start()
    try:
        # 1. SMTP, the citizen and the other citizen.
        await send_mail_async(config.smtp_port, complaint_mail(
            f"{name} <{email}>", f"Plainte : {phrase}", f"Bonjour,\n{phrase} depuis trois semaines.\n{name}\n{postal}",
            message_id=f"<{uuid.uuid4().hex}@example.org>"))
        await send_mail_async(config.smtp_port, complaint_mail(
            f"{other_name} <{other_email}>", "Plainte : trottoir", f"Le trottoir est cassé.\n{other_name}",
            message_id=f"<{uuid.uuid4().hex}@example.org>"))
        # 2. IMAP: the citizen's mail in the organisation's mailbox, and a staff forward of another of their mails
        # that reached the reception desk, in the staff mailbox.
        await asyncio.to_thread(append_mails, dovecot, [imap_mail(
            name, email, f"Par courriel : {phrase}", f"Troisième fois : {phrase}.\n{name}\n{postal}")])
        await asyncio.to_thread(append_mails, dovecot, [staff_forward(imap_mail(
            name, email, f"À l'accueil : {phrase}", f"Quatrième fois : {phrase}.\n{name}\n{postal}"))], STAFF_FOLDER)
        # 3. The public web form, with a PDF.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as browser:
            form = await browser.get("/complaint?lang=fr")
            data = {"token": token_of(form.text), "lang": "fr", "name": name, "email": email,
                    "postal_address": postal, "service": "Service des pensions", "subject": f"Formulaire : {phrase}",
                    "facts": f"Deuxième fois : {phrase}.", "facts_date": "2026-11-05", "first_line": "yes",
                    "request": "Réparer.", "consent": "yes", "website": ""}
            sent = await browser.post("/complaint?lang=fr", data=data,
                                      files=[("documents", ("piece.pdf", PDF + phrase.encode(), "application/pdf"))])
            assert sent.status_code == 303, sent.text[:500]
        # 4. A scanned letter with its sidecar.
        letters.mkdir(parents=True, exist_ok=True)
        (letters / "scan0001.pdf").write_bytes(make_pdf(1, text=f"Lettre {unique}"))
        (letters / "scan0001.json").write_text(json.dumps({
            "complainant_name": name, "postal_address": postal, "email": email, "language": "fr",
            "received_on": date.today().isoformat(), "pages": 1, "staff_member": "m.peeters",
            "archive_reference": f"BOX-{uuid.uuid4().hex[:6]}",  # the office's box, not the citizen
            "subject": f"Lettre : {phrase}"}, ensure_ascii=False), "utf-8")
        # 5. A mail intake quarantines, then the operator releases it into the register.
        await asyncio.to_thread(send_raw, config.smtp_port, email, nested_mail(
            name, email, f"Encore : {phrase}", f"Cinquième fois : {phrase}.\n{name}\n{postal}", QUARANTINED_DEPTH))
        quarantine = services.intake.stores.quarantine

        async def quarantined():  # noqa: ANN202
            return await quarantine.count() == 1

        await wait_until(quarantined, "the quarantined mail")
        # The quarantine's bucket holds the citizen now (so the check after the erasure can fail).
        assert split_quarantine(search.hits(tmp_path, secrets))[0] != []
        # A first replay before the fix keeps it there (a second revision of its entry), the fixed one releases it.
        status, output = await replay_quarantine(config, STACK_MIME_DEPTH)
        assert (status, "quarantined" in output) == (1, True), output[-2000:]
        status, output = await replay_quarantine(config, RELEASE_MIME_DEPTH)
        assert (status, "processed" in output) == (0, True), output[-2000:]
        assert await quarantine.count() == 0

        # SMTP, IMAP, the forward, the form, the letter, the released mail: six files; and the other citizen's.
        async def seven_files():  # noqa: ANN202
            rows = await registered(registry_url)
            return rows if len(rows) >= 7 else None

        rows = await wait_until(seven_files, "seven complaints registered")
        numbers = [number for number, address in rows if address == email]
        [other_number] = [number for number, address in rows if address == other_email]
        assert len(numbers) == 6, rows
        staff_member = f"m.peeters@{STAFF_DOMAIN}"
        assert await channels_and_forwarders(registry_url, numbers) == sorted([
            ("email", None, False), ("email", None, False), ("email", None, False), ("email", staff_member, True),
            ("letter", None, False), ("web_form", None, False)], key=repr)
        # The two IMAP mails were taken in by the poller, each from its folder.
        for folder in ("INBOX", STAFF_FOLDER):
            assert len(await asyncio.to_thread(imported_message_ids, dovecot, folder)) == 1, folder

        # 6. The notices: a mail acknowledgment for each mailed complaint, the other citizen's included (the
        # letter's may go by mail or to the print queue).
        mails = [await catcher.next_mail(timeout=WAIT_SECONDS) for _ in range(6)]
        assert {mail["To"].addresses[0].addr_spec for mail in mails} <= {email, other_email}

        # 7. A dead letter about one of the files (an event the notifier cannot read), holding the name.
        connection = await nats.connect(config.nats_url)
        try:
            js = connection.jetstream()
            await js.publish(streams.SUBJECT_NOTICE_REQUESTED, json.dumps({
                "event_type": "notice.requested", "complaint_number": numbers[0], "recipient": {"name": name},
            }).encode(), stream=streams.STREAM_REGISTRY)

            async def dead_lettered():  # noqa: ANN202
                return (await js.stream_info(streams.STREAM_DEAD_LETTER)).state.messages >= 1

            await wait_until(dead_lettered, "the dead letter")
            registry = services.registry.registry
            year, zone = registry.today().year, registry.policy.timezone
            indicators = await annual_report(registry.store, year, zone)
            # Before the erasure the search finds the citizen in every store it searches (so it can find them).
            before = search.hits(tmp_path, secrets)
            stores = ["jetstream/", "var/letters/processed/"]
            if on_postgres:
                for url in databases:
                    await search.analyze(url)
                before_postgres, files_read = await postgres_hits(databases, secrets)
                for url in databases:
                    database = search.database_name(url)
                    assert any(hit.startswith(f"{database}:public.") for hit in before_postgres), before_postgres
                    assert not files_read or any(hit.startswith(f"{database}/base/") for hit in before_postgres), (
                        database, before_postgres)
            else:
                stores += ["registry.db", "notifier.db"]
            for store in stores:
                assert any(found.startswith(store) for found in before), (store, before)

            # 8. The erasure: the register (publishes PersonalDataErased), then intake and the notifier consume it.
            for number in numbers:
                erased = await registry.handle(AnonymiseFile(number, "dpo", "request"))
                assert erased is not None and erased.complaint_number == number

            async def consumers_done():  # noqa: ANN202
                states = [await js.consumer_info(streams.STREAM_REGISTRY, durable)
                          for durable in (streams.CONSUMER_INTAKE_PRIVACY, streams.CONSUMER_NOTIFIER_PRIVACY)]
                return all(state.num_pending == 0 and state.num_ack_pending == 0 and state.delivered.stream_seq > 0
                           for state in states) and (await js.stream_info(streams.STREAM_REGISTRY)).state.messages

            await wait_until(consumers_done, "intake's and the notifier's erasure")
            await asyncio.sleep(1)  # the last handler's ack arrives before its transaction's checkpoint ends
            await compact(services.registry.engine)
            keys = await message_keys_of(js, set(numbers))
            report = await scrub_streams(js, ErasedFiles.of(numbers, keys, [email]))
            assert report.total_erased >= 6, report
            # The indicators of the year are what they were.
            assert await annual_report(registry.store, year, zone) == indicators
        finally:
            await connection.close()
    finally:
        await services.stop()
        await catcher.stop()
    for path in search.stored_files(tmp_path / "outbox-catcher"):  # the citizen's own mailbox (the test's relay)
        path.unlink()
    if on_postgres:  # the operator's step after an erasure on request (docs/privacy.md)
        for url in databases:
            await search.operator_vacuum(url)

    quarantine_hits, other_hits = split_quarantine(search.hits(tmp_path, secrets))
    # (The released mail's first chunks, replaced by its replay, are here unless intake erases discarded chunks.)
    assert other_hits == [], "\n".join(other_hits)
    if on_postgres:
        remaining = (await postgres_hits(databases, secrets))[0]
        assert remaining == [], "\n".join(remaining)
    # The quarantine entry of the released mail, both revisions: intake's consumer of PersonalDataErased erases the
    # quarantine entries of the file's message keys by sequence (a purge or a delete leaves their bytes).
    assert quarantine_hits == [], "the quarantine's stream still holds the erased citizen:\n" + "\n".join(
        quarantine_hits)
    # The other citizen is intact: the register, the outbox, the raw original in the object store.
    assert (other_number, other_email) in await registered(registry_url)
    assert await query(notifier_url, "SELECT count(*) FROM notices WHERE recipient = :recipient AND body_text LIKE "
                       ":number", recipient=other_email, number=f"%{other_number}%") == [(1,)]
    assert any("OBJ_" in found for found in search.hits(nats_server.store_dir, {other_name.encode("utf-8")}))


async def message_keys_of(js, numbers: set[str]) -> list[str]:  # noqa: ANN001
    """The message keys the registry's events name for these files (what the CLI takes from the register)."""
    keys, sequence = [], 1
    while True:
        try:
            message = await js.get_msg(streams.STREAM_REGISTRY, seq=sequence, subject=">", next=True)
        except nats.js.errors.NotFoundError:
            return keys
        sequence = (message.seq or 0) + 1
        event = json.loads(message.data or b"{}")
        if event.get("complaint_number") in numbers:
            keys += [event.get("message_key")] if event.get("message_key") else []
            keys += list(event.get("message_keys") or [])
