"""machine-sender: a sender that is a machine by name (mailer-daemon, postmaster, no-reply, bounces,
notifications...), also when the From header holds no readable address but names one."""

from __future__ import annotations

from services.intake.message.automation import MACHINE_IN_FROM, MACHINE_SENDERS
from services.intake.message.regex_bounds import bounded_line
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    local = (facts.sender.email or "").partition("@")[0]
    if local and MACHINE_SENDERS.match(local):
        return f"machine sender {bounded_line(local, 60)}"
    if not facts.sender.email and MACHINE_IN_FROM.search(bounded_line(facts.headers.get("from", ""))):
        return "machine sender named in an unreadable From"
    return None


RULE = Rule("machine-sender", 570, Outcome.AUTOMATED, "mailer-daemon, postmaster, no-reply and the like", check)
