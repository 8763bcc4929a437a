"""The chain of rules (pure): every `RULE` of this package, in order, and the record of those that hit.

Rules are found by listing the package's modules (those whose name does not start with "_"), as Mailman finds its
rules by scanning its rules package: adding a rule is adding a module, nothing else to update. Names and places
must be unique; a clash fails at import, so a test run catches it at once.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType

from services.intake.message.rules._rule import Facts, Outcome, Rule
from shared.events import RuleHit


def discover(package: ModuleType) -> tuple[Rule, ...]:
    """Every `RULE` defined by the public modules of `package`, in chain order."""
    rules: list[Rule] = []
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):
            continue
        rule = getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "RULE", None)
        if not isinstance(rule, Rule):
            raise TypeError(f"{package.__name__}.{module.name} defines no RULE")
        rules.append(rule)
    for attribute in ("name", "order"):
        values = [getattr(rule, attribute) for rule in rules]
        repeated = sorted({str(value) for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"rules with the same {attribute}: {', '.join(repeated)}")
    return tuple(sorted(rules, key=lambda rule: rule.order))


def run_chain(facts: Facts, rules: Iterable[Rule]) -> tuple[RuleHit, ...]:
    """The hits, in chain order. The first hit of a kind (bounce, automated, forward) decides the kind; rules are
    then skipped as each says (`Rule.skipped_after`)."""
    hits: list[RuleHit] = []
    decided: Outcome | None = None
    for rule in rules:
        if rule.skipped_after(decided):
            continue
        why = rule.check(facts)
        if why is None:
            continue
        hits.append(RuleHit(rule=rule.name, outcome=rule.outcome.value, why=why))
        if rule.outcome.decides_kind:
            decided = rule.outcome
    return tuple(hits)
