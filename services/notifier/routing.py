"""How a notice leaves, or why it does not (pure): email, a printed letter, or nothing with a recorded reason code
(`reasons`: staff read it translated)."""

from __future__ import annotations

from dataclasses import dataclass

from services.notifier.models import NoticeChannel, NoticeStatus
from services.notifier.notices import NoticeDraft
from services.notifier.outbox import RecipientFacts
from services.notifier.reasons import ReasonCode, reason
from services.notifier.suppression import SuppressionRules, suppression_reason


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
    follow_ups_per_day: int,
) -> Route:
    if draft.automated:
        # RFC 3834 2: never answer an automatic message, whatever address it came from.
        why = suppression_reason(address or "", rules, automated=True, automated_reason=draft.automated_reason)
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED, why)
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
    if draft.rate_limited and facts.follow_ups_today >= follow_ups_per_day:
        return Route(NoticeChannel.EMAIL, NoticeStatus.SUPPRESSED,
                     reason(ReasonCode.RATE_LIMITED, f"{follow_ups_per_day}/day"))
    return Route(NoticeChannel.EMAIL, NoticeStatus.PENDING)
