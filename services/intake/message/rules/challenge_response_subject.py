"""challenge-response-subject: a subject led by a challenge-response system's request ("Please confirm you are
human: …", "Vérifiez votre adresse e-mail : …")."""

from __future__ import annotations

from services.intake.message.automation import challenge_shape
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    return "challenge-response subject" if challenge_shape(facts.folded_subject) else None


RULE = Rule("challenge-response-subject", 610, Outcome.AUTOMATED, "A challenge-response request's subject", check)
