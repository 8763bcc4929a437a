"""The shipped ombudsman directory (issue 15): every entry says where its contact details were checked and whether
they were; the bodies of the seed portal ombudsman.be that were missing are there; staff see the flag."""

from __future__ import annotations

import tomllib
from pathlib import Path

from services.registry.backoffice.pages.file_view import directory_matches
from services.registry.backoffice.rendering import environment
from services.registry.backoffice.i18n import Translator
from services.registry.screening_config import Directory
from services.registry.screening_files import load_screening_config

EXAMPLE = Path(__file__).parents[2] / "services" / "registry" / "directory.example.toml"


def test_every_entry_has_a_source_and_an_explicit_verified_flag():
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["ombudsman"]
    missing = [entry["id"] for entry in raw if not str(entry.get("source", "")).strip()]
    unflagged = [entry["id"] for entry in raw if not isinstance(entry.get("verified"), bool)]
    assert missing == [] and unflagged == []
    # A verified entry names a checkable URL (the stored page it was checked against).
    assert all("https://" in entry["source"] for entry in raw if entry["verified"])


def test_the_missing_bodies_of_the_seed_portal_are_in_the_directory():
    directory = Directory.from_toml(EXAMPLE.read_text(encoding="utf-8"), "directory.example.toml")
    names = {entry.id: entry.name("fr") for entry in directory.ombudsman}
    assert names["be-children-rights-fwb"] == "Délégué général aux droits de l'enfant"
    assert directory.ombudsman[[e.id for e in directory.ombudsman].index("be-children-rights-flanders")].name(
        "nl") == "Kinderrechtencommissariaat"
    assert "Comité P" in names["be-comite-p"]
    assert names["be-consumer"] == "Service de médiation pour le consommateur"


def test_staff_see_whether_an_entry_was_verified():
    screening = load_screening_config(None)
    found = {entry["id"]: entry for entry in directory_matches(screening, "", "fr", limit=100)}
    assert found["be-comite-p"]["verified"] is True and found["be-pensions"]["verified"] is False
    template = environment.get_template("file/_directory.html")
    html = template.render(t=Translator("fr"), base="/backoffice", view={"number": "MED-2026-00001"},
                           directory=[found["be-pensions"], found["be-comite-p"]])
    assert html.count(Translator("fr")("directory.unverified")) == 1
    assert html.count(Translator("fr")("directory.verified")) == 1
    assert "comitep.be/questions" in html
