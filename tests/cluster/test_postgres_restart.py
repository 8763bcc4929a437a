"""The private PostgreSQL (both services' databases) restarted under load: once with `pg_ctl restart -m fast` (clients
disconnected, a clean shutdown) and once with `-m immediate` (the postmaster and its backends killed, crash recovery
at start), while complaints flow over SMTP into the cluster deployment (issue 14). The services must wait it out
(failed transactions are retried from JetStream, the notifier's outbox is polled again) and lose nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from tests.cluster.harness import (
    FaultStack, RetryingSenders, assert_nothing_lost, complaints, outcome, registered_count, seeded,
    wait_until_settled,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Two restarts need a few seconds of load around each, not thousands of complaints.
POSTGRES_RESTART_COMPLAINTS = int(os.environ.get("OMBUDSDESK_FAULT_POSTGRES_COMPLAINTS", "500"))
SEND_RATE = 25.0


@pytest.mark.timeout(600)
async def test_postgres_restarted_under_load(fault_stack: FaultStack, report_figures) -> None:
    seed, rng = seeded()
    mails = complaints(uuid.uuid4().hex[:6], POSTGRES_RESTART_COMPLAINTS)
    senders = RetryingSenders(fault_stack.smtp_ports, mails, connections=4, rate=SEND_RATE)
    began = time.monotonic()
    sending = asyncio.create_task(asyncio.to_thread(senders.run))
    restarts: list[dict[str, object]] = []
    try:
        for mode in ("fast", "immediate"):
            await asyncio.sleep(rng.uniform(3.0, 7.0))
            at = round(time.monotonic() - began, 1)
            registered_before = await registered_count(fault_stack)
            down = await asyncio.to_thread(fault_stack.postgres.restart, mode)
            restarts.append({"mode": mode, "at_seconds": at, "registered before": registered_before,
                             "seconds unreachable (pg_ctl restart)": round(down, 2)})
    finally:
        report = await sending
    settle = await wait_until_settled(fault_stack, len(mails), 300)
    result = await outcome(fault_stack, mails)
    report_figures({
        "seed": seed, "restarts": restarts, "SMTP retries": sum(report.retries.values()),
        "sending seconds": round(report.seconds, 1),
        "seconds from the last mail sent to everything settled": round(settle, 1), **result.figures(),
    })
    assert report.refused_for_good == [], report.refused_for_good[:10]
    # The restarts happened under load: complaints were registered before the first and after the last.
    assert 0 < restarts[0]["registered before"] < len(mails)  # type: ignore[operator]
    assert_nothing_lost(result, 0, fault_stack)

