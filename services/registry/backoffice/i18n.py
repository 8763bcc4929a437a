"""What staff read in the back office, in their language: French first, then Dutch, German and English.

Every `messages/*.toml` file holds keys of one page family, each key a table of the four languages (the format and
its checks: `shared.i18n`). Closed vocabularies of the register (statuses, kinds, outcomes...) come from
`services.registry.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared import i18n
from shared.i18n import CatalogError, language_of

__all__ = ["MESSAGES_DIR", "CatalogError", "Translator", "catalog", "language_of", "translate"]

MESSAGES_DIR = Path(__file__).parent / "messages"
CATALOG = i18n.Catalog(MESSAGES_DIR)


def catalog() -> Mapping[str, Mapping[str, str]]:
    return CATALOG.entries


def translate(key: str, language: str, /, **params: object) -> str:
    return CATALOG.translate(key, language, **params)


class Translator(i18n.Translator):
    """`t("register.title")` in templates and pages, bound to one language."""

    def __init__(self, language: str) -> None:
        super().__init__(CATALOG, language)
