"""staff-forward: a staff member forwarded a citizen's mail (attached or inline, forwarding.py). The citizen is
the complainant; whether staff vouch for it is `forward_verified` (docs/security.md)."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    original = facts.forwarded_original
    if original is None:
        return None
    attached = any(embedded.get("From") for embedded in facts.content.embedded)
    return f"mail from staff carrying an original from outside staff ({'attached' if attached else 'inline'})"


RULE = Rule("staff-forward", 400, Outcome.FORWARD, "A citizen's mail forwarded by staff", check)
