"""vacation-subject: a subject shaped as an out-of-office reply's, in FR/NL/DE/EN ("Réponse automatique : …",
"Out of Office: …", "Afwezig: …", "Abwesenheitsnotiz: …", "Absent du bureau jusqu'au …", Lotus Notes' "AUTO: …").
The words alone are not enough: citizens write them too (see automation.py)."""

from __future__ import annotations

from services.intake.message.automation import out_of_office_shape
from services.intake.message.rules._rule import Facts, Outcome, Rule


def check(facts: Facts) -> str | None:
    return "out-of-office subject" if out_of_office_shape(facts.folded_subject) else None


RULE = Rule("vacation-subject", 600, Outcome.AUTOMATED, "An out-of-office reply's subject", check)
