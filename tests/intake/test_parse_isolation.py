"""A parse past its time limit is stopped for real: its worker process is killed, the message quarantined, and the
next message parses in a fresh worker (issue 10, "Bounded work for any input")."""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import shutil
import signal
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from services.intake.pipeline import AcceptStatus, IntakePipeline
from services.intake.stores import ensure_intake_buckets
from services.intake.message.understanding import ParseContext, understand
from tests.intake.support import citizen_mail, intake_settings

PID_FILE = re.compile(rb"pid-file: (\S+)")


def _note_pid(raw: bytes) -> None:
    """Hostile test mails name a file where the worker writes its process id (the test then watches it die)."""
    found = PID_FILE.search(raw)
    if found:
        Path(found.group(1).decode()).write_text(str(os.getpid()))


def parser_that_never_ends(raw: bytes, context: ParseContext):  # noqa: ANN201 - stands in for a backtracking regex
    _note_pid(raw)
    if b"endless" in raw:
        spins = 0
        while True:  # pure CPU, never returns, never sleeps: a thread could not be stopped
            spins += 1
    return understand(raw, context)


def parser_that_dies(raw: bytes, context: ParseContext):  # noqa: ANN201 - stands in for a crash of the interpreter
    if b"deadly" in raw:
        os.kill(os.getpid(), signal.SIGKILL)
    return understand(raw, context)


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie no longer runs anything


async def connected_pipeline(nats_url: str, tmp_path: Path, parser, **overrides):  # noqa: ANN001, ANN201
    settings = intake_settings(nats_url, tmp_path, parse_in_thread_above_bytes=0, **overrides)
    broker = make_broker(settings)
    await broker.connect()
    js = broker.connection.jetstream()
    await ensure_streams(js)
    await ensure_intake_buckets(js)
    return broker, IntakePipeline(broker, settings, understand_message=parser)


async def accept(pipeline: IntakePipeline, raw: bytes):  # noqa: ANN201
    return await pipeline.accept(raw, received_at=datetime.now(timezone.utc), envelope_sender=None,
                                 envelope_recipients=(), source="test")


async def test_an_endless_parse_is_killed_and_the_next_message_parses(nats_server, tmp_path):
    # A short path: a body line over 78 characters would be sent quoted-printable, its path cut by soft breaks.
    pid_file = Path(tempfile.mkdtemp(prefix="pid")) / "w"
    hostile = citizen_mail(subject="endless", body=f"pid-file: {pid_file}\n", message_id="<endless@example.org>")
    broker, pipeline = await connected_pipeline(nats_server.url, tmp_path, parser_that_never_ends,
                                                parse_timeout_seconds=3.0)
    async with broker:
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            outcome = await accept(pipeline, hostile.as_bytes())
            took = loop.time() - started
            pid = int(pid_file.read_text())
            for _ in range(50):  # SIGKILL is immediate; the reaping by the fork server may take a moment
                if process_gone(pid):
                    break
                await asyncio.sleep(0.1)
            gone = process_gone(pid)
            later = await accept(pipeline, citizen_mail(subject="plainte ordinaire",
                                                        message_id="<later@example.org>").as_bytes())
            workers = pipeline._parsers.pids()  # noqa: SLF001 - the pool's processes are what this test is about
        finally:
            pipeline.close()
    shutil.rmtree(pid_file.parent)
    assert outcome.status is AcceptStatus.QUARANTINED
    assert outcome.reason == "ParseTimeout: parsing took longer than 3 s"
    assert took < 10  # the first worker start (fork server) included
    assert gone, f"the worker {pid} that ran the endless parse is still running"
    assert later.status is AcceptStatus.PROCESSED and later.event.subject_line == "plainte ordinaire"
    assert pid not in workers and len(workers) == 1
    assert pipeline.stuck_parses == 0


async def test_a_worker_that_dies_fails_only_its_own_message(nats_server, tmp_path):
    broker, pipeline = await connected_pipeline(nats_server.url, tmp_path, parser_that_dies)
    async with broker:
        try:
            deadly = await accept(pipeline, citizen_mail(subject="deadly",
                                                         message_id="<deadly@example.org>").as_bytes())
            fine = await accept(pipeline, citizen_mail(subject="fine", message_id="<fine@example.org>").as_bytes())
        finally:
            pipeline.close()
    assert deadly.status is AcceptStatus.QUARANTINED
    assert deadly.reason == "ParserProcessDied: the parser process was killed by signal 9"
    assert fine.status is AcceptStatus.PROCESSED


async def test_close_stops_every_worker(nats_server, tmp_path):
    broker, pipeline = await connected_pipeline(nats_server.url, tmp_path, understand)
    async with broker:
        await asyncio.gather(*(accept(pipeline, citizen_mail(message_id=f"<m{index}@example.org>").as_bytes())
                               for index in range(3)))
        pids = pipeline._parsers.pids()  # noqa: SLF001
        pipeline.close()
    assert pids
    for _ in range(50):
        if all(process_gone(pid) for pid in pids):
            break
        await asyncio.sleep(0.1)
    assert all(process_gone(pid) for pid in pids)


def test_the_understanding_of_a_rich_message_survives_pickling():
    """What a worker sends back: every field, attachments included, comes back equal."""
    message = citizen_mail(subject="Réclamation: facture", In_Reply_To="<x@ombudsdesk.localhost>")
    message.add_attachment(b"%PDF-1.4 facture", maintype="application", subtype="pdf", filename="facture.pdf")
    result = understand(message.as_bytes(), ParseContext(staff_domains=frozenset({"example.be"})))
    assert result.attachments
    assert pickle.loads(pickle.dumps(result)) == result
