"""delivery-notice-subject: a delivery notice's subject ("Delivery delayed", "Avis de non-remise",
"Unzustellbar"...) on a message without any sender address."""

from __future__ import annotations

from services.intake.message.automation import delivery_notice_subject
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    if not facts.sender.email and delivery_notice_subject(facts.folded_subject):
        return "delivery notice subject without a sender"
    return None


RULE = Rule("delivery-notice-subject", 630, Outcome.AUTOMATED, "A delivery notice's subject without a sender",
            check)
