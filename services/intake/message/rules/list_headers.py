"""list-headers: a mailing list's message (RFC 2369 List-Unsubscribe and the other List-* fields, RFC 2919
List-Id)."""

from __future__ import annotations

from services.intake.message.automation import LIST_HEADERS
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    return next((f"mailing list ({name})" for name in LIST_HEADERS if facts.headers.get(name, "").strip()), None)


RULE = Rule("list-headers", 520, Outcome.AUTOMATED, "List-Id / List-* headers of a mailing list (RFC 2369, 2919)",
            check)
