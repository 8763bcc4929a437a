"""docs/settings.md is the generated table of every setting: it must list what the code reads, and be current."""

from __future__ import annotations

from pathlib import Path

from ombudsdesk.settings_doc import SETTINGS_CLASSES, render
from shared.settings import ENV_PREFIX

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_settings_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/settings.md is stale: run `.venv/bin/python -m ombudsdesk.settings_doc > docs/settings.md`")


def test_every_setting_is_explained():
    rendered = render()
    unexplained = [line for line in rendered.splitlines() if line.startswith(f"| `{ENV_PREFIX}") and line.endswith("|  |")]
    assert unexplained == [], "settings without a comment above their field:\n" + "\n".join(unexplained)
    for settings_class in SETTINGS_CLASSES.values():
        for name in settings_class.model_fields:
            assert f"`{ENV_PREFIX}{name.upper()}`" in rendered
