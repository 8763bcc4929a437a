"""The probe server and the scrape-time readings of `shared.observability`, over real HTTP (issue 14): the three
routes and nothing else, an answer even when a probe fails (its error's type, never its text), a gauge whose store
hangs left out of the scrape within its bound instead of hanging the scrape, and labels that stay low-cardinality
whatever a channel's source name says."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

from shared import observability
from shared.messaging import make_broker
from shared.observability import ProbeServer, Probes, ScrapeGauge
from shared.settings import CommonSettings
from tests.probes import http_get, sample, series_names


async def started(server: ProbeServer) -> str:
    await server.start()
    return f"http://127.0.0.1:{server.port}"


async def test_routes_answers_and_failures(tmp_path):
    async def healthy() -> tuple[bool, dict]:
        return True, {"status": "ok"}

    async def failing() -> tuple[bool, dict]:
        raise RuntimeError("jeanne.dupont@example.org is not reachable")  # a text that must not be echoed

    async def metrics() -> bytes:
        return b"# nothing\n"

    server = ProbeServer("127.0.0.1", 0, healthy, failing, metrics)
    base = await started(server)
    try:
        health = await asyncio.to_thread(http_get, f"{base}/health")
        root = await asyncio.to_thread(http_get, f"{base}/")
        ready = await asyncio.to_thread(http_get, f"{base}/ready?verbose=1")
        scraped = await asyncio.to_thread(http_get, f"{base}/metrics")
        unknown = await asyncio.to_thread(http_get, f"{base}/admin")
        posted = await asyncio.to_thread(http_get_post, f"{base}/health")
    finally:
        await server.stop()
    assert health[0] == 200 and json.loads(health[2]) == {"status": "ok"}
    assert root == health
    assert ready[0] == 503 and json.loads(ready[2]) == {"status": "error", "error": "RuntimeError"}
    assert scraped[0] == 200 and scraped[1].startswith("text/plain") and scraped[2] == b"# nothing\n"
    assert unknown[0] == 404
    assert posted == 405


def http_get_post(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_a_hanging_store_is_left_out_of_the_scrape_within_its_bound(monkeypatch):
    monkeypatch.setattr(observability, "SCRAPE_TIMEOUT_SECONDS", 0.3)

    async def hangs() -> float:
        await asyncio.sleep(60)
        return 1.0

    async def answers() -> float:
        return 7.0

    # A broker never connected: NATS is "not connected", nothing is asked of it.
    broker = make_broker(CommonSettings(nats_url="nats://127.0.0.1:1"))
    probes = Probes("test", broker, gauges=(ScrapeGauge("ombudsdesk_test_hanging", "hangs", hangs),
                                            ScrapeGauge("ombudsdesk_test_answering", "answers", answers)))
    began = time.monotonic()
    text = (await probes.metrics()).decode()
    assert time.monotonic() - began < 5
    assert sample(text, "ombudsdesk_test_answering") == 7.0
    assert sample(text, "ombudsdesk_test_hanging") is None and "ombudsdesk_test_hanging" in series_names(text)
    assert sample(text, "ombudsdesk_ready", service="test") == 0
    ready, report = await probes.ready()
    assert not ready and report["not_ready"] == ["nats"]


def test_channel_labels_keep_the_channel_not_the_mailbox_or_the_file():
    before = {source: sample_value(source) for source in ("imap", "letters")}
    observability.mail_taken_in("imap:Boîte de Jeanne Dupont", "processed")
    observability.mail_taken_in("letters:scan-2026-11-24-jeanne.pdf", "processed")
    from prometheus_client import REGISTRY, generate_latest

    text = generate_latest(REGISTRY).decode()
    assert "Jeanne" not in text and "jeanne" not in text
    for source in ("imap", "letters"):
        assert sample_value(source) == before[source] + 1


def sample_value(channel: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("ombudsdesk_intake_mails_total",
                                     {"channel": channel, "outcome": "processed"}) or 0.0
