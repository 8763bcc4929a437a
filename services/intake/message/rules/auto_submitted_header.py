"""auto-submitted-header: RFC 3834 5.1 `Auto-Submitted` with any value but `no` (auto-replied, auto-generated,
auto-notified): the machine says it wrote the message."""

from __future__ import annotations

from services.intake.message.regex_bounds import bounded_line
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    value = facts.headers.get("auto-submitted", "").strip().lower()
    if value and not value.startswith("no"):
        return f"Auto-Submitted: {bounded_line(value.split(';')[0], 60)}"
    return None


RULE = Rule("auto-submitted-header", 500, Outcome.AUTOMATED, "Auto-Submitted other than no (RFC 3834)", check)
