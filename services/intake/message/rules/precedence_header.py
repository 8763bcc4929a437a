"""precedence-header: `Precedence: bulk/junk/list/auto_reply` (RFC 2076 3.9), which vacation(1) and mailing list
software honour and set."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule

_MACHINE_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def check(facts: Facts) -> str | None:
    value = facts.headers.get("precedence", "").strip().lower()
    return f"Precedence: {value}" if value in _MACHINE_PRECEDENCE else None


RULE = Rule("precedence-header", 510, Outcome.AUTOMATED, "Precedence bulk, junk, list or auto_reply", check)
