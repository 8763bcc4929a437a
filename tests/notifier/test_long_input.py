"""Input longer than any sensible bound (a display name, a quoted Message-ID) still gets its acknowledgment, on
PostgreSQL as on SQLite: a VARCHAR overflow would dead-letter the event and the citizen would hear nothing."""

from __future__ import annotations

from services.notifier.wiring import NotifierService
from shared.events import Party
from tests.notifier.support import SmtpSink, eventually, publish, registered_event, wait_until


async def test_a_very_long_name_and_message_id_are_acknowledged(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    long_name = "Jeanne " + "Marie-" * 80 + "Dupont"
    long_message_id = "<" + "x" * 1500 + "@example.org>"
    await publish(nats_server.url, registered_event(
        complainant=Party(name=long_name, email="jeanne.dupont@example.org"), reply_to_message_id=long_message_id))
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the acknowledgment")
    [mail] = smtp_sink.messages
    assert mail["To"].addresses[0].addr_spec == "jeanne.dupont@example.org"

    async def recorded_sent() -> bool:  # the relay's 250 comes before the outbox commits "sent"
        return [notice.status for notice in await running_notifier.outbox.notices("MED-2026-00001")] == ["sent"]

    await eventually(recorded_sent, what="the notice recorded as sent")
    [notice] = await running_notifier.outbox.notices("MED-2026-00001")
    assert long_name.startswith(notice.recipient_name) and notice.recipient_name.startswith("Jeanne Marie-")
