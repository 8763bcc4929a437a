"""Every real-world raw message of `../shared/corpus/` goes through the real pipeline on a real NATS: each becomes an
event (received, or delivery-failed for a bounce) or is quarantined with a reason; none crashes intake.

Attachments are stored as opaque bytes (some corpus files carry real malware in zips): never unpacked or opened.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from email.parser import BytesHeaderParser
from email.policy import compat32
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared import streams
from shared.events import DeliveryFailed, MessageReceived
from shared.messaging import ensure_streams, make_broker
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.stores import ensure_intake_buckets
from tests.conftest import require_or_skip
from tests.intake.support import asend, intake_settings, running_intake, settled, stream_events

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


# Machines' mail by where it comes from, decided from the corpus folders and file names, never from our parser
# (issue 10: no automated message in the corpus is acknowledged): the two bounce corpora (real bounces, warnings
# and vacation replies of many MTAs), MimeKit's delivery-status, read-receipt and feedback-report samples, Zammad's
# bounce; and, anywhere, every message whose top-level type is multipart/report (RFC 6522).
MACHINE_FOLDERS = ("perl-bounceparser/", "flufl-bounce/")
MACHINE_FILES = frozenset({
    "mimekit/messages/bounce.txt",
    "mimekit/messages/delivery-status-multiple-blank-lines.txt",
    "mimekit/messages/delivery-status-no-blank-line.txt",
    "mimekit/messages/delivery-status.anonymized.eml",
    "mimekit/messages/delivery-status.txt",
    "mimekit/messages/delivery-status2.txt",
    "mimekit/messages/disposition-notification.anonymized.eml",
    "mimekit/messages/disposition-notification.txt",
    "mimekit/messages/feedback-report.txt",
    "zammad/mail033-undelivered-mail-returned-to-sender.box",
})
# Files of the bounce corpora that are no machine's reply, with the reason (upstream keeps them to check that a
# person's mail is not taken for a bounce): answering them is the normal path.
NOT_MACHINES = {
    "perl-bounceparser/t/corpus/spam-bogus-email-in-report.msg": "spam written to look like a person's mail",
    "perl-bounceparser/t/corpus/spam-lots-of-bogus-addresses.msg": "spam written to look like a person's mail",
    "perl-bounceparser/t/corpus/spam-with-badly-parsed-email.msg": "spam written to look like a person's mail",
    "perl-bounceparser/t/corpus/spam-with-image.msg": "spam written to look like a person's mail",
    "perl-bounceparser/xt/corpus/virus-caused-multiple-weird-reports.msg":
        "a virus mail (phishing for a password change), not the virus scanner's report",
}


def is_machine_sample(name: str, raw: bytes) -> bool:
    if name in NOT_MACHINES:
        return False
    if name.startswith(MACHINE_FOLDERS) or name in MACHINE_FILES:
        return True
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(raw[:512 * 1024]).get_content_type() == "multipart/report"
    except Exception:  # noqa: BLE001 - an unreadable header block is no report
        return False


def corpus_inputs() -> list[Path]:
    index = CORPUS / "INDEX.tsv"
    if not index.is_file():
        require_or_skip(f"the shared mail corpus is absent ({CORPUS})")
    with index.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if row["kind"] == "input"]
    return [CORPUS / row["corpus"] / row["path"] for row in rows]


async def test_every_corpus_message_becomes_an_event_or_is_quarantined(nats_server, tmp_path):
    paths = corpus_inputs()
    settings = intake_settings(nats_server.url, tmp_path)
    broker = make_broker(settings)
    outcomes: Counter[str] = Counter()
    by_corpus: dict[str, Counter[str]] = {}
    answered_machines: list[str] = []
    async with broker:
        await broker.connect()
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        pipeline = IntakePipeline(broker, settings)
        for path in paths:
            raw = path.read_bytes()
            outcome = await pipeline.accept(
                raw, received_at=datetime.now(timezone.utc), envelope_sender=None,
                envelope_recipients=("plaintes@ombudsdesk.localhost",), source=f"corpus:{path.name}",
            )
            kind = outcome.status.value
            if outcome.status is AcceptStatus.PROCESSED:
                kind = "bounce" if isinstance(outcome.event, DeliveryFailed) else (
                    "automated" if outcome.event.automated else "message")
            if outcome.status is AcceptStatus.QUARANTINED:
                assert outcome.reason, path
            outcomes[kind] += 1
            name = path.relative_to(CORPUS).as_posix()
            # A duplicate (the same message as an earlier file) makes no event, so nothing to answer either.
            if is_machine_sample(name, raw) and kind not in {"automated", "bounce", "duplicate"}:
                answered_machines.append(f"{name}: {kind}")
            by_corpus.setdefault(path.relative_to(CORPUS).parts[0], Counter())[kind] += 1
        quarantined = await pipeline.quarantine.count()
        pipeline.close()
    received = await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)
    failed = await stream_events(nats_server.url, streams.SUBJECT_DELIVERY_FAILED)
    print(f"\ncorpus: {len(paths)} inputs -> {dict(outcomes)}; {len(received)} received events, "
          f"{len(failed)} delivery-failed events, {quarantined} in quarantine")
    for name, counts in sorted(by_corpus.items()):
        print(f"  {name:<22} {dict(counts)}")
    assert sum(outcomes.values()) == len(paths)
    # The registry never acknowledges an automated message, and a bounce is no message at all.
    assert not answered_machines, answered_machines
    assert len(received) == outcomes["message"] + outcomes["automated"]
    assert len(failed) == outcomes["bounce"]
    assert quarantined == outcomes["quarantined"]
    for payload in received:
        MessageReceived.model_validate_json(payload)  # every event honours the contract


async def test_a_sample_of_the_corpus_through_real_smtp(nats_server, tmp_path):
    """Raw bytes as an MTA would relay them: 40 corpus messages over SMTP, each answered 250 and made durable."""
    paths = [path for path in corpus_inputs() if path.stat().st_size < 2_000_000]
    sample = random.Random(3834).sample(paths, 40)
    async with running_intake(nats_server.url, tmp_path) as intake:
        for path in sample:
            # smtplib's sendmail needs CRLF-safe bytes; it dot-stuffs and fixes line endings itself.
            assert await asend(intake.smtp_port, path.read_bytes()) == {}
        await settled(intake)
        counters = dict(intake.pipeline.counters)
    assert sum(counters.values()) == len(sample)
    received = await stream_events(nats_server.url, streams.SUBJECT_MESSAGE_RECEIVED)
    failed = await stream_events(nats_server.url, streams.SUBJECT_DELIVERY_FAILED)
    assert len(received) + len(failed) + counters["quarantined"] + counters["duplicate"] == len(sample)


@pytest.mark.parametrize("name", ["zammad/mail033-undelivered-mail-returned-to-sender.box"])
async def test_corpus_bounce_becomes_a_delivery_failed_event(nats_server, tmp_path, name):
    corpus_inputs()
    async with running_intake(nats_server.url, tmp_path) as intake:
        await asend(intake.smtp_port, (CORPUS / name).read_bytes(), sender="")
        await settled(intake)
    [payload] = await stream_events(nats_server.url, streams.SUBJECT_DELIVERY_FAILED)
    event = DeliveryFailed.model_validate_json(payload)
    assert event.failed_recipient == "not_existing@znuny.com"
    assert event.original_message_id == "20150830145601.30.608881@edenhofer.zammad.com"
