"""auto-reply-to-our-mail: a weak signal (out-of-office words anywhere in the subject, a challenge phrase) counts
when the message answers one of our notices (In-Reply-To / References in our domain, RFC 5322 3.6.4): an
auto-responder answering our acknowledgment."""

from __future__ import annotations

from services.intake.message.automation import answers_our_mail, weak_signals
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    weak = weak_signals(facts.folded_subject, facts.text)
    if weak and answers_our_mail(facts.headers, facts.context.own_domain):
        return f"{weak[0]}, in reply to our mail"
    return None


RULE = Rule("auto-reply-to-our-mail", 620, Outcome.AUTOMATED, "Auto-reply words in an answer to our mail", check)
