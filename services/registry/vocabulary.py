"""The registry's closed vocabularies (kinds, statuses, outcomes, founded categories, inadmissibility reasons) and
their translations for citizens and staff.

Identifiers are English and stable (they are stored in the database and appear in events and indicators); what a
person reads comes from `label(value, language)`, French first, then Dutch, German and English (the languages of
the Belgian and French services we serve). An unknown language falls back to French, an unknown value to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

LANGUAGES = ("fr", "nl", "de", "en")
DEFAULT_LANGUAGE = "fr"


class Kind(StrEnum):
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    COMPLIMENT = "compliment"
    QUESTION = "question"


class Status(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    IN_REVIEW = "in_review"
    WAITING_FOR_CITIZEN = "waiting_for_citizen"
    ANSWERED = "answered"
    CLOSED = "closed"
    INADMISSIBLE = "inadmissible"
    REDIRECTED = "redirected"
    WITHDRAWN = "withdrawn"


class Outcome(StrEnum):
    """Assessment of a closed complaint (fondée / partiellement fondée / non fondée / sans appréciation)."""

    FOUNDED = "founded"
    PARTIALLY_FOUNDED = "partially_founded"
    UNFOUNDED = "unfounded"
    NO_ASSESSMENT = "no_assessment"


class FoundedCategory(StrEnum):
    """What a (partially) founded complaint was about."""

    STAFF_ATTITUDE = "staff_attitude"
    SERVICE_QUALITY = "service_quality"
    FILE_PROCESSING = "file_processing"
    COMPLAINT_HANDLING = "complaint_handling"


class InadmissibilityReason(StrEnum):
    ANONYMOUS = "anonymous"
    FACTS_TOO_OLD = "facts_too_old"
    FIRST_LINE_NOT_CONTACTED = "first_line_not_contacted"
    OUT_OF_COMPETENCE = "out_of_competence"


# value -> {language: label}. One table for every vocabulary: the values are distinct across them.
LABELS: Mapping[str, Mapping[str, str]] = {
    Kind.COMPLAINT: {"fr": "Plainte", "nl": "Klacht", "de": "Beschwerde", "en": "Complaint"},
    Kind.SUGGESTION: {"fr": "Suggestion", "nl": "Suggestie", "de": "Vorschlag", "en": "Suggestion"},
    Kind.COMPLIMENT: {"fr": "Compliment", "nl": "Compliment", "de": "Lob", "en": "Compliment"},
    Kind.QUESTION: {
        "fr": "Question / demande d'information",
        "nl": "Vraag / informatieverzoek",
        "de": "Frage / Auskunftsersuchen",
        "en": "Question / information request",
    },
    Status.RECEIVED: {"fr": "Reçue", "nl": "Ontvangen", "de": "Eingegangen", "en": "Received"},
    Status.ACKNOWLEDGED: {
        "fr": "Accusé de réception envoyé",
        "nl": "Ontvangstbevestiging verstuurd",
        "de": "Eingangsbestätigung versandt",
        "en": "Acknowledged",
    },
    Status.IN_REVIEW: {"fr": "En cours d'examen", "nl": "In behandeling", "de": "In Bearbeitung", "en": "In review"},
    Status.WAITING_FOR_CITIZEN: {
        "fr": "En attente du citoyen",
        "nl": "Wacht op de burger",
        "de": "Wartet auf den Bürger",
        "en": "Waiting for the citizen",
    },
    Status.ANSWERED: {"fr": "Réponse envoyée", "nl": "Beantwoord", "de": "Beantwortet", "en": "Answered"},
    Status.CLOSED: {"fr": "Clôturée", "nl": "Afgesloten", "de": "Abgeschlossen", "en": "Closed"},
    Status.INADMISSIBLE: {"fr": "Irrecevable", "nl": "Onontvankelijk", "de": "Unzulässig", "en": "Inadmissible"},
    Status.REDIRECTED: {"fr": "Réorientée", "nl": "Doorverwezen", "de": "Weitergeleitet", "en": "Redirected"},
    Status.WITHDRAWN: {"fr": "Retirée", "nl": "Ingetrokken", "de": "Zurückgezogen", "en": "Withdrawn"},
    Outcome.FOUNDED: {"fr": "Fondée", "nl": "Gegrond", "de": "Begründet", "en": "Founded"},
    Outcome.PARTIALLY_FOUNDED: {
        "fr": "Partiellement fondée",
        "nl": "Gedeeltelijk gegrond",
        "de": "Teilweise begründet",
        "en": "Partially founded",
    },
    Outcome.UNFOUNDED: {"fr": "Non fondée", "nl": "Ongegrond", "de": "Unbegründet", "en": "Unfounded"},
    Outcome.NO_ASSESSMENT: {
        "fr": "Sans appréciation",
        "nl": "Zonder oordeel",
        "de": "Ohne Bewertung",
        "en": "No assessment",
    },
    FoundedCategory.STAFF_ATTITUDE: {
        "fr": "Attitude du personnel",
        "nl": "Houding van het personeel",
        "de": "Verhalten des Personals",
        "en": "Attitude of staff",
    },
    FoundedCategory.SERVICE_QUALITY: {
        "fr": "Qualité du service",
        "nl": "Kwaliteit van de dienstverlening",
        "de": "Qualität der Dienstleistung",
        "en": "Quality of the service",
    },
    FoundedCategory.FILE_PROCESSING: {
        "fr": "Traitement du dossier",
        "nl": "Behandeling van het dossier",
        "de": "Bearbeitung der Akte",
        "en": "Processing of the file",
    },
    FoundedCategory.COMPLAINT_HANDLING: {
        "fr": "Traitement de la plainte",
        "nl": "Klachtenbehandeling",
        "de": "Bearbeitung der Beschwerde",
        "en": "Handling of the complaint",
    },
    InadmissibilityReason.ANONYMOUS: {
        "fr": "Plainte anonyme : l'auteur n'est pas identifiable",
        "nl": "Anonieme klacht: de indiener is niet identificeerbaar",
        "de": "Anonyme Beschwerde: der Absender ist nicht identifizierbar",
        "en": "Anonymous complaint: the sender cannot be identified",
    },
    InadmissibilityReason.FACTS_TOO_OLD: {
        "fr": "Faits de plus d'un an sans démarche depuis",
        "nl": "Feiten van meer dan een jaar oud zonder stappen sindsdien",
        "de": "Sachverhalt älter als ein Jahr ohne Schritte seitdem",
        "en": "Facts older than one year with no step taken since",
    },
    InadmissibilityReason.FIRST_LINE_NOT_CONTACTED: {
        "fr": "Le service concerné n'a pas d'abord été contacté (première ligne)",
        "nl": "De betrokken dienst werd niet eerst gecontacteerd (eerstelijn)",
        "de": "Die betroffene Dienststelle wurde nicht zuerst kontaktiert (erste Linie)",
        "en": "The service concerned was not contacted first (first line)",
    },
    InadmissibilityReason.OUT_OF_COMPETENCE: {
        "fr": "Hors de notre compétence",
        "nl": "Buiten onze bevoegdheid",
        "de": "Außerhalb unserer Zuständigkeit",
        "en": "Outside our competence",
    },
}


def label(value: str, language: str | None = None) -> str:
    """The label of a vocabulary value in `language` ("fr", "nl", "de", "en"; "fr-BE" works), French by default."""
    labels = LABELS.get(value)
    if labels is None:
        return str(value)
    primary = (language or DEFAULT_LANGUAGE).split("-")[0].split("_")[0].lower()
    return labels.get(primary) or labels[DEFAULT_LANGUAGE]
