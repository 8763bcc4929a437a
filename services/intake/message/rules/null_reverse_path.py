"""null-reverse-path: the null reverse path `<>` of delivery notifications and auto-replies (RFC 5321 4.5.5), in
the SMTP envelope or in the Return-Path the delivering server wrote (RFC 5321 4.4)."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    envelope_sender = facts.context.envelope_sender
    if envelope_sender is not None and envelope_sender.strip("<> ") == "":
        return "null reverse path (a delivery notification or auto-reply)"
    if facts.headers.get("return-path", "").strip().replace(" ", "") == "<>":
        return "null reverse path in Return-Path (a delivery notification or auto-reply)"
    return None


RULE = Rule("null-reverse-path", 560, Outcome.AUTOMATED, "MAIL FROM:<> or Return-Path: <>", check)
