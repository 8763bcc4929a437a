"""The notifier's probes and metrics over real HTTP, with real NATS, a real database (SQLite and PostgreSQL) and a
real SMTP relay (issue 14): `/health`, `/ready` and `/metrics` answer on `notifier_health_port`, the counters move
when an acknowledgment is sent, the outbox backlog is read from the database, `/ready` turns 503 while NATS is down
and back to 200 once it is back."""

from __future__ import annotations

from ombudsdesk.embedded_nats import free_port
from services.notifier.wiring import NotifierService
from shared import streams
from tests.notifier.support import SmtpSink, publish, registered_event, wait_until
from tests.probes import eventually, probe, readiness_through_a_nats_outage, sample, scrape


def counted(exposition: str, name: str, **labels: str) -> float:
    return sample(exposition, name, **labels) or 0.0


async def test_notifier_probes_and_counters_over_http(start_notifier, nats_server, smtp_sink: SmtpSink):
    port = free_port()
    notifier: NotifierService = await start_notifier(notifier_health_port=port)
    base = f"http://127.0.0.1:{port}"
    status, health = await probe(base, "/health")
    assert status == 200 and health == {"status": "ok", "dispatcher_running": True}
    status, ready = await probe(base, "/ready")
    assert status == 200, ready
    assert ready["checks"] == {"nats": "ok", "consumers": "ok", "database": "ok"}
    before = await scrape(base)

    await publish(nats_server.url, registered_event("MED-2026-00077"))
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the acknowledgment")
    after = await eventually(lambda: scrape(base), lambda text: counted(
        text, "ombudsdesk_events_consumed_total", consumer=streams.CONSUMER_NOTIFIER_REGISTRY, outcome="ok")
        > counted(before, "ombudsdesk_events_consumed_total", consumer=streams.CONSUMER_NOTIFIER_REGISTRY,
                  outcome="ok"))

    def moved(name: str, **labels: str) -> float:
        return counted(after, name, **labels) - counted(before, name, **labels)

    assert moved("ombudsdesk_notices_total", kind="acknowledgment", outcome="sent") == 1
    assert moved("ombudsdesk_events_consumed_total", consumer=streams.CONSUMER_NOTIFIER_REGISTRY, outcome="ok") == 1
    assert moved("ombudsdesk_event_processing_seconds_count", consumer=streams.CONSUMER_NOTIFIER_REGISTRY) == 1
    assert sample(after, "ombudsdesk_outbox_backlog") == 0
    for consumer in (streams.CONSUMER_NOTIFIER_REGISTRY, streams.CONSUMER_NOTIFIER_NOTICES,
                     streams.CONSUMER_NOTIFIER_DEADLINES, streams.CONSUMER_NOTIFIER_DELIVERY_FAILED):
        assert sample(after, "ombudsdesk_consumer_attached", consumer=consumer) == 1
        assert sample(after, "ombudsdesk_dead_letters", consumer=consumer) == 0
    assert sample(after, "ombudsdesk_consumer_pending", consumer=streams.CONSUMER_NOTIFIER_REGISTRY) == 0
    assert "jeanne" not in after.lower() and "MED-2026" not in after  # no address, no number in any label

    not_ready = await readiness_through_a_nats_outage(base, nats_server)
    assert "nats" in not_ready["not_ready"] and not_ready["checks"]["database"] == "ok", not_ready
    assert notifier.dispatcher.running


async def test_a_relay_that_defers_counts_retries_not_sends(start_notifier, nats_server, smtp_sink: SmtpSink):
    port = free_port()
    smtp_sink.handler.fail_next("DATA", "451 4.3.0 try later")
    await start_notifier(notifier_health_port=port, relay_retry_first_seconds=30)
    base = f"http://127.0.0.1:{port}"
    before = await scrape(base)
    await publish(nats_server.url, registered_event("MED-2026-00078"))
    after = await eventually(lambda: scrape(base), lambda text: counted(
        text, "ombudsdesk_notices_total", kind="acknowledgment", outcome="retried")
        > counted(before, "ombudsdesk_notices_total", kind="acknowledgment", outcome="retried"))
    assert counted(after, "ombudsdesk_notices_total", kind="acknowledgment", outcome="sent") == \
        counted(before, "ombudsdesk_notices_total", kind="acknowledgment", outcome="sent")
    assert sample(after, "ombudsdesk_outbox_backlog") == 1  # waiting for its retry
