"""The review reminder of a recommendation (issue 15) as the notifier drafts and renders it: the deadline warnings'
templates name the review of a recommendation, in each language, and give the advice that fits it (not the citizen's
extension), for a file's recommendation and a general one (`REC-<id>`)."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.notices import draft_deadline_warnings
from services.notifier.handlers import organisation_variables
from services.notifier.rendering import TemplateRenderer
from services.notifier.settings import NotifierSettings
from shared.events import DeadlineApproaching, DeadlineMissed, Party

# What each language calls the deadline, and the start of its advice (the templates' own words, checked here).
LABEL = {"fr": "la révision du suivi d'une recommandation", "nl": "de herziening van de opvolging van een aanbeveling",
         "de": "die Überprüfung der Umsetzung einer Empfehlung", "en": "the review of what became of a recommendation"}
ADVICE = {"fr": "Voyez avec l'administration", "nl": "Ga bij de administratie na",
          "de": "Klären Sie mit der Verwaltung", "en": "Check with the administration"}
EXTENSION = {"fr": "prolongation", "nl": "verlenging", "de": "Verlängerung", "en": "extension"}


@pytest.mark.parametrize("language", ["fr", "nl", "de", "en"])
@pytest.mark.parametrize("event_class", [DeadlineApproaching, DeadlineMissed])
def test_the_review_reminder_reads_as_such_in_each_language(language, event_class):
    event = event_class(complaint_number="REC-17", deadline_kind="recommendation_review", due=date(2027, 3, 1),
                        handler=Party(email="agent@med.be", language=language), service_concerned="SPF Finances",
                        subject_line="Publier le calendrier des remboursements")
    [draft, *_supervisor] = draft_deadline_warnings(event, "chef@med.be", "fr")
    assert draft.recipient_email == "agent@med.be" and draft.language == language
    settings = NotifierSettings(organisation_name="Médiateur")
    rendered = TemplateRenderer().render(draft.kind, draft.language, {
        **draft.variables, "case_number": draft.complaint_number, "recipient_name": "",
        "org": organisation_variables(settings, language)})
    assert rendered.subject.startswith("[REC-17] ") and LABEL[language] in rendered.subject
    assert ADVICE[language] in rendered.text and "SPF Finances" in rendered.text
    assert EXTENSION[language] not in rendered.text
