"""Screening over the shipped example configuration, with realistic texts in French, Dutch, German and English."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from services.registry.screening import (
    ScreeningConfig,
    ScreeningConfigError,
    ScreeningFacts,
    ScreeningInput,
    normalise,
    screen,
)
from services.registry.screening_files import EXAMPLE_DIRECTORY, EXAMPLE_RULES, load_screening_config

RECEIVED = date(2026, 11, 24)


@pytest.fixture(scope="module")
def config() -> ScreeningConfig:
    return load_screening_config()


def complaint(text: str, subject: str = "", **kwargs: object) -> ScreeningInput:
    values: dict = {"received": RECEIVED, "sender_name": "Marie Dubois", "sender_email": "marie.dubois@example.be"}
    values.update(kwargs)
    return ScreeningInput(subject=subject, text=text, **values)


def codes(findings: tuple) -> list[str]:
    return [f.code for f in findings]


def test_french_tax_complaint_is_admissible_and_classified(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint(
            "Madame, Monsieur, le 3 mars 2026 j'ai introduit une réclamation auprès du SPF Finances au sujet de mon "
            "avertissement-extrait de rôle. Malgré deux rappels, je n'ai reçu aucune réponse. C'est inacceptable. "
            "Merci d'avance pour votre aide.",
            subject="Plainte — remboursement d'impôt",
        ),
        config,
    )
    assert proposal.admissible and proposal.proposed_status is None
    assert proposal.reasons == () and proposal.checks == ()
    assert proposal.kind == "complaint"
    assert proposal.theme is not None and proposal.theme.id == "taxation"
    assert proposal.service is not None and proposal.service.id == "fps-finance"
    assert not proposal.route_to_dpo and proposal.redirect == ()


def test_dutch_energy_complaint_is_redirected_to_the_energy_ombudsman(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint(
            "Geachte, mijn energieleverancier stuurde mij een afrekeningsfactuur op basis van een verkeerde meterstand "
            "van mijn digitale meter. Ik heb de klantendienst al meermaals gebeld, zonder resultaat.",
            subject="Klacht over mijn energiefactuur",
            sender_name="Jan Peeters",
            language="nl",
        ),
        config,
    )
    assert codes(proposal.reasons) == ["out_of_competence"]
    assert proposal.proposed_status == "redirected"
    assert proposal.redirect[0].ombudsman.id == "be-energy"
    best = proposal.to_dict()["redirect"][0]
    assert best["name"] == "Ombudsdienst voor Energie"
    assert best["contact"]["website"].startswith("https://")


def test_german_pension_complaint_is_redirected(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint(
            "Sehr geehrte Damen und Herren, meine Ruhestandspension wurde vom Föderalen Pensionsdienst falsch "
            "berechnet. Ich habe mehrmals geschrieben und keine Antwort erhalten.",
            subject="Beschwerde",
            sender_name="Anna Schmitz",
            language="de",
        ),
        config,
    )
    assert codes(proposal.reasons) == ["out_of_competence"]
    assert proposal.redirect[0].ombudsman.id == "be-pensions"
    assert proposal.to_dict()["redirect"][0]["name"] == "Ombudsdienst für Pensionen"
    assert proposal.theme is not None and proposal.theme.id == "pensions"
    assert proposal.kind == "complaint"


def test_english_compliment_is_never_inadmissible(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint(
            "I would like to thank the staff of the Immigration Office in Brussels: my residence permit was renewed "
            "in two weeks. Excellent service!",
            sender_name="",
            sender_email=None,
            language="en",
        ),
        config,
    )
    assert proposal.kind == "compliment"
    assert proposal.admissible and proposal.checks == ()
    assert proposal.service is not None and proposal.service.id == "immigration-office"
    assert proposal.theme is not None and proposal.theme.id == "migration"


def test_german_question_and_english_suggestion(config: ScreeningConfig) -> None:
    question = screen(
        complaint("Guten Tag, können Sie mir sagen, an wen muss ich mich wenden, um mein Visum zu verlängern?"),
        config,
    )
    assert question.kind == "question"
    suggestion = screen(
        complaint(
            "I suggest that the FPS Finance publishes the tax return deadlines in English too; it would be useful "
            "for the many residents who do not read French or Dutch."
        ),
        config,
    )
    assert suggestion.kind == "suggestion"
    assert suggestion.theme is not None and suggestion.theme.id == "taxation"


def test_thanks_in_a_complaint_do_not_make_it_a_compliment(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint(
            "Je tiens à remercier votre service pour sa réponse, mais ma plainte contre l'Office des étrangers "
            "reste entière : toujours pas de décision sur mon regroupement familial, c'est injuste."
        ),
        config,
    )
    assert proposal.kind == "complaint"


class TestAnonymous:
    def test_anonymous_name(self, config: ScreeningConfig) -> None:
        proposal = screen(
            complaint("Plainte contre le SPF Finances, j'ai écrit deux fois.", sender_name="ANONYME"), config
        )
        assert codes(proposal.reasons) == ["anonymous"]
        assert proposal.reasons[0].evidence == ("anonyme",)
        assert proposal.proposed_status == "inadmissible"

    def test_no_way_to_identify(self, config: ScreeningConfig) -> None:
        proposal = screen(
            complaint("Klacht tegen de FOD Financiën, ik heb geschreven.", sender_name="Jan", sender_email=None), config
        )
        assert codes(proposal.reasons) == ["anonymous"]

    def test_postal_address_identifies(self, config: ScreeningConfig) -> None:
        proposal = screen(
            complaint(
                "Beschwerde gegen den FÖD Finanzen: Steuerbescheid falsch, keine Antwort.",
                sender_name="Karl Meyer",
                sender_email=None,
                postal_address="Kirchstraße 1, 4700 Eupen",
            ),
            config,
        )
        assert proposal.admissible

    def test_email_without_name_is_a_check(self, config: ScreeningConfig) -> None:
        proposal = screen(
            complaint("Complaint about my tax return, I called them twice: no answer.", sender_name=""), config
        )
        assert proposal.admissible
        assert codes(proposal.checks) == ["identity_to_verify"]


class TestFactsAge:
    text = "Plainte contre le SPF Finances au sujet de mon impôt, j'ai écrit au service."

    def test_old_facts_without_a_step(self, config: ScreeningConfig) -> None:
        proposal = screen(complaint(self.text, facts=ScreeningFacts(facts_date=date(2025, 6, 1))), config)
        assert codes(proposal.reasons) == ["facts_too_old"]
        assert "2025-06-01" in proposal.reasons[0].detail

    def test_recent_step_keeps_old_facts_admissible(self, config: ScreeningConfig) -> None:
        stated = ScreeningFacts(facts_date=date(2024, 6, 1), last_step_date=date(2026, 3, 1))
        proposal = screen(complaint(self.text, facts=stated), config)
        assert proposal.admissible

    def test_old_step_does_not(self, config: ScreeningConfig) -> None:
        stated = ScreeningFacts(facts_date=date(2024, 6, 1), last_step_date=date(2025, 1, 1))
        proposal = screen(complaint(self.text, facts=stated), config)
        assert codes(proposal.reasons) == ["facts_too_old"]

    def test_boundary(self, config: ScreeningConfig) -> None:
        # 365 days before 24 Nov 2026 is 24 Nov 2025: on the limit is still admissible, the day before is not.
        assert screen(complaint(self.text, facts=ScreeningFacts(facts_date=date(2025, 11, 24))), config).admissible
        assert not screen(complaint(self.text, facts=ScreeningFacts(facts_date=date(2025, 11, 23))), config).admissible

    def test_years_in_the_text_raise_a_check(self, config: ScreeningConfig) -> None:
        old = screen(complaint(self.text + " Les faits datent de 2019 et de janvier 2020."), config)
        assert old.admissible
        assert codes(old.checks) == ["facts_date_to_verify"]
        assert old.checks[0].evidence == ("2019", "2020")
        recent = screen(complaint(self.text + " Le problème dure depuis 2019 ; dernier courrier en 2026."), config)
        assert recent.checks == ()


class TestFirstLine:
    def test_stated_not_contacted(self, config: ScreeningConfig) -> None:
        stated = ScreeningFacts(first_line_contacted=False)
        proposal = screen(complaint("Plainte au sujet de mon impôt.", facts=stated), config)
        assert codes(proposal.reasons) == ["first_line_not_contacted"]

    @pytest.mark.parametrize(
        "text",
        [
            "Je n'ai pas encore contacté le SPF Finances, mais mon impôt est faux.",
            "Ik heb de FOD Financiën nog niet gecontacteerd, maar mijn belasting klopt niet.",
            "Ich habe das FÖD Finanzen noch nicht kontaktiert, aber der Steuerbescheid ist falsch.",
            "I haven't contacted the FPS Finance yet but my income tax is wrong.",
        ],
    )
    def test_says_not_contacted(self, config: ScreeningConfig, text: str) -> None:
        proposal = screen(complaint(text), config)
        assert codes(proposal.reasons) == ["first_line_not_contacted"]
        assert proposal.reasons[0].evidence

    def test_no_sign_is_a_check(self, config: ScreeningConfig) -> None:
        proposal = screen(complaint("Mon avertissement-extrait de rôle est faux."), config)
        assert proposal.admissible
        assert codes(proposal.checks) == ["first_line_to_verify"]

    def test_can_be_switched_off(self) -> None:
        rules = EXAMPLE_RULES.read_text(encoding="utf-8").replace(
            "require_first_line = true", "require_first_line = false"
        )
        relaxed = ScreeningConfig.from_toml(rules, EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
        proposal = screen(complaint("Mon impôt est faux.", facts=ScreeningFacts(first_line_contacted=False)), relaxed)
        assert proposal.admissible and proposal.checks == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Je demande l'accès à mes données personnelles (article 15 du RGPD).", {"RGPD", "données personnelles"}),
        (
            "Graag inzage in mijn persoonsgegevens volgens de AVG; er was een datalek.",
            {"AVG", "persoonsgegevens", "datalek"},
        ),
        ("Ich beantrage Auskunft über meine personenbezogenen Daten gemäß DSGVO.", {"DSGVO"}),
        (
            "Your office sent my personal data to the wrong person: a data breach under the GDPR.",
            {"GDPR", "personal data", "data breach"},
        ),
    ],
)
def test_data_protection_goes_to_the_dpo(config: ScreeningConfig, text: str, expected: set[str]) -> None:
    proposal = screen(complaint(text), config)
    assert proposal.route_to_dpo
    assert expected <= set(proposal.dpo_evidence)


def test_no_dpo_for_ordinary_complaints(config: ScreeningConfig) -> None:
    assert not screen(complaint("Mon allocation de chômage est en retard, l'ONEM ne répond pas."), config).route_to_dpo


def test_matching_ignores_accents_and_case(config: ScreeningConfig) -> None:
    shouting = screen(
        complaint("PLAINTE : OFFICE DES ETRANGERS, REGROUPEMENT FAMILIAL REFUSE, AUCUNE REPONSE."), config
    )
    assert shouting.service is not None and shouting.service.id == "immigration-office"
    assert shouting.theme is not None and shouting.theme.id == "migration"
    assert shouting.admissible  # "AUCUNE REPONSE" is evidence of a first contact


def test_normalise() -> None:
    assert normalise("Réclamation — SPF Finances!") == "reclamation spf finances"
    assert normalise("Œuvre  d'ÉTÉ") == "oeuvre d ete"
    assert normalise("Kirchstraße, Zähler") == "kirchstrasse zahler"
    assert normalise("l'Office des étrangers") == "l office des etrangers"


def test_wildcards_and_word_boundaries(config: ScreeningConfig) -> None:
    compound = screen(complaint("Meine Krankenversicherung zahlt nicht, der Versicherer antwortet nicht."), config)
    assert compound.redirect and compound.redirect[0].ombudsman.id == "be-insurance"
    assert "*versicherung" in compound.redirect[0].matched
    # "visa" must not match inside "visage"; "pension*" matches "pensionnée".
    assert all(m.id != "migration" for m in screen(complaint("Un visage connu au guichet."), config).themes)
    assert screen(complaint("Mon visa a expiré."), config).theme.id == "migration"
    retired = screen(complaint("Je suis pensionnée depuis mars."), config)
    assert retired.theme is not None and retired.theme.id == "pensions"


def test_shared_competence_is_a_check_not_a_reason(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint(
            "Le SPF Finances a saisi mon remboursement pour une facture d'électricité de mon fournisseur d'énergie "
            "Luminus, sur la base d'un relevé de compteur erroné. J'ai écrit à tout le monde."
        ),
        config,
    )
    assert proposal.admissible
    assert codes(proposal.checks) == ["competence_to_verify"]
    assert proposal.redirect[0].ombudsman.id == "be-energy"


def test_countries_filter_the_directory() -> None:
    rules = EXAMPLE_RULES.read_text(encoding="utf-8").replace('countries = ["BE", "EU"]', 'countries = ["FR"]')
    french = ScreeningConfig.from_toml(rules, EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    assert {o.country for o in french.directory} == {"FR", "BE"}  # BE: our own entry only
    assert [o.id for o in french.directory if o.country == "BE"] == ["be-federal"]
    proposal = screen(
        complaint("La CAF a suspendu mes allocations et la préfecture ne répond pas, j'ai écrit trois fois."), french
    )
    assert proposal.redirect[0].ombudsman.id == "fr-defenseur-des-droits"


def test_proposal_is_json(config: ScreeningConfig) -> None:
    proposal = screen(
        complaint("Klacht: mijn treinabonnement van de NMBS werd twee keer aangerekend. Geen antwoord."), config
    )
    data = json.loads(json.dumps(proposal.to_dict()))
    assert data["proposed_status"] == "redirected"
    assert data["redirect"][0]["id"] == "be-rail"
    assert data["reasons"][0]["code"] == "out_of_competence"


def test_empty_message_does_not_crash(config: ScreeningConfig) -> None:
    proposal = screen(ScreeningInput(received=RECEIVED), config)
    assert proposal.kind == "complaint"
    assert codes(proposal.reasons) == ["anonymous"]


def test_shipped_directory_is_complete(config: ScreeningConfig) -> None:
    full = ScreeningConfig.from_toml("", EXAMPLE_DIRECTORY.read_text(encoding="utf-8"))
    ids = {o.id for o in full.directory}
    assert {
        "be-federal",
        "be-wallonia-fwb",
        "be-flanders",
        "be-german-community",
        "be-brussels",
        "be-pensions",
        "be-telecom",
        "be-energy",
        "be-ombudsfin",
        "be-insurance",
        "be-rail",
        "be-postal",
        "fr-defenseur-des-droits",
    } <= ids
    for entry in full.directory:
        assert entry.website.startswith("https://"), entry.id
        assert entry.keywords.by_language, entry.id
        if entry.country == "BE":
            assert set(entry.names) == {"fr", "nl", "de", "en"}, entry.id


@pytest.mark.parametrize(
    ("rules", "directory", "message"),
    [
        ("colour = 'blue'", "", "unknown key"),
        ("self = 'nobody'", "", "not in the directory"),
        ("", "[[ombudsman]]\nid='a'\nname='A'\n[[ombudsman]]\nid='a'\nname='B'", "duplicate id"),
        ("[[kinds]]\nid = 'rant'", "", "unknown kind"),
        ("default_kind = 'rant'", "", "unknown kind"),
        ("[[themes]]\nid = 't'\nkeywords = { fr = ['***'] }", "", "empty keyword"),
        ("[[themes]]\nid = 't'\nkeywords = { fr = 'impôt' }", "", "expected a list"),
        ("[[themes]]\nlabel = 'x'", "", "missing id"),
        ("[admissibility]\nmax_age = 3", "", "unknown key"),
        ("self = [", "", "invalid TOML"),
        ("", "[[ombudsman]]\nid='a'", "id and name are required"),
    ],
)
def test_configuration_errors(rules: str, directory: str, message: str) -> None:
    with pytest.raises(ScreeningConfigError, match=message):
        ScreeningConfig.from_toml(rules, directory)


def test_load_from_a_folder_and_from_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "screening.toml").write_text(
        'self = "us"\n[[themes]]\nid = "parking"\nkeywords = { fr = ["stationnement"] }\n'
    )
    (folder / "directory.toml").write_text(
        '[[ombudsman]]\nid = "us"\nname = "Nous"\nkeywords = { fr = ["stationnement"] }\n'
        '[[ombudsman]]\nid = "them"\nname = "Eux"\nkeywords = { fr = ["piscine"] }\n'
    )
    from_folder = load_screening_config(folder)
    assert [o.id for o in from_folder.directory] == ["us", "them"]
    proposal = screen(complaint("La piscine communale est fermée, j'ai écrit à l'échevin sans réponse."), from_folder)
    assert proposal.proposed_status == "redirected"

    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('self = "us"\ndirectory = "conf/directory.toml"\n')
    assert load_screening_config(rules_file).self_id == "us"

    with pytest.raises(ScreeningConfigError, match="cannot read"):
        load_screening_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("self = 'x'\n")
    with pytest.raises(ScreeningConfigError, match=r"bad\.toml.*not in the directory"):
        load_screening_config(tmp_path / "bad.toml")

