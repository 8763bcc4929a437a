"""auto-reply-headers: the non-standard marks auto-responders, Exim bounces (X-Failed-Recipients) and
challenge-response systems put on their mail (X-Autoreply, X-Autorespond, X-Boxbe-Notification...)."""

from __future__ import annotations

from services.intake.message.automation import AUTOREPLY_HEADERS
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    return next((f"auto-reply header {name}" for name in AUTOREPLY_HEADERS if facts.headers.get(name, "").strip()),
                None)


RULE = Rule("auto-reply-headers", 530, Outcome.AUTOMATED, "A well-known auto-responder header", check)
