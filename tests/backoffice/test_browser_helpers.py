"""The browser-test helpers themselves: the accessibility check fails on a serious violation, screenshots go where
they are asked to. Synchronous (Playwright's sync API, see conftest)."""

from __future__ import annotations

import pytest

from tests.backoffice import conftest
from tests.backoffice.helpers import assert_accessible

CLEAN = ('<!doctype html><html lang="fr"><head><title>Test</title></head><body><main><h1>Registre</h1>'
         '<label for="q">Rechercher</label><input id="q" type="search"></main></body></html>')


def test_the_accessibility_check_fails_on_serious_violations_and_names_them(page):
    page.set_content(CLEAN)
    assert_accessible(page)
    page.set_content(CLEAN.replace('<label for="q">Rechercher</label>', '<img src="plan.png">'))
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page)
    assert "image-alt (critical)" in str(failure.value) and "label (critical)" in str(failure.value)
    assert "img" in str(failure.value)  # where: the element's selector


def test_screenshots_go_to_the_docs_only_when_asked(page, tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "DOCS_SCREENSHOTS", tmp_path / "docs" / "screenshots")
    monkeypatch.delenv(conftest.SCREENSHOTS_ENV, raising=False)
    assert conftest.screenshots_dir(tmp_path / "test") == tmp_path / "test" / "screenshots"
    monkeypatch.setenv(conftest.SCREENSHOTS_ENV, "docs")
    assert conftest.screenshots_dir(tmp_path / "test") == tmp_path / "docs" / "screenshots"
    page.set_content(CLEAN)
    take = conftest.screenshot_taker(conftest.screenshots_dir(tmp_path / "test"))
    path = take(page, "register")
    assert path == tmp_path / "docs" / "screenshots" / "register.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        take(page, "../escape")
