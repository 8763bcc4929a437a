"""An erasure on request reaches a message intake quarantined and that never reached the register
(`ombudsdesk.privacy_streams`, run as the admin operation after `ombudsdesk privacy erase`): the quarantine entries
naming the citizen's address, every revision, and their raw originals are securely erased — gone from the NATS data
folder — while another citizen's entry and raw original stay; the dry run lists the same and erases nothing."""

from __future__ import annotations

import uuid

from shared import streams
from shared.messaging import make_broker
from shared.stream_admin import ensure_streams
from ombudsdesk.privacy_streams import QUARANTINE_STREAM, ErasedFiles, scrub_streams
from services.intake.stores import IntakeStores, ensure_intake_buckets
from tests.intake.support import intake_settings
from tests.intake.test_privacy import files_containing, quarantine_record


async def quarantine(stores: IntakeStores, marker: str) -> str:
    key = f"mid-{uuid.uuid4().hex}"
    raw = f"From: {marker} <{marker}@example.org>\r\n\r\n{marker} text\r\n".encode()
    await stores.objects.put(streams.BUCKET_RAW_MESSAGES, f"{key}.eml", raw)
    for attempt in (1, 2):
        await stores.quarantine.put(quarantine_record(key, f"{key}.eml", f"{marker}@example.org", attempt))
    return key


async def test_the_scrub_erases_the_citizen_s_quarantined_messages_and_nothing_else(nats_server, tmp_path):
    broker = make_broker(intake_settings(nats_server.url, tmp_path))
    async with broker:
        js = broker.connection.jetstream()
        await ensure_streams(js)
        await ensure_intake_buckets(js)
        stores = IntakeStores(js)
        erased_key = await quarantine(stores, "scrubbedcitizen")
        other_key = await quarantine(stores, "othercitizen")
        files = ErasedFiles.of(["2026-00001"], addresses=["ScrubbedCitizen@example.org"])

        dry = await scrub_streams(js, files, dry_run=True)
        assert len(dry.erased[QUARANTINE_STREAM]) == 1 and dry.raw_originals == 1
        assert sorted(await stores.quarantine.keys()) == sorted([erased_key, other_key])

        done = await scrub_streams(js, files)
        assert done.erased[QUARANTINE_STREAM] == dry.erased[QUARANTINE_STREAM] and not done.refused
        assert await stores.quarantine.keys() == [other_key]
        assert b"othercitizen" in await stores.objects.get_raw(f"{other_key}.eml")
        again = await scrub_streams(js, files)
        assert again.erased[QUARANTINE_STREAM] == []

    assert files_containing(nats_server.store_dir, b"scrubbedcitizen") == []
    assert files_containing(nats_server.store_dir, b"othercitizen") != []
