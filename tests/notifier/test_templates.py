"""Every template in every language renders with strict undefined and carries the mandatory notices."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from services.notifier.handlers import organisation_variables
from services.notifier.notices import NoticeKind
from services.notifier.rendering import LANGUAGES, TemplateRenderer, long_date, pick_language
from services.notifier.settings import NotifierSettings

SETTINGS = NotifierSettings(
    organisation_name="Service de médiation Pensions",
    organisation_signature="Marie Martin, médiatrice",
    second_line_name="Médiateur fédéral",
    second_line_contact="Rue Ducale 43, 1000 Bruxelles",
    organisation_website="https://www.example.be",
)

SAMPLE = {
    "case_number": "MED-2026-00042",
    "recipient_name": "Jeanne Dupont",
    "subject_line": "Retard de paiement",
    "received_on": date(2026, 11, 24),
    "answer_due": date(2027, 1, 8),
    "handler_name": "Luc Peeters",
    "message_text": "Merci de nous envoyer la décision du 3 mars.",
    "service_concerned": "Service des pensions",
    "reasons": ["La réclamation porte sur une décision de justice."],
    "advice": "",
    "competent_name": "Ombudsman Energie",
    "competent_contact": "Boulevard du Roi Albert II 8, 1000 Bruxelles",
    "transmitted": True,
    "explanation": "La matière relève de la compétence régionale.",
    "new_due": date(2027, 3, 1),
    "reason": "Nous attendons la réponse de l'administration concernée.",
    "answer_text": "Après examen, l'administration a corrigé le montant de votre pension.",
    "answered_by": "Marie Martin",
    "deadline_kind": "answer",
    "due": date(2027, 1, 8),
    "lead_days": 3,
    "channel": "email",
    "org": organisation_variables(SETTINGS, "fr"),
    "day": date(2026, 11, 24),
    # A request for the administration's position and its reminder (issue 15).
    "administration_name": "Service fédéral des Pensions",
    "contact_person": "Mme Martin",
    "questions": "1. Pourquoi la pension n'a-t-elle pas été versée ?",
    "requested_on": date(2026, 11, 24),
    # The citizen's personal link and the survey invitation (issue 17), as the handler opens them.
    "link_url": "https://public.example.be/my-file/0123456789abcdefAAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH",
    "files": [
        {"case_number": "MED-2026-00042", "deadline_kind": "answer", "due": date(2026, 11, 27), "missed": False,
         "subject_line": "Retard de paiement"},
        {"case_number": "MED-2026-00040", "deadline_kind": "acknowledgment", "due": date(2026, 11, 20),
         "missed": True, "subject_line": ""},
    ],
}

# The sentence of each language saying that handling does not suspend appeal deadlines, and its second-line intro.
NO_SUSPENSION = {"fr": "ne suspend pas", "nl": "schorst noch onderbreekt", "de": "hemmt oder unterbricht",
                 "en": "does not suspend"}
DATE_DUE = {"fr": "8 janvier 2027", "nl": "8 januari 2027", "de": "8. Januar 2027", "en": "8 January 2027"}


def test_every_kind_has_a_template_in_every_language():
    renderer = TemplateRenderer()
    assert set(renderer.kinds()) == {kind.value for kind in NoticeKind}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(NoticeKind))
@pytest.mark.parametrize("channel", ["email", "letter"])
def test_renders_strictly_with_case_number_in_subject(kind: NoticeKind, language: str, channel: str):
    rendered = TemplateRenderer().render(kind, language, {**SAMPLE, "channel": channel})
    if kind is NoticeKind.DEADLINE_DIGEST:  # one mail about many files
        assert "(2)" in rendered.subject and "MED-2026-00040" in rendered.text
    else:
        assert rendered.subject.startswith("[MED-2026-00042] ")
    assert "MED-2026-00042" in rendered.text
    assert f'lang="{language}"' in rendered.html
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert "\n\n\n" not in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_acknowledgment_is_legally_complete(language: str):
    text = TemplateRenderer().render(NoticeKind.ACKNOWLEDGMENT, language, SAMPLE).text
    assert DATE_DUE[language] in text
    assert long_date(date(2026, 11, 24), language) in text
    assert "Luc Peeters" in text and "Service des pensions" in text
    assert NO_SUSPENSION[language] in text
    assert "Médiateur fédéral" in text and "Rue Ducale 43, 1000 Bruxelles" in text
    assert "Marie Martin, médiatrice" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_other_citizen_notices_carry_their_specific_content(language: str):
    renderer = TemplateRenderer()
    assert "La réclamation porte sur une décision de justice." in renderer.render("inadmissible", language, SAMPLE).text
    redirected = renderer.render("redirected", language, SAMPLE).text
    assert "Ombudsman Energie" in redirected and "Boulevard du Roi Albert II 8" in redirected
    extension = renderer.render("extension", language, SAMPLE).text
    assert long_date(date(2027, 3, 1), language) in extension and SAMPLE["reason"] in extension
    assert SAMPLE["answer_text"] in renderer.render("final_answer", language, SAMPLE).text
    for kind in ("inadmissible", "extension", "final_answer", "redirected"):
        assert NO_SUSPENSION[language] in renderer.render(kind, language, SAMPLE).text


def test_inadmissible_reasons_become_an_html_list():
    rendered = TemplateRenderer().render("inadmissible", "fr", {**SAMPLE, "reasons": ["Hors délai", "<b>Anonyme</b>"]})
    assert "<li>Hors délai</li>" in rendered.html
    assert "&lt;b&gt;Anonyme&lt;/b&gt;" in rendered.html  # citizen or staff text is escaped in HTML


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_a_missing_variable_is_an_error_not_a_blank(kind: NoticeKind):
    missing = "files" if kind is NoticeKind.DEADLINE_DIGEST else "case_number"
    variables = {key: value for key, value in SAMPLE.items() if key != missing}
    with pytest.raises(UndefinedError):
        TemplateRenderer().render(kind, "fr", variables)


def test_a_deployment_overrides_one_template_from_its_folder(tmp_path: Path):
    (tmp_path / "nl").mkdir()
    (tmp_path / "nl" / "acknowledgment.j2").write_text(
        "{% block subject %}[{{ case_number }}] Ontvangen{% endblock %}{% block body %}Dossier {{ case_number }}."
        "{% endblock %}",
        encoding="utf-8",
    )
    renderer = TemplateRenderer(tmp_path)
    assert renderer.render("acknowledgment", "nl", SAMPLE).text == "Dossier MED-2026-00042.\n"
    assert "Accusé de réception" in renderer.render("acknowledgment", "fr", SAMPLE).subject  # others untouched


def test_language_falls_back_to_french():
    assert pick_language(None) == "fr"
    assert pick_language("it") == "fr"
    assert pick_language("nl-BE") == "nl"
    assert pick_language("DE_de") == "de"


def test_names_are_given_per_language_with_french_as_fallback():
    settings = NotifierSettings(
        organisation_name="Service de médiation Pensions",
        organisation_name_translations={"nl": "Ombudsdienst Pensioenen"},
        second_line_name="Médiateur fédéral",
        second_line_name_translations={"nl": "Federale Ombudsman"},
        second_line_contact_translations={"nl": "Leuvenseweg 48, 1000 Brussel – www.federaalombudsman.be"},
    )
    renderer = TemplateRenderer()
    dutch = renderer.render("acknowledgment", "nl", {**SAMPLE, "org": organisation_variables(settings, "nl")}).text
    assert "Ombudsdienst Pensioenen" in dutch and "Federale Ombudsman" in dutch
    assert "Leuvenseweg 48" in dutch
    assert "Service de médiation Pensions" not in dutch and "Médiateur fédéral" not in dutch
    german = renderer.render("acknowledgment", "de", {**SAMPLE, "org": organisation_variables(settings, "de")}).text
    assert "Service de médiation Pensions" in german and "Médiateur fédéral" in german  # no German name: French


def test_per_language_names_accept_only_known_languages():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="languages must be among"):
        NotifierSettings(organisation_name_translations={"it": "Servizio"})
