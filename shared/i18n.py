"""Catalogues of what people read, in their language: French first, then Dutch, German and English.

A catalogue is a folder of `*.toml` files, each holding the keys of one page family, each key a table of the four
languages:

    ["register.title"]
    fr = "Registre des plaintes"
    nl = "Klachtenregister"
    de = "Beschwerderegister"
    en = "Register of complaints"

Parameters use `str.format` names (`{count}`). A key defined twice, or missing a language, is an error at load
(each service's tests load its catalogues whole); an unknown key at run time shows the key itself, never a crash.
The staff back office (registry) and the public pages (intake) each have their own catalogue.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from shared.settings import LANGUAGES

DEFAULT_LANGUAGE = LANGUAGES[0]


class CatalogError(ValueError):
    pass


def language_of(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT_LANGUAGE


class Catalog:
    """The messages of one folder, loaded once, at first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @cached_property
    def entries(self) -> Mapping[str, Mapping[str, str]]:
        merged: dict[str, Mapping[str, str]] = {}
        for path in sorted(self.folder.glob("*.toml")):
            with path.open("rb") as handle:
                entries = tomllib.load(handle)
            for key, languages in entries.items():
                if key in merged:
                    raise CatalogError(f"{path.name}: key {key!r} is defined in another messages file too")
                if not isinstance(languages, dict) or set(languages) != set(LANGUAGES):
                    raise CatalogError(f"{path.name}: key {key!r} needs exactly the languages {', '.join(LANGUAGES)}")
                merged[key] = {language: str(text) for language, text in languages.items()}
        return merged

    def translate(self, key: str, language: str, /, **params: object) -> str:
        texts = self.entries.get(key)
        if texts is None:
            return key
        text = texts[language_of(language)]
        if not params:
            return text
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text

    def translator(self, language: str) -> Translator:
        return Translator(self, language)


class Translator:
    """`t("register.title")` in templates and pages, bound to one language."""

    def __init__(self, catalog: Catalog, language: str) -> None:
        self.catalog = catalog
        self.language = language_of(language)

    def __call__(self, key: str, /, **params: object) -> str:
        return self.catalog.translate(key, self.language, **params)


def preferred_language(accept_language: str | None) -> str | None:
    """The first of our languages in an `Accept-Language` header (RFC 9110 12.5.4), by quality; None if none.

    Bounded: at most 20 entries of a header cut to 500 characters are read (it comes from anyone)."""
    if not accept_language:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language[:500].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().split("-")[0].lower()
        if language in LANGUAGES and quality > 0:
            choices.append((-quality, position, language))
    return min(choices)[2] if choices else None
