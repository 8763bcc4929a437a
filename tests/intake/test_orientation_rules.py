"""The registry's answer behind the orientation page (`services/registry/public/orientation.py`, pure): which outcome a
description or a theme gets from a small directory and rules written here, the contact details it carries, the
bound on the words, and the shipped example configuration on a few plain cases."""

from __future__ import annotations

import pytest

from services.registry.public.orientation import orient
from services.registry.screening_config import ScreeningConfig
from services.registry.screening_files import load_screening_config
from shared.events import OrientationOutcome, OrientationRequest

RULES = """
self = "us"
redirect_limit = 2
[[themes]]
id = "roads"
label = { fr = "Routes", nl = "Wegen", de = "Straßen", en = "Roads" }
keywords = { fr = ["nid* de poule", "chaussée"], en = ["pothole*"] }
[[themes]]
id = "water"
label = { fr = "Eau", en = "Water" }
keywords = { fr = ["facture d'eau", "compteur d'eau"] }
[[themes]]
id = "bills"
label = { fr = "Factures" }
keywords = { fr = ["facture", "d'eau"] }
[[services]]
id = "roads-agency"
label = { fr = "Agence des routes", nl = "Wegenagentschap", de = "Straßenagentur", en = "Roads agency" }
keywords = { fr = ["agence des routes"] }
"""
DIRECTORY = """
[[ombudsman]]
id = "us"
name = { fr = "Nous" }
keywords = { fr = ["permis de bâtir", "urbanisme"] }
[[ombudsman]]
id = "water-ombudsman"
name = { fr = "Médiateur de l'eau", nl = "Waterombudsman", en = "Water ombudsman" }
website = "https://water.example"
email = "info@water.example"
phone = "+32 2 000 00 00"
address = "Rue de l'Eau 1, 1000 Bruxelles"
source = "https://water.example/contact"
verified = true
keywords = { fr = ["facture d'eau", "compteur d'eau", "distributeur d'eau"] }
[[ombudsman]]
id = "roads-ombudsman"
name = { fr = "Médiateur des routes" }
keywords = { fr = ["nid* de poule", "chaussée", "pothole"] }
[[ombudsman]]
id = "tele"
name = { fr = "Médiateur télécom" }
keywords = { fr = ["opérateur"] }
"""


@pytest.fixture(scope="module")
def config() -> ScreeningConfig:
    return ScreeningConfig.from_toml(RULES, DIRECTORY)


def test_our_words_and_nobody_better_is_competent(config: ScreeningConfig) -> None:
    answer = orient(config, "Mon permis de bâtir traîne depuis un an")
    assert answer.outcome is OrientationOutcome.COMPETENT and answer.ombudsmen == ()
    assert [theme.id for theme in answer.themes] == ["roads", "water", "bills"]  # the choices, always


def test_nothing_of_ours_and_another_ombudsman_is_other_with_its_contact(config: ScreeningConfig) -> None:
    answer = orient(config, "Ma FACTURE D'EAU est fausse et le compteur d'eau aussi")
    assert answer.outcome is OrientationOutcome.OTHER
    [water] = answer.ombudsmen
    assert water.id == "water-ombudsman" and water.names["nl"] == "Waterombudsman"
    assert (water.website, water.email, water.phone, water.verified) == (
        "https://water.example", "info@water.example", "+32 2 000 00 00", True)
    assert answer.theme == "water"


def test_ours_but_another_better_is_unclear_and_the_others_are_bounded_best_first(config: ScreeningConfig) -> None:
    text = "urbanisme ; nid de poule sur la chaussée ; facture d'eau ; compteur d'eau ; distributeur d'eau ; opérateur"
    answer = orient(config, text)
    assert answer.outcome is OrientationOutcome.UNCLEAR
    # A keyword of n words weighs n ("facture d'eau" is three): us 1 (urbanisme); water 9, roads 4, telecom 1 (not
    # better than us): best first, at most `redirect_limit` (2).
    assert [o.id for o in answer.ombudsmen] == ["water-ombudsman", "roads-ombudsman"]


def test_nobody_is_unknown(config: ScreeningConfig) -> None:
    answer = orient(config, "Bonjour, j'ai un problème")
    assert answer.outcome is OrientationOutcome.UNKNOWN and answer.ombudsmen == () and answer.theme is None


def test_a_theme_is_read_by_its_keywords_and_counts_for_us(config: ScreeningConfig) -> None:
    # "roads" is our theme (one for us) but its keywords are the roads ombudsman's (nid* de poule, chaussée,
    # pothole*: 3 and more): somebody better, and we may still be competent.
    roads = orient(config, "", "roads")
    assert roads.outcome is OrientationOutcome.UNCLEAR and roads.theme == "roads"
    assert [o.id for o in roads.ombudsmen] == ["roads-ombudsman"]
    assert orient(config, "", "nonexistent").outcome is OrientationOutcome.UNKNOWN  # an unknown theme is ignored


def test_a_themes_keywords_side_by_side_never_make_a_phrase_neither_is(config: ScreeningConfig) -> None:
    # "facture" and "d'eau" are two keywords of "bills"; read together they would be the water ombudsman's
    # "facture d'eau" (three words, more than our one).
    answer = orient(config, "", "bills")
    assert answer.outcome is OrientationOutcome.COMPETENT and answer.ombudsmen == ()


def test_a_service_of_ours_counts_for_us_and_is_passed_on(config: ScreeningConfig) -> None:
    answer = orient(config, "L'Agence des routes ne répond pas")
    assert answer.outcome is OrientationOutcome.COMPETENT
    assert answer.service["nl"] == "Wegenagentschap"


def test_the_words_are_cut_before_matching(config: ScreeningConfig) -> None:
    beyond = " " * OrientationRequest.MAX_DESCRIPTION + "facture d'eau"
    assert orient(config, beyond).outcome is OrientationOutcome.UNKNOWN
    assert orient(config, beyond.strip()).outcome is OrientationOutcome.OTHER


def test_without_our_own_entry_we_never_turn_a_citizen_away() -> None:
    config = ScreeningConfig.from_toml(RULES.replace('self = "us"', ""), DIRECTORY)
    assert orient(config, "facture d'eau").outcome is OrientationOutcome.UNCLEAR


@pytest.mark.parametrize(("description", "outcome", "proposed"), [
    ("Ma pension de retraite n'est pas versée par le Service fédéral des Pensions", "other", "be-pensions"),
    ("Mon avertissement-extrait de rôle du SPF Finances est faux : impôt trop élevé", "competent", None),
    ("Mijn treinabonnement bij de NMBS werd niet terugbetaald", "other", "be-rail"),
    ("Bonjour", "unknown", None),
])
def test_the_shipped_example_configuration(description: str, outcome: str, proposed: str | None) -> None:
    answer = orient(load_screening_config(), description)
    assert answer.outcome.value == outcome
    assert (answer.ombudsmen[0].id if answer.ombudsmen else None) == proposed
