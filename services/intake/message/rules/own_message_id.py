"""own-message-id: our own outgoing mail coming back (its Message-ID ends in our domain, RFC 5322 3.6.4): never
answer ourselves."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    own_domain = facts.context.own_domain
    if facts.message_id and own_domain and facts.message_id.lower().endswith("@" + own_domain.lower()):
        return "our own outgoing mail"
    return None


RULE = Rule("own-message-id", 550, Outcome.AUTOMATED, "A Message-ID in our own domain", check)
