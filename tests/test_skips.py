"""Every skip goes through `tests.conftest.require_or_skip`, which fails instead of skipping when `CI=true`: CI must
prove every storage path and every real part, and a skip written any other way would hide a missing one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import conftest

TESTS = Path(__file__).resolve().parent
SKIPPING = {"skip", "skipif", "importorskip"}


def skips_outside_the_helper(source: str, *, helper_here: bool = False) -> list[tuple[int, str]]:
    """(line, name) of every skip in `source`, leaving out the body of `require_or_skip` when it is defined here."""
    tree = ast.parse(source)
    allowed: set[int] = set()
    if helper_here:
        helper = next(node for node in tree.body
                      if isinstance(node, ast.FunctionDef) and node.name == "require_or_skip")
        allowed = {id(node) for node in ast.walk(helper)}
    found = []
    for node in ast.walk(tree):
        # pytest.skip(...), pytest.importorskip(...), @pytest.mark.skip, @pytest.mark.skipif(...), a bare skip(...)
        named = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if named in SKIPPING and id(node) not in allowed:
            found.append((node.lineno, named))
        if isinstance(node, ast.ImportFrom) and node.module == "pytest":
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name in SKIPPING)
    return sorted(found)


def test_no_test_skips_except_through_require_or_skip():
    found = [f"{path.relative_to(TESTS.parent)}:{line}: {name}"
             # This file only names pytest.skip.Exception to catch it: it never skips.
             for path in sorted(TESTS.rglob("*.py")) if path != Path(__file__).resolve()
             for line, name in skips_outside_the_helper(path.read_text(encoding="utf-8"),
                                                        helper_here=path == TESTS / "conftest.py")]
    assert not found, "skip through tests.conftest.require_or_skip instead:\n" + "\n".join(found)


def test_the_guard_sees_every_form_of_skip():
    source = ("import pytest\nfrom pytest import importorskip\n"
              "@pytest.mark.skip\ndef a(): pytest.skip('x')\n"
              "@pytest.mark.skipif(True, reason='r')\ndef b(): importorskip('yaml')\n")
    assert skips_outside_the_helper(source) == [
        (2, "importorskip"), (3, "skip"), (4, "skip"), (5, "skipif"), (6, "importorskip")]


def test_the_helper_itself_is_the_one_allowed_skip():
    source = (TESTS / "conftest.py").read_text(encoding="utf-8")
    assert skips_outside_the_helper(source, helper_here=False)  # it does skip...
    assert skips_outside_the_helper(source, helper_here=True) == []  # ...and nothing else in conftest does


def test_require_or_skip_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        conftest.require_or_skip("no PostgreSQL")
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL"):
        conftest.require_or_skip("no PostgreSQL")
