"""multipart-report: any machine report (RFC 6522 multipart/report of any report-type: read receipts, abuse
feedback, TLS reports...), read by reports.py. A machine's mail: never answered."""

from __future__ import annotations

from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    return facts.report.reason if facts.report is not None else None


RULE = Rule("multipart-report", 200, Outcome.AUTOMATED, "A machine report (RFC 6522, RFC 8098, RFC 5965, RFC 8460)",
            check)
