"""The notifier cannot be turned against a third party (issue 10), over real NATS, a real SMTP server and both
databases: acknowledgments per recipient address are limited over any 24 hours, counted in the outbox (across a
restart and between two instances); an acknowledgment intake said not to send is recorded as suppressed with the
reason staff read; and no link is ever made from text a sender wrote."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from typer.testing import CliRunner

from services.notifier.cli import app as notifier_cli
from services.notifier.reasons import describe_reason
from services.notifier.rendering import SHIPPED_TEMPLATES
from services.notifier.wiring import build_notifier
from shared import streams
from shared.events import Party
from tests.notifier.conftest import notifier_settings
from tests.notifier.support import (
    SmtpSink,
    consumer_settled,
    eventually,
    publish,
    registered_event,
    wait_until,
)

VICTIM = Party(name="Victime", email="victim@example.org")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _settled(nats_url: str) -> bool:
    return await consumer_settled(nats_url, streams.STREAM_REGISTRY, streams.CONSUMER_NOTIFIER_REGISTRY)


def _victim_mails(sink: SmtpSink) -> int:
    return sum(1 for mail in sink.messages if mail["To"].addresses[0].addr_spec == "victim@example.org")


async def test_acknowledgments_to_one_address_are_limited_over_24_hours_and_across_a_restart(
    nats_server, database_url, smtp_sink: SmtpSink, tmp_path: Path
):
    settings = notifier_settings(nats_server.url, database_url, smtp_sink, tmp_path)
    assert settings.acknowledgment_limit_per_recipient == 5  # the default
    clock = Clock(datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    service = build_notifier(settings, clock)
    await service.start()
    try:
        # Seven complaints in the victim's name (the address of someone else, typed into a From), one genuine.
        await publish(nats_server.url, *[registered_event(f"MED-2026-{n:05d}", complainant=VICTIM)
                                         for n in range(1, 8)],
                      registered_event("MED-2026-00008"))
        await eventually(lambda: _settled(nats_server.url), what="eight events handled")
        await wait_until(lambda: len(smtp_sink.messages) >= 6, what="five acknowledgments and the genuine one")
        notices = {n.complaint_number: n for n in await service.outbox.notices()}
        suppressed = sorted(number for number, n in notices.items() if n.status == "suppressed")
        assert len(suppressed) == 2 and "MED-2026-00008" not in suppressed
        assert {notices[number].status_reason for number in suppressed} == {"acknowledgment_limit: 5/24h"}
        assert describe_reason("acknowledgment_limit: 5/24h", "fr") == (
            "limite d'accusés de réception sur 24 heures atteinte pour cette adresse (5/24h)")
    finally:
        await service.stop()

    # A restart forgets nothing: the count is the outbox's. 23 hours later the limit still holds...
    clock.now += timedelta(hours=23)
    service = build_notifier(settings, clock)
    await service.start()
    try:
        await publish(nats_server.url, registered_event("MED-2026-00009", complainant=VICTIM))
        await eventually(lambda: _settled(nats_server.url), what="the ninth event handled")
        assert (await service.outbox.by_key("acknowledgment:MED-2026-00009")).status == "suppressed"
        # ... and 24 hours after the five were recorded, one more may go.
        clock.now += timedelta(hours=1, seconds=1)
        await publish(nats_server.url, registered_event("MED-2026-00010", complainant=VICTIM))
        await wait_until(lambda: _victim_mails(smtp_sink) == 6, what="the acknowledgment of the next day")

        async def recorded_sent() -> bool:  # the relay's 250 comes just before the outbox records it
            return (await service.outbox.by_key("acknowledgment:MED-2026-00010")).status == "sent"

        await eventually(recorded_sent, what="the acknowledgment of the next day recorded as sent")
    finally:
        await service.stop()
    assert _victim_mails(smtp_sink) == 6


async def test_two_notifier_instances_share_the_limit(start_notifier, nats_server, smtp_sink: SmtpSink):
    first = await start_notifier(acknowledgment_limit_per_recipient=3)
    await start_notifier(acknowledgment_limit_per_recipient=3)
    await publish(nats_server.url, *[registered_event(f"MED-2026-{n:05d}", complainant=VICTIM)
                                     for n in range(1, 13)])
    await eventually(lambda: _settled(nats_server.url), what="twelve events handled by two instances")
    await wait_until(lambda: _victim_mails(smtp_sink) >= 3, what="three acknowledgments")
    statuses = sorted(n.status for n in await first.outbox.notices())
    assert statuses == ["sent"] * 3 + ["suppressed"] * 9
    assert _victim_mails(smtp_sink) == 3


async def test_an_acknowledgment_intake_withheld_is_recorded_not_sent(
    running_notifier, nats_server, smtp_sink: SmtpSink, database_url, monkeypatch
):
    await publish(nats_server.url,
                  registered_event("MED-2026-00001", acknowledgment_suppressed="x_auto_response_suppress"),
                  registered_event("MED-2026-00002"))
    await eventually(lambda: _settled(nats_server.url), what="both events handled")
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the other acknowledgment")
    withheld = await running_notifier.outbox.by_key("acknowledgment:MED-2026-00001")
    assert (withheld.status, withheld.status_reason) == (
        "suppressed", "acknowledgment_suppressed: x_auto_response_suppress")
    assert [mail["Subject"] for mail in smtp_sink.messages] == [
        "[MED-2026-00002] Accusé de réception de votre réclamation"]

    # Staff see why, in their language, with `ombudsdesk notifier outbox`.
    monkeypatch.setenv("OMBUDSDESK_NOTIFIER_DATABASE_URL", database_url)
    # (in a thread: the command runs its own event loop)
    shown = await asyncio.to_thread(CliRunner().invoke, notifier_cli, ["outbox", "--complaint", "MED-2026-00001"])
    assert shown.exit_code == 0, shown.output
    assert "pas d'accusé de réception automatique, décidé à la réception du message (x_auto_response_suppress)" in (
        shown.output)
    shown = await asyncio.to_thread(CliRunner().invoke, notifier_cli,
                                    ["outbox", "--complaint", "MED-2026-00001", "--language", "nl"])
    assert "geen automatische ontvangstbevestiging" in shown.output


async def test_no_link_is_made_from_what_a_sender_wrote(start_notifier, nats_server, smtp_sink: SmtpSink):
    await start_notifier(organisation_website="https://www.mediation.example.be/contact")
    hostile = registered_event(subject_line='http://evil.example/login?a=1&b=2 <a href="http://evil.example">ici</a>',
                               complainant=Party(name="<script>alert(1)</script> https://evil.example",
                                                 email="jeanne.dupont@example.org"))
    await publish(nats_server.url, hostile)
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the acknowledgment")
    [mail] = smtp_sink.messages
    html = mail.get_body(("html",)).get_content()
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == ["https://www.mediation.example.be/contact"]  # the organisation's own address only
    assert "http://evil.example/login?a=1&amp;b=2" in html  # shown as text
    assert '&lt;a href=&#34;http://evil.example&#34;&gt;ici&lt;/a&gt;' in html
    assert "<script>" not in html
    assert "http://evil.example/login?a=1&b=2" in mail.get_body(("plain",)).get_content()


def test_no_template_marks_text_safe_or_turns_escaping_off():
    for template in SHIPPED_TEMPLATES.rglob("*"):
        if template.is_file():
            source = template.read_text(encoding="utf-8")
            assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup\(", source), template


def _gmail_victim_mails(sink: SmtpSink) -> int:
    return sum(1 for mail in sink.messages if mail["To"].addresses[0].domain in {"gmail.com", "googlemail.com"})


async def test_every_spelling_of_one_mailbox_shares_its_limit(start_notifier, nats_server, smtp_sink: SmtpSink):
    """victim+1@, v.ictim@, googlemail.com...: one Gmail mailbox (RFC 5233 sub-address, Gmail ignores dots)."""
    service = await start_notifier(acknowledgment_limit_per_recipient=3)
    spellings = ["victim@gmail.com", "victim+1@gmail.com", "v.ictim@gmail.com", "Victim+2@googlemail.com",
                 "v.i.ctim+x@gmail.com"]
    await publish(nats_server.url, *[registered_event(f"MED-2026-{n:05d}", complainant=Party(name="V", email=email))
                                     for n, email in enumerate(spellings, start=1)])
    await eventually(lambda: _settled(nats_server.url), what="five events handled")
    await wait_until(lambda: _gmail_victim_mails(smtp_sink) >= 3, what="three acknowledgments")
    notices = await service.outbox.notices()
    assert sorted(n.status for n in notices) == ["sent"] * 3 + ["suppressed"] * 2
    assert {n.limit_key for n in notices} == {"unverified:victim@gmail.com"}
    assert {n.status_reason for n in notices if n.status == "suppressed"} == {"acknowledgment_limit: 3/24h"}
    assert _gmail_victim_mails(smtp_sink) == 3


async def test_forged_unverified_mail_does_not_use_up_a_verified_citizens_acknowledgments(
    start_notifier, nats_server, smtp_sink: SmtpSink
):
    service = await start_notifier(acknowledgment_limit_per_recipient=2)
    # Three forged complaints "From: victim@example.org", nobody proved who wrote them: two acknowledgments at most.
    await publish(nats_server.url, *[registered_event(f"MED-2026-{n:05d}", complainant=VICTIM,
                                                      sender_verdict="unverified") for n in range(1, 4)])
    await eventually(lambda: _settled(nats_server.url), what="the forged complaints handled")
    await wait_until(lambda: _victim_mails(smtp_sink) >= 2, what="two acknowledgments")
    # Then the victim's own complaints, DMARC-verified by the organisation's MX: their own quota, the same limit.
    await publish(nats_server.url, *[registered_event(f"MED-2026-{n:05d}", complainant=VICTIM,
                                                      sender_verdict="verified") for n in range(4, 7)])
    await eventually(lambda: _settled(nats_server.url), what="the verified complaints handled")
    await wait_until(lambda: _victim_mails(smtp_sink) >= 4, what="two acknowledgments of verified complaints")
    notices = {n.complaint_number: n for n in await service.outbox.notices()}
    assert notices["MED-2026-00004"].status == "sent"  # the first genuine one is answered, the forged ones notwithstanding
    by_quota = {key: sorted(n.status for n in notices.values() if n.limit_key == key)
                for key in ("unverified:victim@example.org", "verified:victim@example.org")}
    assert by_quota == {"unverified:victim@example.org": ["sent", "sent", "suppressed"],
                        "verified:victim@example.org": ["sent", "sent", "suppressed"]}
    assert _victim_mails(smtp_sink) == 4
