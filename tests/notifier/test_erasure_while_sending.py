"""A file erased while the dispatcher is sending one of its notices (issue 16's race, `Outbox._settled`): the mail
already on the wire goes out, but whatever the relay answers, what is recorded afterwards respects the erasure. Real
SMTP conversations (aiosmtpd, told which replies to give), the real relay client and dispatcher, SQLite and
PostgreSQL; the erasure commits between the claim and the relay's answer. In each case a notice of another file,
sent in the same drain and answered the same way, gets the ordinary outcome."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import pytest
from sqlalchemy import text

from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import NotifierHandlers
from services.notifier.models import ERASED_REASON
from services.notifier.outbox import Outbox
from services.notifier.privacy import NotifierPrivacy
from services.notifier.relay import SmtpRelay
from services.notifier.rendering import TemplateRenderer
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import MIGRATIONS
from shared.database import create_engine, upgrade_to_head
from shared.events import DeliveryFailed, Event, NotificationFailed, NotificationSent, PersonalDataErased
from tests.notifier.support import SmtpSink, insert_notice

ERASED_FILE, OTHER_FILE = "MED-2026-00007", "MED-2026-00008"
ERASED_ADDRESS, OTHER_ADDRESS = "erased.citizen@example.org", "other.citizen@example.org"


class ErasingRelay:
    """The real relay, with the erasure of `ERASED_FILE` committed just before the mail to its citizen goes out:
    the notice is claimed, its text in the dispatcher's hands, when the relay answers."""

    def __init__(self, relay: SmtpRelay, privacy: NotifierPrivacy) -> None:
        self.relay, self.privacy = relay, privacy

    async def send(self, message: bytes | EmailMessage, sender: str, recipient: str) -> str:
        if recipient == ERASED_ADDRESS:
            await self.privacy.erase(PersonalDataErased(complaint_number=ERASED_FILE, erasure_id="e-1",
                                                        mode="erased", reason="request"))
        return await self.relay.send(message, sender, recipient)

    async def close(self) -> None:
        await self.relay.close()


async def _drain(database_url: str, sink: SmtpSink, *, give_up_now: bool = False):
    """Two notices due (the erased file's first), drained once; the rows and flags after, the events published."""
    engine = create_engine(database_url)
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    try:
        await upgrade_to_head(engine, MIGRATIONS)
        now = datetime.now(timezone.utc)
        give_up_at = (now if give_up_now else now + timedelta(days=1)).replace(tzinfo=None)
        async with engine.begin() as connection:
            for key, number, address in (("erased", ERASED_FILE, ERASED_ADDRESS), ("other", OTHER_FILE, OTHER_ADDRESS)):
                await insert_notice(connection, notification_key=key, complaint_number=number, recipient=address,
                                    subject=f"Votre plainte {number}", give_up_at=give_up_at)
        relay = ErasingRelay(SmtpRelay("127.0.0.1", sink.port, timeout=10), NotifierPrivacy(engine))
        dispatcher = Dispatcher(NotifierSettings(), Outbox(engine), relay,  # type: ignore[arg-type]
                                publish, clock=lambda: datetime.now(timezone.utc))
        assert await dispatcher.drain() == 2
        await relay.close()
        async with engine.connect() as connection:
            rows = {key: dict(rest) for key, *rest in ((row[0], *row._mapping.items()) for row in (
                await connection.execute(text(
                    "SELECT notification_key, status, status_reason, recipient, subject, attempts, outcome_published"
                    " FROM notices"))).all())}
            flags = (await connection.execute(text("SELECT address FROM address_flags"))).scalars().all()
        # Due again (any retry delay passed): what another drain would take.
        later = datetime.now(timezone.utc) + timedelta(days=2)
        again = [notice.notification_key for notice in await Outbox(engine).claim_due(later, 10,
                                                                                      timedelta(minutes=5))]
    finally:
        await engine.dispose()
    return rows, flags, published, again


def _erased_row(rows: dict, status: str) -> None:
    row = rows["erased"]
    assert (row["status"], row["status_reason"], row["recipient"], row["subject"]) == (status, ERASED_REASON, "", "")


def _keys(events: list[Event]) -> list[str]:
    return [event.notification_key for event in events]  # type: ignore[attr-defined]


async def test_accepted_it_is_recorded_sent_and_erased_and_reported_without_whom_to(database_url,
                                                                                      smtp_sink: SmtpSink):
    rows, flags, published, again = await _drain(database_url, smtp_sink)
    assert sorted(envelope[1][0] for envelope in smtp_sink.handler.envelopes) == [ERASED_ADDRESS, OTHER_ADDRESS]
    _erased_row(rows, "sent")
    assert rows["erased"]["outcome_published"] and rows["erased"]["attempts"] == 1
    assert (rows["other"]["status"], rows["other"]["status_reason"], rows["other"]["recipient"]) == (
        "sent", None, OTHER_ADDRESS)
    # The register learns that both went out; of the erased file's, not to whom nor under which subject.
    erased, other = sorted(published, key=lambda event: event.notification_key)  # type: ignore[attr-defined]
    assert isinstance(erased, NotificationSent) and isinstance(other, NotificationSent)
    assert (erased.recipient, erased.subject_line) == ("", "")
    assert (other.recipient, other.subject_line) == (OTHER_ADDRESS, f"Votre plainte {OTHER_FILE}")
    assert (flags, again) == ([], [])


