"""The registry's probes and metrics on its API port, over real HTTP, with real NATS and a real database (SQLite and
PostgreSQL) (issue 14): `/ready` and `/metrics` need no identity and answer whatever Host a scraper sends, the
counters move when a message is registered and when the watcher raises deadline alerts, the outbox backlog is read
from the database, and `/ready` turns 503 while NATS is down and back to 200 once it is back."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import datetime, timedelta, timezone

from ombudsdesk.embedded_nats import free_port
from services.registry.wiring import build_registry
from shared import streams
from tests.probes import eventually, probe, readiness_through_a_nats_outage, sample, scrape
from services.registry.settings import RegistrySettings
from tests.registry.conftest import publish, received


def settings(tmp_path, nats_url: str, database_url: str) -> RegistrySettings:
    return RegistrySettings(nats_url=nats_url, registry_database_url=database_url, var_dir=tmp_path / "var",
                            registry_api_port=free_port())


def counted(exposition: str, name: str, **labels: str) -> float:
    return sample(exposition, name, **labels) or 0.0


def alerts(exposition: str) -> float:
    return sum(counted(exposition, "ombudsdesk_deadline_alerts_raised_total", alert=alert, deadline_kind=kind)
               for alert in ("approaching", "missed") for kind in ("acknowledgment", "answer"))


def get_with_host(url: str, host: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


async def test_registry_probes_and_counters_over_http(tmp_path, nats_server, database_url, js):
    service = build_registry(settings(tmp_path, nats_server.url, database_url))
    await service.start()
    base = f"http://127.0.0.1:{service.settings.registry_api_port}"
    try:
        status, ready = await probe(base, "/ready")
        assert status == 200, ready
        assert ready["checks"] == {"nats": "ok", "consumers": "ok", "database": "ok"}
        # A scraper names the host it was configured with: the probes answer it (the rest of the API refuses it).
        status, text = await asyncio.to_thread(get_with_host, f"{base}/metrics", "registry.internal:8470")
        assert status == 200 and "ombudsdesk_ready" in text
        before = await scrape(base)

        long_ago = datetime.now(timezone.utc) - timedelta(days=90)
        await publish(js, received(at=long_ago, email="olga.metrics@example.org"))
        consumed = lambda text: counted(text, "ombudsdesk_events_consumed_total",  # noqa: E731
                                        consumer=streams.CONSUMER_REGISTRY_INTAKE, outcome="ok")
        await eventually(lambda: scrape(base), lambda text: consumed(text) > consumed(before))
        raised = await service.watcher.check()  # the acknowledgment of a complaint received 90 days ago is late
        after = await eventually(lambda: scrape(base), lambda text: sample(text, "ombudsdesk_outbox_backlog") == 0)
    finally:
        await service.stop()

    assert raised >= 1
    assert consumed(after) - consumed(before) == 1
    assert alerts(after) - alerts(before) == raised
    assert counted(after, "ombudsdesk_deadline_alerts_raised_total", alert="missed", deadline_kind="acknowledgment") \
        > counted(before, "ombudsdesk_deadline_alerts_raised_total", alert="missed", deadline_kind="acknowledgment")
    for consumer in (streams.CONSUMER_REGISTRY_INTAKE, streams.CONSUMER_REGISTRY_DELIVERY,
                     streams.CONSUMER_REGISTRY_NOTIFICATION_FAILED):
        assert sample(after, "ombudsdesk_consumer_attached", consumer=consumer) == 1
        assert sample(after, "ombudsdesk_dead_letters", consumer=consumer) == 0
    assert sample(after, "ombudsdesk_consumer_pending", consumer=streams.CONSUMER_REGISTRY_INTAKE) == 0
    assert sample(after, "ombudsdesk_ready", service="registry") == 1
    assert "olga" not in after and "MED-" not in after


async def test_registry_ready_follows_nats_down_and_back(tmp_path, nats_server, database_url):
    service = build_registry(settings(tmp_path, nats_server.url, database_url))
    await service.start()
    base = f"http://127.0.0.1:{service.settings.registry_api_port}"
    try:
        not_ready = await readiness_through_a_nats_outage(base, nats_server)
    finally:
        await service.stop()
    assert "nats" in not_ready["not_ready"] and not_ready["checks"]["database"] == "ok", not_ready
