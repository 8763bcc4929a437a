"""How a notice leaves, or why it does not (pure): email, a printed letter, or nothing with a recorded reason code
(`reasons`: staff read it translated).

Never sent: an answer to a machine (RFC 3834), an acknowledgment intake said not to send, a notice to our own, staff
or machine addresses, and a notice beyond its kind's limit per recipient (`NoticeLimits`).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.notifier.models import NoticeChannel, NoticeStatus
from services.notifier.notices import NoticeDraft, NoticeKind
from services.notifier.outbox import RecipientFacts
from services.notifier.reasons import ReasonCode, reason
from services.notifier.suppression import SuppressionRules, suppression_reason


@dataclass(frozen=True)
class NoticeLimits:
    """How many notices of a rate-limited kind one address gets: follow-up confirmations per local day,
    acknowledgments per 24 hours."""

    follow_ups_per_day: int = 1
    acknowledgments_per_24_hours: int = 5

    def of(self, draft: NoticeDraft) -> tuple[int, ReasonCode, str] | None:
        """The limit of this draft's kind, the reason a notice beyond it is suppressed for, and its detail."""
        if draft.limit_window is None:
            return None
        if draft.kind is NoticeKind.ACKNOWLEDGMENT:
            return self.acknowledgments_per_24_hours, ReasonCode.ACKNOWLEDGMENT_LIMIT, \
                f"{self.acknowledgments_per_24_hours}/24h"
        return self.follow_ups_per_day, ReasonCode.RATE_LIMITED, f"{self.follow_ups_per_day}/day"


@dataclass(frozen=True)
class Route:
    channel: NoticeChannel
    status: NoticeStatus
    reason: str | None = None


def route_notice(
    draft: NoticeDraft,
    address: str | None,
    facts: RecipientFacts,
    rules: SuppressionRules,
    limits: NoticeLimits,
) -> Route:
    if draft.automated:
        # RFC 3834 2: never answer an automatic message, whatever address it came from.
        why = suppression_reason(address or "", rules, automated=True, automated_reason=draft.automated_reason)
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED, why)
    if draft.acknowledgment_suppressed:
        # A person wrote, but intake decided no automatic reply goes out (X-Auto-Response-Suppress, its own limit).
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED,
                     reason(ReasonCode.ACKNOWLEDGMENT_SUPPRESSED, draft.acknowledgment_suppressed))
    letter_possible = draft.for_citizen and bool(draft.postal_address and draft.postal_address.strip())
    if not address:
        if letter_possible:
            return Route(NoticeChannel.LETTER, NoticeStatus.QUEUED, reason(ReasonCode.NO_EMAIL_ADDRESS))
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED, reason(ReasonCode.NO_USABLE_ADDRESS))
    why = suppression_reason(address, rules, citizen_notice=draft.for_citizen)
    if why:
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED, why)
    if facts.flagged_reason:
        if letter_possible:
            return Route(NoticeChannel.LETTER, NoticeStatus.QUEUED,
                         reason(ReasonCode.EMAIL_UNDELIVERABLE, facts.flagged_reason))
        return Route(NoticeChannel.EMAIL, NoticeStatus.FAILED, reason(ReasonCode.ADDRESS_FLAGGED, facts.flagged_reason))
    limit = limits.of(draft)
    if limit is not None and facts.recent >= limit[0]:
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED, reason(limit[1], limit[2]))
    return Route(NoticeChannel.EMAIL, NoticeStatus.PENDING)
