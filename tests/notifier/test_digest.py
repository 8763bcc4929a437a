"""The optional daily digest of each handler's files at risk: once a day, files leave it when settled."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from shared.events import DeadlineApproaching, DeadlineMissed, NoticeRequested, Party
from services.notifier.wiring import build_notifier
from tests.notifier.conftest import notifier_settings
from tests.notifier.support import SmtpSink, eventually, publish, wait_until

HANDLER = Party(name="Luc Peeters", email="luc.peeters@ombudsdesk.localhost", language="fr")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_daily_digest_lists_open_files_once_per_day(nats_server, database_url, smtp_sink: SmtpSink, tmp_path):
    clock = Clock(datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc))  # 07:00 in Brussels
    settings = notifier_settings(nats_server.url, database_url, smtp_sink, tmp_path, deadline_digest_hour=8,
                                 supervisor_address=None)
    service = build_notifier(settings, clock=clock)
    await service.start()
    try:
        await publish(
            nats_server.url,
            DeadlineApproaching(complaint_number="MED-2026-00011", deadline_kind="answer", due=date(2026, 11, 27),
                                handler=HANDLER, lead_days=3, subject_line="Allocations"),
            DeadlineMissed(complaint_number="MED-2026-00012", deadline_kind="answer", due=date(2026, 11, 23),
                           handler=HANDLER),
        )
        await wait_until(lambda: len(smtp_sink.messages) >= 2, what="the two immediate warnings")
        assert service.digest is not None
        assert await service.digest.run_once() == 0  # before 08:00 local time

        clock.now = datetime(2026, 11, 24, 7, 30, tzinfo=timezone.utc)  # 08:30 in Brussels
        assert await service.digest.run_once() == 1
        assert await service.digest.run_once() == 0  # once a day, whatever the number of checks
        await wait_until(lambda: len(smtp_sink.messages) >= 3, what="the digest")
        digest = smtp_sink.messages[2]
        assert digest["Subject"] == "Vos dossiers à risque au 24 novembre 2026 (2)"
        body = digest.get_body(("plain",)).get_content()
        assert "MED-2026-00011" in body and "27 novembre 2026" in body and "MED-2026-00012" in body

        # The final answer to one file takes it out of the next day's digest.
        await publish(nats_server.url, NoticeRequested(
            request_key="answer-11", complaint_number="MED-2026-00011", notice_kind="final_answer",
            recipient=Party(name="Jeanne", email="jeanne@example.org"), context={"answer_text": "Réglé."}))

        async def answered() -> bool:
            return len(await service.outbox.open_risks()) == 1

        await eventually(answered, what="the answered file cleared")
        clock.now += timedelta(days=1)
        assert await service.digest.run_once() == 1
        await wait_until(lambda: len(smtp_sink.messages) >= 5, what="the answer and the second digest")
        second = [mail for mail in smtp_sink.messages if "(1)" in mail["Subject"]]
        assert len(second) == 1 and "MED-2026-00011" not in second[0].get_body(("plain",)).get_content()
    finally:
        await service.stop()
