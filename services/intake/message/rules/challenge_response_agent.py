"""challenge-response-agent: TMDA names itself in `X-Delivery-Agent` on the challenges it sends."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    agent = facts.headers.get("x-delivery-agent", "").strip().lower()
    return "challenge-response (TMDA)" if agent.startswith("tmda") else None


RULE = Rule("challenge-response-agent", 540, Outcome.AUTOMATED, "X-Delivery-Agent: TMDA", check)
