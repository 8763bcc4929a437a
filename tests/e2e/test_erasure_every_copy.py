"""The proof of issue 16: after an erasure, no byte the deployment stores holds the citizen.

One citizen with a unique name, postal address, e-mail address and phrase writes through the channels the stack
offers in one process — SMTP, the public web form (with a PDF), a scanned letter in the letters folder — and each
complaint is registered and acknowledged (mail notices, the letter's notice); an event about one of the files is
dead-lettered by the notifier. Another citizen writes once by SMTP. Then the erasure runs as the operator runs it:
the register's part (`AnonymiseFile(reason="request")`, H11's command, which publishes `PersonalDataErased`), intake's
and the notifier's consumers of that event, the register's compaction, and the streams' part
(`ombudsdesk.privacy_streams.scrub_streams`). Every file under the test's folder — both SQLite databases with their
WAL and SHM, the NATS data folder, `var/` (letters folders), NATS's log — is then searched for the name, the
address, the e-mail address and the phrase, in UTF-8, JSON-escaped and quoted-printable forms and as base64 of the
ASCII unique token: zero hits, while the other citizen's data are all still there.

Not covered here (said in docs/privacy.md): IMAP (the same pipeline as SMTP after the fetch; the original stays in
the organisation's mailbox), staff forwards (the same pipeline), quarantine (a quarantined message never reaches
the register, so no erasure names it; intake's erasure of quarantine entries is tests/intake/test_privacy.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import quopri
import re
import sqlite3
import uuid
from datetime import date
from pathlib import Path

import httpx
import nats
import pytest

from ombudsdesk.embedded_nats import free_port
from ombudsdesk.privacy_streams import ErasedFiles, scrub_streams
from services.registry.commands import AnonymiseFile
from services.registry.privacy.retention import compact
from shared import streams
from tests.e2e.stack import InProcessStack, StackConfig, complaint_mail, send_mail_async, start_catcher
from tests.intake.letter_support import make_pdf

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WAIT_SECONDS = 60


def variants(secret: str) -> set[bytes]:
    """The forms a stored copy may take: UTF-8, JSON-escaped, quoted-printable (mail bodies and headers)."""
    forms = {secret.encode("utf-8"), json.dumps(secret)[1:-1].encode("ascii"),
             quopri.encodestring(secret.encode("utf-8")).rstrip(b"=\n"),
             quopri.encodestring(secret.encode("utf-8"), header=True)}
    return {form for form in forms if len(form) >= 6}


def base64_forms(token: str) -> set[bytes]:
    """The ASCII unique token as it appears inside any base64 text, whatever its alignment (3 shifts, edges cut)."""
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + token.encode("ascii"))
        forms.add(encoded[4:-4])
    return forms


def secret_forms(unique: str, *secrets: str) -> set[bytes]:
    return set().union(*(variants(secret) for secret in secrets)) | base64_forms(unique)


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()]


def hits(root: Path, needles: set[bytes]) -> list[str]:
    found = []
    for path in stored_files(root):
        data = path.read_bytes().lower()
        found += [f"{path.relative_to(root)}: {needle!r}" for needle in needles if needle.lower() in data]
    return found


def registered(database: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT number, complainant_email FROM complaints ORDER BY number").fetchall()


async def wait_until(condition, what: str, timeout: float = WAIT_SECONDS):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


async def test_an_erased_citizen_leaves_no_byte_anywhere_and_another_stays_whole(nats_server, tmp_path):
    unique = uuid.uuid4().hex[:10]
    name = f"Zéphyrine Quillebœuf{unique}"
    postal = f"Rue du Lampadaire {unique} 17, 1000 Bruxelles"
    email = f"zq{unique}@example.org"
    phrase = f"le réverbère {unique} clignote"
    other_unique = uuid.uuid4().hex[:10]
    other_name, other_email = f"Bartholomé Kessel{other_unique}", f"bk{other_unique}@example.org"

    catcher = await start_catcher(tmp_path / "outbox-catcher")
    registry_db, notifier_db = tmp_path / "registry.db", tmp_path / "notifier.db"
    config = StackConfig(nats_url=nats_server.url, var_dir=tmp_path / "var",
                         registry_database_url=f"sqlite+aiosqlite:///{registry_db}",
                         notifier_database_url=f"sqlite+aiosqlite:///{notifier_db}", relay_port=catcher.port)
    web_port = free_port()
    letters = tmp_path / "var" / "letters"
    services = InProcessStack(config, intake_settings={"public_web_port": web_port, "letters_dir": letters,
                                                       "letters_poll_seconds": 0.3, "letters_settle_seconds": 0.2})
    await services.start()
    try:
        # 1. SMTP, the citizen and the other citizen.
        await send_mail_async(config.smtp_port, complaint_mail(
            f"{name} <{email}>", f"Plainte : {phrase}", f"Bonjour,\n{phrase} depuis trois semaines.\n{name}\n{postal}",
            message_id=f"<{uuid.uuid4().hex}@example.org>"))
        await send_mail_async(config.smtp_port, complaint_mail(
            f"{other_name} <{other_email}>", "Plainte : trottoir", f"Le trottoir est cassé.\n{other_name}",
            message_id=f"<{uuid.uuid4().hex}@example.org>"))
        # 2. The public web form, with a PDF.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=30) as browser:
            form = await browser.get("/complaint?lang=fr")
            data = {"token": token_of(form.text), "lang": "fr", "name": name, "email": email,
                    "postal_address": postal, "service": "Service des pensions", "subject": f"Formulaire : {phrase}",
                    "facts": f"Deuxième fois : {phrase}.", "facts_date": "2026-11-05", "first_line": "yes",
                    "request": "Réparer.", "consent": "yes", "website": ""}
            sent = await browser.post("/complaint?lang=fr", data=data,
                                      files=[("documents", ("piece.pdf", PDF + phrase.encode(), "application/pdf"))])
            assert sent.status_code == 303, sent.text[:500]
        # 3. A scanned letter with its sidecar.
        letters.mkdir(parents=True, exist_ok=True)
        (letters / "scan0001.pdf").write_bytes(make_pdf(1, text=f"Lettre {unique}"))
        (letters / "scan0001.json").write_text(json.dumps({
            "complainant_name": name, "postal_address": postal, "email": email, "language": "fr",
            "received_on": date.today().isoformat(), "pages": 1, "staff_member": "m.peeters",
            "archive_reference": f"BOX-{unique}",
            "subject": f"Lettre : {phrase}"}, ensure_ascii=False), "utf-8")

        async def four_files():  # noqa: ANN202
            rows = registered(registry_db) if registry_db.exists() else []
            return rows if len(rows) >= 4 else None

        rows = await wait_until(four_files, "four complaints registered")
        numbers = [number for number, address in rows if address == email]
        [other_number] = [number for number, address in rows if address == other_email]
        assert len(numbers) == 3, rows

        # 4. The notices: the three mail acknowledgments (the letter's may go by mail or to the print queue).
        mails = [await catcher.next_mail(timeout=WAIT_SECONDS) for _ in range(3)]
        assert {mail["To"].addresses[0].addr_spec for mail in mails} <= {email, other_email}

        # 5. A dead letter about one of the files (an event the notifier cannot read), holding the name.
        connection = await nats.connect(config.nats_url)
        try:
            js = connection.jetstream()
            await js.publish(streams.SUBJECT_NOTICE_REQUESTED, json.dumps({
                "event_type": "notice.requested", "complaint_number": numbers[0], "recipient": {"name": name},
            }).encode(), stream=streams.STREAM_REGISTRY)

            async def dead_lettered():  # noqa: ANN202
                return (await js.stream_info(streams.STREAM_DEAD_LETTER)).state.messages >= 1

            await wait_until(dead_lettered, "the dead letter")
            # Before the erasure the search finds the citizen in every store it searches (so it can find them).
            before = hits(tmp_path, secret_forms(unique, name, postal, email, phrase))
            for store in ("registry.db", "notifier.db", "jetstream/", "var/letters/processed/"):
                assert any(found.startswith(store) for found in before), (store, before)

            # 6. The erasure: the register (publishes PersonalDataErased), then intake and the notifier consume it.
            for number in numbers:
                erased = await services.registry.registry.handle(AnonymiseFile(number, "dpo", "request"))
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
        finally:
            await connection.close()
    finally:
        await services.stop()
        await catcher.stop()
    for outbox in (tmp_path / "outbox-catcher",):  # the citizen's own mailbox (the test's relay), not ours
        for path in stored_files(outbox):
            path.unlink()

    assert hits(tmp_path, secret_forms(unique, name, postal, email, phrase)) == []
    # The other citizen is intact: the register, the outbox, the raw original in the object store.
    assert (other_number, other_email) in registered(registry_db)
    with sqlite3.connect(f"file:{notifier_db}?mode=ro", uri=True) as outbox:
        assert outbox.execute("SELECT count(*) FROM notices WHERE recipient = ? AND body_text LIKE ?",
                              (other_email, f"%{other_number}%")).fetchone() == (1,)
    assert any("OBJ_" in found for found in hits(nats_server.store_dir, {other_name.encode("utf-8")}))


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
