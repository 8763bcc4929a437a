"""challenge-response-domain: challenge-response systems (Boxbe, SpamArrest, Bluebottle...) send their challenges
from their own domain."""

from __future__ import annotations

from services.intake.message.automation import CHALLENGE_DOMAINS
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    domain = (facts.sender.email or "").partition("@")[2]
    if domain and any(domain == known or domain.endswith("." + known) for known in CHALLENGE_DOMAINS):
        return f"challenge-response ({domain})"
    return None


RULE = Rule("challenge-response-domain", 580, Outcome.AUTOMATED, "A challenge-response system's domain", check)
