"""Delivery against a real SMTP server told to answer 421 / 451 / 550: retries, give-up, flags, no duplicate."""

from __future__ import annotations

from shared import streams
from shared.events import DeliveryFailed, NotificationFailed, NotificationSent, Party
from services.notifier.wiring import NotifierService
from tests.notifier.support import SmtpSink, eventually, publish, read_stream, registered_event, wait_until


async def statuses(service: NotifierService) -> dict[str, str]:
    return {notice.complaint_number: notice.status for notice in await service.outbox.notices()}


async def test_transient_refusals_are_retried_until_accepted_once(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    smtp_sink.handler.fail_next("MAIL", "421 4.3.2 Service shutting down")
    smtp_sink.handler.fail_next("RCPT", "451 4.7.1 Greylisted, try again later")
    smtp_sink.handler.fail_next("DATA", "452 4.3.1 Insufficient system storage")
    await publish(nats_server.url, registered_event())
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="delivery after three transient refusals")
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
    assert NotificationSent.model_validate_json(raw).complaint_number == "MED-2026-00001"
    [notice] = await running_notifier.outbox.notices()
    assert notice.status == "sent" and notice.attempts == 4
    assert len(smtp_sink.messages) == 1
    assert smtp_sink.handler.commands.count("MAIL") == 4


async def test_permanent_refusal_fails_flags_the_address_and_reports(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    smtp_sink.handler.fail_next("RCPT", "550 5.1.1 No such user")
    await publish(nats_server.url, registered_event())
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 1)
    failed = NotificationFailed.model_validate_json(raw)
    assert failed.complaint_number == "MED-2026-00001" and "550" in failed.reason
    assert failed.recipient == "jeanne.dupont@example.org"
    [flag] = await running_notifier.outbox.flagged_addresses()
    assert flag.address == "jeanne.dupont@example.org"
    assert smtp_sink.handler.commands.count("RCPT") == 1  # no retry of a 5xx

    # The next notice to that address is not emailed: a letter when we have a postal address, else failed at once.
    await publish(
        nats_server.url,
        registered_event("MED-2026-00002", complainant=Party(name="Jeanne Dupont", email="jeanne.dupont@example.org",
                                                             postal_address="Rue Haute 5\n1000 Bruxelles")),
        registered_event("MED-2026-00003"),
    )
    await eventually(lambda: _has(running_notifier, 3), what="two more notices recorded")
    current = await statuses(running_notifier)
    assert current == {"MED-2026-00001": "failed", "MED-2026-00002": "queued", "MED-2026-00003": "failed"}
    assert smtp_sink.messages == []
    later = [NotificationFailed.model_validate_json(data) for data in
             await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 2)]
    assert [event.complaint_number for event in later] == ["MED-2026-00001", "MED-2026-00003"]


async def _has(service: NotifierService, count: int) -> bool:
    return len(await service.outbox.notices()) >= count


async def test_gives_up_when_the_relay_keeps_deferring_past_the_deadline(
    start_notifier, nats_server, smtp_sink: SmtpSink
):
    service = await start_notifier(relay_retry_deadline_seconds=0.6)
    smtp_sink.handler.fail_next("RCPT", *["451 4.4.5 Try later"] * 1000)
    await publish(nats_server.url, registered_event())
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 1)
    assert NotificationFailed.model_validate_json(raw).reason.startswith("gave_up")
    [notice] = await service.outbox.notices()
    assert notice.status == "failed" and notice.attempts >= 2
    assert await service.outbox.flagged_addresses() == []  # our relay's trouble, not the citizen's address


async def test_connection_refused_is_retried(start_notifier, nats_server, smtp_sink: SmtpSink):
    from ombudsdesk.embedded_nats import free_port

    service = await start_notifier(relay_port=free_port())  # nothing listens there
    await publish(nats_server.url, registered_event())

    async def retried() -> bool:
        notices = await service.outbox.notices()
        return bool(notices) and notices[0].attempts >= 2 and notices[0].status in ("pending", "sending")

    await eventually(retried, what="retries of a refused connection")


