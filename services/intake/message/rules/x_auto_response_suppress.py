"""x-auto-response-suppress: the writer asks for no automatic reply ([MS-OXCMAIL] 2.2.3.2.14). A person's mail,
registered as any other; only our acknowledgment is not sent. On a staff forward the header is the staff
member's, not the citizen's, so the rule does not run after staff-forward."""

from __future__ import annotations

from services.intake.message.automation import acknowledgment_suppression
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    return acknowledgment_suppression(facts.headers)


RULE = Rule("x-auto-response-suppress", 900, Outcome.ACKNOWLEDGMENT_SUPPRESSED,
            "X-Auto-Response-Suppress refuses automatic replies", check, not_after=frozenset({Outcome.FORWARD}))
