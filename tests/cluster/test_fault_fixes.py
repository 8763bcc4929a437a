"""The two faults the cluster tests revealed, each reproduced on one real NATS server in seconds (docs/resilience.md,
"Bugs the faults found"):

- intake published a spool entry together with the raw original's chunks: when the chunks' publish was lost (their
  stream's leader killed) and the entry's kept, the entry named chunks that did not exist — a complaint answered
  250 (to the sender's retry) and never registered;
- the notifier gave up recording a notice as sent when the database failed right after the relay's 250 (a PostgreSQL
  restart): the notice was sent again once its lease ran out — a duplicate acknowledgment.
"""

from __future__ import annotations

import asyncio
import smtplib

import nats
import pytest

from services.notifier.wiring import build_notifier
from shared import streams
from tests.intake.support import asend, citizen_mail, running_intake
from tests.notifier.conftest import notifier_settings
from tests.notifier.support import SmtpSink, eventually, publish, registered_event


async def test_no_spool_entry_names_chunks_that_were_not_stored(nats_server, tmp_path):
    async with running_intake(nats_server.url, tmp_path / "front", intake_role="front") as front:
        connection = await nats.connect(nats_server.url)
        try:
            js = connection.jetstream()
            # The raw originals' stream gone: every chunk publish fails, as one lost in a leader change does.
            await js.delete_stream(f"OBJ_{streams.BUCKET_RAW_MESSAGES}")
            with pytest.raises(smtplib.SMTPDataError) as refused:
                await asend(front.smtp_port, citizen_mail())
            assert refused.value.smtp_code == 451  # the sender keeps the mail and retries
            spool = await js.stream_info(streams.STREAM_INTAKE_SPOOL)
            assert spool.state.messages == 0, "an entry was spooled for a raw original that was never stored"
        finally:
            await connection.close()


async def test_a_sent_notice_is_recorded_through_a_database_outage_not_sent_twice(nats_server, sqlite_url, tmp_path):
    sink = SmtpSink().start()
    # A short lease: without the retry, the notice left "sending" would be sent again within the test.
    service = build_notifier(notifier_settings(nats_server.url, sqlite_url, sink, tmp_path, relay_lease_seconds=3))
    await service.start()
    try:
        outbox = service.dispatcher.outbox
        record_sent = outbox.mark_sent
        refused: list[int] = []

        async def database_restarting(notice_id: int, now) -> None:  # type: ignore[no-untyped-def]
            if len(refused) < 2:
                refused.append(notice_id)
                raise ConnectionResetError("the database system is shutting down")
            await record_sent(notice_id, now)

        outbox.mark_sent = database_restarting  # type: ignore[method-assign]
        await publish(nats_server.url, registered_event("MED-2026-00001"))

        async def sent() -> bool:
            return [notice.status for notice in await outbox.notices()] == ["sent"]

        await eventually(sent, what="the notice recorded as sent")
        await asyncio.sleep(4)  # past the lease: a notice left "sending" would have been claimed and sent again
        assert len(refused) == 2
        assert len(sink.messages) == 1
    finally:
        await service.stop()
        sink.stop()
