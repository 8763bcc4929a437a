"""Intake's probes and metrics over real HTTP, with a real NATS and real SMTP (issue 14): `/health`, `/ready` and
`/metrics` answer, the counters move when a mail is taken in or refused, the spool's figures are read from
JetStream, and `/ready` turns 503 while NATS is down (liveness stays 200) and back to 200 once it is back."""

from __future__ import annotations

import asyncio
import smtplib

from ombudsdesk.embedded_nats import free_port
from tests.intake.support import asend, citizen_mail, running_intake, settled
from tests.probes import eventually, probe, readiness_through_a_nats_outage, sample, scrape


def refused_recipient(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example.org")
        client.mail("sender@example.org")
        return client.rcpt("nobody.here@example.org")[0]


def counted(exposition: str, name: str, **labels: str) -> float:
    return sample(exposition, name, **labels) or 0.0


async def test_intake_probes_and_counters_over_http(nats_server, tmp_path):
    port = free_port()
    sender = "zoe.metrics@example.org"
    async with running_intake(nats_server.url, tmp_path, intake_health_port=port) as intake:
        base = f"http://127.0.0.1:{port}"
        status, health = await probe(base, "/health")
        assert status == 200 and health["status"] == "ok" and "accepted_since_start" in health
        status, ready = await probe(base, "/ready")
        assert status == 200, ready
        assert ready["checks"] == {"nats": "ok", "consumers": "ok"} and "not_ready" not in ready
        before = await scrape(base)

        await asend(intake.smtp_port, citizen_mail(sender=f"Zoé <{sender}>", message_id="<m1@example.org>"))
        assert await asyncio.to_thread(refused_recipient, intake.smtp_port) == 550
        await settled(intake)
        after = await scrape(base)

    def moved(name: str, **labels: str) -> float:
        return counted(after, name, **labels) - counted(before, name, **labels)

    assert moved("ombudsdesk_intake_mails_total", channel="smtp", outcome="processed") == 1
    assert moved("ombudsdesk_intake_mails_refused_total", channel="smtp", reason="recipient_not_ours") == 1
    assert moved("ombudsdesk_events_consumed_total", consumer="intake-spool", outcome="ok") == 1
    assert moved("ombudsdesk_event_processing_seconds_count", consumer="intake-spool") == 1
    assert sample(after, "ombudsdesk_intake_spool_backlog") == 0
    assert sample(after, "ombudsdesk_intake_quarantined") == 0
    assert sample(after, "ombudsdesk_consumer_attached", consumer="intake-spool") == 1
    assert sample(after, "ombudsdesk_consumer_pending", consumer="intake-spool") == 0
    assert sample(after, "ombudsdesk_ready", service="intake") == 1
    # Labels are codes, never what came with the mail.
    assert sender not in after and "nobody.here" not in after and "example.org" not in after


async def test_ready_follows_nats_down_and_back_while_health_stays_up(nats_server, tmp_path):
    port = free_port()
    async with running_intake(nats_server.url, tmp_path, intake_health_port=port):
        base = f"http://127.0.0.1:{port}"
        assert (await probe(base, "/ready"))[0] == 200

        async def metrics_without_nats() -> None:
            exposition = await scrape(base)  # answers without NATS, within its bounds
            assert sample(exposition, "ombudsdesk_ready", service="intake") == 0
            assert sample(exposition, "ombudsdesk_ready_check", check="nats") == 0

        not_ready = await readiness_through_a_nats_outage(base, nats_server, metrics_without_nats)
    assert "nats" in not_ready["not_ready"] and not_ready["status"] == "not ready", not_ready
    assert not_ready["nats_connected"] is False


async def test_an_smtp_only_intake_is_ready_without_the_spool_and_reports_who_pulls_it(nats_server, tmp_path):
    port = free_port()
    async with running_intake(nats_server.url, tmp_path / "front", intake_role="front", intake_health_port=port):
        base = f"http://127.0.0.1:{port}"
        status, ready = await probe(base, "/ready")
        assert status == 200 and ready["checks"] == {"nats": "ok"}, ready
        alone = await scrape(base)
        async with running_intake(nats_server.url, tmp_path / "parser", intake_role="parser"):
            pulled = await eventually(lambda: scrape(base), lambda text: (sample(
                text, "ombudsdesk_consumer_waiting_pulls", consumer="intake-spool") or 0) > 0)
    assert sample(alone, "ombudsdesk_consumer_waiting_pulls", consumer="intake-spool") == 0  # nobody parses yet
    assert sample(pulled, "ombudsdesk_consumer_attached", consumer="intake-spool") is None  # not this process's
    assert sample(pulled, "ombudsdesk_intake_spool_backlog") == 0
