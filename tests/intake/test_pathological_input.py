"""Bounded work for any input (issue 10): pathological subjects and bodies of 40 KB parse in time comparable to a
normal complaint of the same size parsed in the same run, a ratio and never an absolute time (the machine is shared).

Before the fix, on this machine: "en congé " * 4,400 in a subject took 1.3 s, a staff forward whose Date was 40,000
letters 16 s, a line of 20,000 dashes 17 s, 40,000 blank lines in a bounce 5.5 s, against 2.5 ms for the normal
40 KB complaint (ratios of 500 to 7,000). A bound of 100 leaves room for a busy machine and for flufl.bounce,
which reads a bounded copy of anything that looks like a bounce (about 50 ms, a constant), while any quadratic
pattern left on these paths still fails it by far. The inputs are those of bench/intake/bench_pathological.py.
"""

from __future__ import annotations

import pytest

from bench.intake.bench_pathological import CASES, best_time, normal_mail
from services.intake.message.understanding import ParseContext

SIZE = 40_000
RATIO_BOUND = 100


@pytest.fixture(scope="module")
def normal_time() -> float:
    return best_time(normal_mail(SIZE), ParseContext(), repeat=5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pathological_input_parses_in_time_comparable_to_a_normal_mail(name, normal_time):
    build, context = CASES[name]
    raw = build(SIZE)
    assert len(raw) >= SIZE
    elapsed = best_time(raw, context, repeat=3)
    ratio = elapsed / normal_time
    assert ratio < RATIO_BOUND, f"{name}: {elapsed * 1000:.1f} ms, {ratio:.0f}x a normal 40 KB mail"

