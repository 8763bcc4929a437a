"""The loop that empties the outbox through the SMTP relay and reports each outcome on JetStream.

Transient failures (4xx, connection errors, a relay refusing *us* with a 5xx outside RCPT TO, any unexpected error)
are retried with exponential backoff until the notice's give-up time; a 5xx refusal of the recipient at RCPT TO fails
the notice at once and flags the address so staff can write by post. The
`NotificationSent` / `NotificationFailed` event is published after the outcome is committed and republished until
JetStream has it (its `Nats-Msg-Id` makes repeats harmless).

A notice that carried a citizen's personal link is stored without it by the statement that records it sent (or
failed for good: `Outbox.mark_failed`): the relay has it, and a retry is the only reader that needed it
(`citizen_link.redacted`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.notifier.headers import UnsafeAddress
from services.notifier.mail import Sender, build_email
from services.notifier.models import Notice, NoticeStatus
from services.notifier.notices import STAFF_KINDS
from services.notifier.outbox import Outbox
from services.notifier.reasons import ReasonCode, reason
from services.notifier.relay import PermanentDeliveryError, RelayFault, SmtpRelay, TransientDeliveryError
from services.notifier.settings import NotifierSettings
from shared import observability
from shared.events import Event, NotificationFailed, NotificationSent

log = structlog.get_logger(__name__)

Publisher = Callable[[Event], Awaitable[object]]
BATCH = 50
REPORT_EVERY_SECONDS = 0.5


def postal_recipient(notice: Notice) -> str:
    """How a posted letter's recipient reads in the register: name and address on one line (nothing once erased)."""
    lines = [line.strip() for line in (notice.recipient_name, *notice.postal_address.splitlines()) if line.strip()]
    return "post: " + ", ".join(lines) if lines else ""


def retry_delay(attempt: int, first: float, longest: float) -> float:
    return min(first * 2 ** max(attempt - 1, 0), longest)


