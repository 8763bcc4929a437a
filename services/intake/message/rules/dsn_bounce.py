"""dsn-bounce: a permanent delivery failure of one of our mails (RFC 3464 report or a known free-text bounce,
read by bounces.py). It becomes a DeliveryFailed event, never a complaint."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    notice = facts.delivery_notice
    if notice is None or notice.bounce is None:
        return None
    status = notice.bounce.status
    return f"delivery status notification, status {status}" if status else "delivery status notification"


RULE = Rule("dsn-bounce", 100, Outcome.BOUNCE, "A permanent delivery failure (RFC 3464, free-text bounces)", check)
