"""The named rules that tell what kind of message intake took in (pure), as GNU Mailman's rules tell a list what
to do with a post: a bounce, a machine's report, a staff forward, an auto-reply, a mail whose writer asked for no
automatic answer.

Each rule is one module of this package that defines `RULE` (a `Rule`: its name, its place in the chain, what a
hit decides, and the check that says whether it hits and why). `_chain` finds every module here (no list to
update), runs them in order of `order`, and keeps a record of the hits only (`RuleHit`: rule, outcome, why); the
record travels with the message (MessageReceived.rules) and is shown by `register show`, the API and
`intake quarantine show`. A rule is added by adding its module here and one example to tests/intake/test_rules.py,
which fails for a rule without one.
"""

import sys

from services.intake.message.rules._chain import discover, run_chain
from services.intake.message.rules._rule import Facts, Outcome, Rule

# Every rule of this package, in chain order (the rule modules import `_rule`, already loaded above).
CHAIN: tuple[Rule, ...] = discover(sys.modules[__name__])

__all__ = ["CHAIN", "Facts", "Outcome", "Rule", "discover", "run_chain"]