async def test_deferred_it_is_withdrawn_not_queued_again_with_a_blank_recipient(database_url, smtp_sink: SmtpSink):
    smtp_sink.handler.fail_next("DATA", "451 4.3.0 Try again later", "451 4.3.0 Try again later")
    rows, flags, published, again = await _drain(database_url, smtp_sink)
    _erased_row(rows, "suppressed")
    assert rows["other"]["status"] == "pending" and rows["other"]["status_reason"].startswith("relay_deferred")
    assert again == ["other"]  # the erased notice is not retried
    assert (published, flags) == ([], [])


async def test_refused_it_is_withdrawn_its_address_not_flagged_no_failure_reported(database_url,
                                                                                   smtp_sink: SmtpSink):
    smtp_sink.handler.fail_next("RCPT", "550 5.1.1 No such user", "550 5.1.1 No such user")
    rows, flags, published, again = await _drain(database_url, smtp_sink)
    _erased_row(rows, "suppressed")
    assert rows["other"]["status"] == "failed" and rows["other"]["status_reason"].startswith("recipient_refused")
    assert flags == [OTHER_ADDRESS]
    assert _keys(published) == ["other"] and isinstance(published[0], NotificationFailed)
    assert again == []


async def test_given_up_it_is_withdrawn_and_no_failure_reported(database_url, smtp_sink: SmtpSink):
    smtp_sink.handler.fail_next("DATA", "451 4.3.0 Try again later", "451 4.3.0 Try again later")
    rows, flags, published, again = await _drain(database_url, smtp_sink, give_up_now=True)
    _erased_row(rows, "suppressed")
    assert rows["other"]["status"] == "failed" and rows["other"]["status_reason"].startswith("gave_up")
    assert _keys(published) == ["other"] and isinstance(published[0], NotificationFailed)
    assert (flags, again) == ([], [])


@pytest.mark.parametrize("erased", [True, False], ids=["erased", "not-erased"])
async def test_a_released_notice_goes_back_to_the_queue_unless_erased(database_url, erased):
    """The dispatcher gives back what it claimed when it stops before sending (`Outbox.release`)."""
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.begin() as connection:
            await insert_notice(connection, notification_key="held", complaint_number=ERASED_FILE)
        outbox = Outbox(engine)
        [notice] = await outbox.claim_due(datetime.now(timezone.utc), 10, timedelta(minutes=5))
        if erased:
            await NotifierPrivacy(engine).erase(PersonalDataErased(complaint_number=ERASED_FILE, erasure_id="e-2",
                                                                   mode="erased", reason="request"))
        await outbox.release(notice)
        [row] = await outbox.notices(ERASED_FILE)
    finally:
        await engine.dispose()
    expected = ("suppressed", ERASED_REASON, "") if erased else ("pending", None, "citizen@example.org")
    assert (row.status, row.status_reason, row.recipient) == expected


@pytest.mark.parametrize("erased", [True, False], ids=["erased", "not-erased"])
async def test_a_bounce_read_before_the_erasure_flags_no_erased_address(database_url, tmp_path, erased):
    """The bounce handler reads the notice, then flags its address: a file erased in between has no address left to
    flag (`Outbox.flag_recipient` reads it again under the notice's lock), and the erased notice stays as erased."""
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.begin() as connection:
            await insert_notice(connection, notification_key="bounced", complaint_number=ERASED_FILE,
                                recipient=ERASED_ADDRESS, message_id="<bounced@ombudsdesk.test>", status="sent")
        outbox = Outbox(engine)
        read_notice = outbox.by_message_id

        async def read_then_erased(message_id: str):
            notice = await read_notice(message_id)
            if erased:
                await NotifierPrivacy(engine).erase(PersonalDataErased(
                    complaint_number=ERASED_FILE, erasure_id="e-3", mode="erased", reason="request"))
            return notice

        outbox.by_message_id = read_then_erased  # type: ignore[method-assign]
        handlers = NotifierHandlers(NotifierSettings(var_dir=tmp_path), outbox, TemplateRenderer())
        await handlers.delivery_failed(DeliveryFailed(
            message_key="dsn-1", original_message_id="<bounced@ombudsdesk.test>", failed_recipient=ERASED_ADDRESS,
            status="5.1.1", diagnostic=f"<{ERASED_ADDRESS}>: user unknown"))
        flags = [flag.address for flag in await outbox.flagged_addresses()]
        [row] = await outbox.notices(ERASED_FILE)
    finally:
        await engine.dispose()
    if erased:
        assert (flags, row.status, row.status_reason, row.recipient) == ([], "sent", ERASED_REASON, "")
    else:
        assert flags == [ERASED_ADDRESS] and row.status == "failed" and row.status_reason.startswith("bounce")
