"""What staff read in the back office, in their language: French first, then Dutch, German and English.

Every `messages/*.toml` file holds keys of one page family, each key a table of the four languages:

    ["register.title"]
    fr = "Registre des plaintes"
    nl = "Klachtenregister"
    de = "Beschwerderegister"
    en = "Register of complaints"

Parameters use `str.format` names (`{count}`). A key defined twice, or missing a language, is an error at load
(the test suite loads them all); an unknown key at run time shows the key itself, never a crash.
Closed vocabularies of the register (statuses, kinds, outcomes...) come from `services.registry.vocabulary`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from services.registry.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

MESSAGES_DIR = Path(__file__).parent / "messages"


class CatalogError(ValueError):
    pass


@lru_cache(maxsize=1)
def catalog() -> Mapping[str, Mapping[str, str]]:
    merged: dict[str, Mapping[str, str]] = {}
    for path in sorted(MESSAGES_DIR.glob("*.toml")):
        with path.open("rb") as handle:
            entries = tomllib.load(handle)
        for key, languages in entries.items():
            if key in merged:
                raise CatalogError(f"{path.name}: key {key!r} is defined in another messages file too")
            if not isinstance(languages, dict) or set(languages) != set(LANGUAGES):
                raise CatalogError(f"{path.name}: key {key!r} needs exactly the languages {', '.join(LANGUAGES)}")
            merged[key] = {language: str(text) for language, text in languages.items()}
    return merged


def language_of(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT_LANGUAGE


def translate(key: str, language: str, /, **params: object) -> str:
    texts = catalog().get(key)
    if texts is None:
        return key
    text = texts[language_of(language)]
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return text


class Translator:
    """`t("register.title")` in templates and pages, bound to one language."""

    def __init__(self, language: str) -> None:
        self.language = language_of(language)

    def __call__(self, key: str, /, **params: object) -> str:
        return translate(key, self.language, **params)
