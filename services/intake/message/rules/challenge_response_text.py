"""challenge-response-text: a first line names a challenge-response product ("This account is protected by
Bluebottle", "I use TMDA"): that product's signature. Quoted lines are never read."""

from __future__ import annotations

from services.intake.message.automation import challenge_product_sentence
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    if challenge_product_sentence(facts.text):
        return "challenge-response text (a challenge-response product's own sentence)"
    return None


RULE = Rule("challenge-response-text", 590, Outcome.AUTOMATED, "A challenge-response product's own sentence", check)