class Dispatcher:
    def __init__(
        self,
        settings: NotifierSettings,
        outbox: Outbox,
        relay: SmtpRelay,
        publish: Publisher,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.relay = relay
        self.publish = publish
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._searched_at = float("-inf")  # when the outbox was last searched for unpublished outcomes

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier-dispatcher")

    @property
    def running(self) -> bool:
        """The loop runs (liveness: False once it ended other than by `stop`)."""
        return self._task is not None and not self._task.done()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the notice being sent finish (cancelling between the relay's 250 and our commit would send it again
        after the lease), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, grace_seconds)
            except asyncio.TimeoutError:
                log.warning("dispatcher.stop_timeout")
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.relay.close()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a database or NATS outage must not end the loop
                log.error("dispatcher.error", error=repr(error))
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.relay_poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def drain(self) -> int:
        """Send everything due now; returns how many notices were attempted.

        Per claimed batch: each notice sent and its outcome committed on its own (at most one notice in doubt at a
        `kill -9`), then the batch's outcomes published together from memory and marked in one statement. The
        outbox is searched for other unpublished outcomes (a bounce, a notice failed at once, one printed, one whose
        publish failed) when the drain found nothing to send, and every REPORT_EVERY_SECONDS under load."""
        attempted = 0
        lease = timedelta(seconds=self.settings.relay_lease_seconds)
        while not self._stopping:
            claimed_at = self.clock()
            notices = await self.outbox.claim_due(claimed_at, BATCH, lease)
            if not notices:
                break
            settled: list[tuple[int, Event]] = []
            for notice in notices:
                # Stopping, or a slow relay ate half the lease: give the rest back now, before another relay could
                # take them over while they are still in our hands.
                if self._stopping or self.clock() - claimed_at > lease / 2:
                    await self.outbox.release(notice)
                    continue
                outcome = await self.deliver(notice)
                attempted += 1
                if outcome is not None:
                    settled.append((notice.id, outcome))
            await self._report(settled)
            # Under steady load the queue may never run empty: search as we go, at most every REPORT_EVERY seconds.
            if self._search_due():
                await self.publish_outcomes()
        if not attempted or self._search_due():
            await self.publish_outcomes()
        return attempted

    def _search_due(self) -> bool:
        return time.monotonic() - self._searched_at >= REPORT_EVERY_SECONDS

    async def deliver(self, notice: Notice) -> Event | None:
        """Send one claimed notice and commit its outcome; returns the event reporting it, None when it is retried."""
        log_ = log.bind(complaint_number=notice.complaint_number, notification_key=notice.notification_key)
        now = self.clock()
        try:
            message = build_email(
                sender=Sender(self.settings.sender_address,
                              self.settings.localized("organisation_name", notice.language)),
                recipient=notice.recipient,
                recipient_name=notice.recipient_name,
                subject=notice.subject,
                text=notice.body_text,
                html=notice.body_html,
                message_id=notice.message_id,
                language=notice.language,
                date=now,
                in_reply_to=notice.in_reply_to,
                references=tuple(notice.references.split()),
                auto_submitted="auto-generated" if notice.notice_kind in STAFF_KINDS else "auto-replied",
            )
            await self.relay.send(message, self.settings.sender_address, notice.recipient)
        except UnsafeAddress as error:
            stored = reason(ReasonCode.UNSAFE_ADDRESS, str(error))
            if await self.outbox.mark_failed(notice.id, stored):
                return _erased_meanwhile(notice, log_)
            observability.notice_settled(notice.notice_kind, "failed")
            log_.error("notice.failed", reason=str(error))
            return failed_event(notice, stored)
        except PermanentDeliveryError as error:
            # Only a 5xx at RCPT TO gets here: the recipient's address itself is refused.
            stored = reason(ReasonCode.RECIPIENT_REFUSED, error.reason)
            if await self.outbox.mark_failed(notice.id, stored):
                return _erased_meanwhile(notice, log_)  # and its address is not flagged: it was erased
            await self.outbox.flag_recipient(notice.id, stored, now)
            observability.notice_settled(notice.notice_kind, "failed")
            log_.error("notice.refused", reason=error.reason)
            return failed_event(notice, stored)
        except RelayFault as error:
            # Our relay refuses us (credentials, sender, policy): staff must fix the set-up; the citizen's address
            # is not at fault, so retry until the deadline and never flag it.
            log_.error("relay.refuses_us", code=error.code, reason=error.reason)
            return await self._retry_or_give_up(notice, now, ReasonCode.RELAY_REFUSED, error.reason, log_)
        except TransientDeliveryError as error:
            return await self._retry_or_give_up(notice, now, ReasonCode.RELAY_DEFERRED, error.reason, log_)
        except Exception as error:  # noqa: BLE001 - any other fault (a bad stored value, a database error) must
            # neither end the drain nor leave the notice SENDING uncounted: it is retried, then given up.
            log_.error("notice.unexpected_error", error=repr(error))
            return await self._retry_or_give_up(notice, now, ReasonCode.INTERNAL_ERROR, type(error).__name__, log_)
        # Committed right after the relay's 250, one notice at a time: a kill -9 leaves at most this one in doubt.
        erased = await self._commit_sent(notice, now)
        observability.notice_settled(notice.notice_kind, "sent")
        log_.info("notice.sent", notice_kind=notice.notice_kind)
        # Erased while the relay talked: it went out (nothing can call a mail back); the register learns that, but
        # not the address and subject this dispatcher still holds.
        return erased_outcome(sent_event(notice)) if erased else sent_event(notice)

    async def _commit_sent(self, notice: Notice, now: datetime) -> bool:
        """Record the relay's 250, retried through a database outage (a PostgreSQL restart takes seconds) for as
        long as half the lease keeps the notice ours: given up at once, the notice would be sent again when its lease
        ran out — a duplicate acknowledgment for every notice in hand at each restart (issue 14's faults)."""
        deadline = time.monotonic() + self.settings.relay_lease_seconds / 2
        delay = 0.2
        while True:
            try:
                return await self.outbox.mark_sent(notice, now)
            except Exception as error:  # noqa: BLE001 - any failure to commit: retried within the lease, then raised
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("notice.sent_commit_retry", notification_key=notice.notification_key,
                            retry_in_seconds=delay, error=repr(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _retry_or_give_up(self, notice: Notice, now: datetime, code: ReasonCode, detail: str,
                                log_: Any) -> Event | None:
        attempt = notice.attempts + 1
        if now >= notice.give_up_at:
            stored = reason(ReasonCode.GAVE_UP, f"{attempt} × {code.value}: {detail}")
            if await self.outbox.mark_failed(notice.id, stored):
                return _erased_meanwhile(notice, log_)
            observability.notice_settled(notice.notice_kind, "failed")
            log_.error("notice.gave_up", attempts=attempt, reason_code=code.value, reason=detail)
            return failed_event(notice, stored)
        delay = retry_delay(attempt, self.settings.relay_retry_first_seconds, self.settings.relay_retry_longest_seconds)
        next_at = min(now + timedelta(seconds=delay), notice.give_up_at)
        if await self.outbox.mark_retry(notice.id, next_at, reason(code, detail)):
            return _erased_meanwhile(notice, log_)
        observability.notice_settled(notice.notice_kind, "retried")
        log_.warning("notice.will_retry", attempt=attempt, retry_in_seconds=delay, reason_code=code.value,
                     reason=detail)
        return None

    async def _report(self, settled: list[tuple[int, Event]]) -> None:
        """Publish the outcomes just committed, all at once (JetStream acknowledges them in parallel), and mark
        those JetStream took in one statement; a failed publish stays for `publish_outcomes`."""
        if not settled:
            return
        results = await asyncio.gather(*(self._publish(event) for _, event in settled))
        published = [notice_id for (notice_id, _), done in zip(settled, results) if done]
        if published:
            await self.outbox.mark_published(published)
        if len(published) < len(settled):
            self._searched_at = float("-inf")  # search the outbox at the end of this drain

    async def publish_outcomes(self) -> None:
        """Publish every outcome committed but not yet reported, oldest first (stops at the first failure)."""
        self._searched_at = time.monotonic()
        published: list[int] = []
        try:
            for notice in await self.outbox.unpublished_outcomes(limit=500):
                if not await self._publish(outcome_event(notice)):
                    break
                published.append(notice.id)
        finally:
            if published:
                await self.outbox.mark_published(published)

    async def _publish(self, event: Event) -> bool:
        try:
            await self.publish(event)
        except Exception as error:  # noqa: BLE001 - NATS down: the outcome stays unpublished, retried later
            log.warning("outcome.publish_failed", notification_key=getattr(event, "notification_key", None),
                        error=repr(error))
            return False
        return True


def _erased_meanwhile(notice: Notice, log_: Any) -> None:
    """A notice whose file was erased while the relay talked: withdrawn (`Outbox._settled`), nothing reported."""
    observability.notice_settled(notice.notice_kind, "suppressed")
    log_.info("notice.erased_while_sending", notice_kind=notice.notice_kind)


def erased_outcome(event: NotificationSent) -> NotificationSent:
    """The report of a notice sent while its file was being erased: that it went out, without whom to or what."""
    return event.model_copy(update={"recipient": "", "subject_line": ""})


def sent_event(notice: Notice) -> NotificationSent:
    return NotificationSent(
        notification_key=notice.notification_key,
        complaint_number=notice.complaint_number,
        notice_kind=notice.notice_kind,
        recipient=notice.recipient or postal_recipient(notice),
        message_id=notice.message_id,
        subject_line=notice.subject,
    )


def failed_event(notice: Notice, stored_reason: str | None) -> NotificationFailed:
    return NotificationFailed(
        notification_key=notice.notification_key,
        complaint_number=notice.complaint_number,
        notice_kind=notice.notice_kind,
        recipient=notice.recipient,
        reason=stored_reason or "failed",
    )


def outcome_event(notice: Notice) -> Event:
    """The event reporting a notice's committed outcome, as read from the outbox."""
    if notice.status in (NoticeStatus.SENT, NoticeStatus.PRINTED):
        return sent_event(notice)
    return failed_event(notice, notice.status_reason)