async def test_bounce_of_our_notice_marks_the_address_undeliverable(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    await publish(nats_server.url, registered_event())
    [raw] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_SENT, 1)
    sent = NotificationSent.model_validate_json(raw)
    await publish(
        nats_server.url,
        DeliveryFailed(message_key="dsn-1", original_message_id="<unrelated@example.org>",
                       failed_recipient="other@example.org", status="5.1.1"),
        DeliveryFailed(message_key="dsn-2", original_message_id=sent.message_id,
                       failed_recipient="jeanne.dupont@example.org", status="5.1.1", diagnostic="user unknown"),
    )
    [raw_failed] = await read_stream(nats_server.url, streams.SUBJECT_NOTIFICATION_FAILED, 1)
    assert "bounce" in NotificationFailed.model_validate_json(raw_failed).reason
    flags = await running_notifier.outbox.flagged_addresses()
    assert [flag.address for flag in flags] == ["jeanne.dupont@example.org"]


async def test_two_notifier_instances_share_the_work_without_duplicates(
    start_notifier, nats_server, smtp_sink: SmtpSink
):
    first = await start_notifier()
    second = await start_notifier()
    sends: list[str] = []
    for service in (first, second):
        relay_send = service.dispatcher.relay.send

        async def counting_send(message, sender, recipient, relay_send=relay_send):
            sends.append(recipient)
            return await relay_send(message, sender, recipient)

        service.dispatcher.relay.send = counting_send  # type: ignore[method-assign]
    events = [registered_event(f"MED-2026-{index:05d}", complainant=Party(name="C", email=f"c{index}@example.org"))
              for index in range(1, 61)]
    await publish(nats_server.url, *events)
    await wait_until(lambda: len(smtp_sink.messages) >= 60, what="sixty acknowledgments")

    async def all_sent() -> bool:
        notices = await first.outbox.notices()
        return len(notices) == 60 and all(notice.status == "sent" for notice in notices)

    await eventually(all_sent, what="the shared outbox settled")
    subjects = [mail["Subject"] for mail in smtp_sink.messages]
    assert len(subjects) == len(set(subjects)) == 60
    assert sorted(sends) == sorted(f"c{index}@example.org" for index in range(1, 61))  # no notice claimed twice


async def test_a_template_error_is_dead_lettered_not_sent_blank(start_notifier, nats_server, smtp_sink, tmp_path):
    from shared.events import DeadLettered

    override = tmp_path / "templates" / "fr"
    override.mkdir(parents=True)
    (override / "acknowledgment.j2").write_text(
        "{% block subject %}[{{ case_number }}]{% endblock %}{% block body %}{{ no_such_variable }}{% endblock %}",
        encoding="utf-8",
    )
    service = await start_notifier(templates_dir=tmp_path / "templates")
    await publish(nats_server.url, registered_event())
    [raw] = await read_stream(nats_server.url, streams.dead_letter_subject(streams.CONSUMER_NOTIFIER_REGISTRY), 1)
    assert "no_such_variable" in DeadLettered.model_validate_json(raw).error
    assert await service.outbox.notices() == [] and smtp_sink.messages == []


async def test_claims_are_given_back_on_stop_and_not_taken_twice(running_notifier: NotifierService, nats_server):
    from datetime import datetime, timedelta, timezone

    await running_notifier.dispatcher.stop()  # the relay loop is off: only this test claims
    await publish(nats_server.url, registered_event("MED-2026-00001"), registered_event("MED-2026-00002"))
    outbox = running_notifier.outbox

    async def recorded() -> bool:
        return len(await outbox.notices()) == 2

    await eventually(recorded, what="two notices recorded")
    now = datetime.now(timezone.utc)
    lease = timedelta(seconds=60)
    claimed = await outbox.claim_due(now, 10, lease)
    assert [notice.complaint_number for notice in claimed] == ["MED-2026-00001", "MED-2026-00002"]
    assert await outbox.claim_due(now, 10, lease) == []  # leased
    assert len(await outbox.claim_due(now + lease + timedelta(seconds=1), 10, lease)) == 2  # a dead relay's lease
    await outbox.release(claimed[0])  # stale: another relay holds it now, nothing changes
    assert await outbox.claim_due(now + lease + timedelta(seconds=1), 10, lease) == []
