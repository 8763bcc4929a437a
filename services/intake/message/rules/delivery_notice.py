"""delivery-notice: a delivery notification that is no permanent failure (a delay, a warning, a relay notice),
read by bounces.py. A machine's mail: never answered, and no failure recorded."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    notice = facts.delivery_notice
    return notice.reason if notice is not None and notice.bounce is None else None


RULE = Rule("delivery-notice", 300, Outcome.AUTOMATED, "A delivery delay or warning notice (RFC 3464)", check)
