"""The registry's closed vocabularies (kinds, statuses, outcomes, founded categories, inadmissibility reasons) and
their translations for citizens and staff.

Identifiers are English and stable (they are stored in the database and appear in events and indicators); what a
person reads comes from `label(value, language)`, French first, then Dutch, German and English (the languages of
the Belgian and French services we serve). An unknown language falls back to French, an unknown value to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

class Language(StrEnum):
    """The languages of what people read, French first."""

    FR = "fr"
    NL = "nl"
    DE = "de"
    EN = "en"


LANGUAGES = tuple(language.value for language in Language)
DEFAULT_LANGUAGE = Language.FR.value


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
    # Merged into another file (`commands.MergeComplaints`): its thread lives on in the target's file. Reached and
    # left only by a merge and its undoing, never by a status change of the workflow.
    MERGED = "merged"


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
    Status.MERGED: {"fr": "Fusionnée", "nl": "Samengevoegd", "de": "Zusammengeführt", "en": "Merged"},
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


# Vocabularies whose values collide with the table above or with one another ("inadmissible" is a status, an
# admissibility decision and a notice; "extension" a notice and a change), so they are looked up by name.
# Channels are `shared.events.Channel`; notices are the notifier's templates; changes are the registry handlers'
# (`handlers/records.log_change`).
_ACKNOWLEDGMENT = {"fr": "Accusé de réception", "nl": "Ontvangstbevestiging", "de": "Eingangsbestätigung",
                   "en": "Acknowledgment"}
VOCABULARIES: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    "channel": {
        "email": {"fr": "Courriel", "nl": "E-mail", "de": "E-Mail", "en": "Email"},
        "letter": {"fr": "Courrier postal", "nl": "Brief", "de": "Brief", "en": "Letter"},
        "web_form": {"fr": "Formulaire en ligne", "nl": "Webformulier", "de": "Webformular", "en": "Web form"},
        "in_person": {"fr": "En personne", "nl": "Persoonlijk", "de": "Persönlich", "en": "In person"},
        "phone": {"fr": "Téléphone", "nl": "Telefoon", "de": "Telefon", "en": "Phone"},
    },
    "admissibility": {
        "pending": {"fr": "À examiner", "nl": "Nog te onderzoeken", "de": "Zu prüfen", "en": "Pending"},
        "admissible": {"fr": "Recevable", "nl": "Ontvankelijk", "de": "Zulässig", "en": "Admissible"},
        "inadmissible": {"fr": "Irrecevable", "nl": "Onontvankelijk", "de": "Unzulässig", "en": "Inadmissible"},
    },
    "direction": {
        "in": {"fr": "reçu", "nl": "ontvangen", "de": "erhalten", "en": "in"},
        "out": {"fr": "envoyé", "nl": "verzonden", "de": "gesendet", "en": "out"},
        "failed": {"fr": "non remis", "nl": "niet bezorgd", "de": "nicht zugestellt", "en": "not delivered"},
        "receipt": {"fr": "accusé de lecture", "nl": "leesbevestiging", "de": "Lesebestätigung",
                    "en": "read receipt"},
    },
    # What a read receipt says became of our notice (RFC 8098 3.2.6.2 disposition-type).
    "disposition": {
        "displayed": {"fr": "affiché", "nl": "weergegeven", "de": "angezeigt", "en": "displayed"},
        # RFC 8098: deleted, "the recipient may or may not have seen the message"; dispatched (printed, faxed,
        # forwarded), "without necessarily having been previously displayed".
        "deleted": {"fr": "supprimé", "nl": "verwijderd", "de": "gelöscht", "en": "deleted"},
        "dispatched": {"fr": "transmis", "nl": "doorgestuurd", "de": "weitergegeben", "en": "dispatched"},
        "processed": {"fr": "traité sans être affiché", "nl": "verwerkt zonder te zijn weergegeven",
                      "de": "ohne Anzeige verarbeitet", "en": "processed without being displayed"},
    },
    # Who wrote an incoming message, as far as evidence goes (`shared.events.SenderVerdict`, docs/security.md).
    "sender_verdict": {
        "verified": {"fr": "expéditeur vérifié", "nl": "afzender geverifieerd", "de": "Absender verifiziert",
                     "en": "sender verified"},
        "unverified": {"fr": "expéditeur non vérifié", "nl": "afzender niet geverifieerd",
                       "de": "Absender nicht verifiziert", "en": "sender not verified"},
        "failed": {"fr": "échec de l'authentification de l'expéditeur", "nl": "authenticatie van de afzender mislukt",
                   "de": "Authentifizierung des Absenders fehlgeschlagen", "en": "sender failed authentication"},
    },
    "notice": {
        "acknowledgment": _ACKNOWLEDGMENT,
        "acknowledgement": _ACKNOWLEDGMENT,  # the notifier accepts the British spelling too
        "follow_up_received": {"fr": "Accusé de réception d'un complément", "nl": "Bevestiging van een aanvulling",
                               "de": "Bestätigung einer Ergänzung", "en": "Follow-up receipt"},
        "inadmissible": {"fr": "Avis d'irrecevabilité", "nl": "Bericht van onontvankelijkheid",
                         "de": "Mitteilung der Unzulässigkeit", "en": "Inadmissibility notice"},
        "redirected": {"fr": "Avis de réorientation", "nl": "Bericht van doorverwijzing",
                       "de": "Mitteilung der Weiterleitung", "en": "Redirection notice"},
        "extension": {"fr": "Avis de prolongation du délai", "nl": "Bericht van termijnverlenging",
                      "de": "Mitteilung der Fristverlängerung", "en": "Extension notice"},
        "final_answer": {"fr": "Réponse définitive", "nl": "Definitief antwoord", "de": "Endgültige Antwort",
                         "en": "Final answer"},
        "deadline_approaching": {"fr": "Alerte : échéance proche", "nl": "Waarschuwing: termijn nadert",
                                 "de": "Warnung: Frist läuft ab", "en": "Warning: deadline approaching"},
        "deadline_missed": {"fr": "Alerte : échéance dépassée", "nl": "Waarschuwing: termijn overschreden",
                            "de": "Warnung: Frist überschritten", "en": "Warning: deadline missed"},
        "deadline_digest": {"fr": "Récapitulatif des échéances", "nl": "Overzicht van de termijnen",
                            "de": "Fristenübersicht", "en": "Deadline digest"},
        "staff_message": {"fr": "Message du service", "nl": "Bericht van de dienst", "de": "Nachricht der Dienststelle",
                          "en": "Message from staff"},
        # Issue 17: the citizen's personal link sent (again), the satisfaction survey's invitation.
        "citizen_link": {"fr": "Envoi du lien personnel", "nl": "Verzending van de persoonlijke link",
                         "de": "Versand des persönlichen Links", "en": "Personal link sent"},
        "survey_invitation": {"fr": "Invitation à l'enquête de satisfaction",
                              "nl": "Uitnodiging voor de tevredenheidsenquête",
                              "de": "Einladung zur Zufriedenheitsumfrage", "en": "Satisfaction survey invitation"},
        # Issue 15: the DPO told of a data-protection file at its registration.
        "dpo_notification": {"fr": "Avis au délégué à la protection des données",
                             "nl": "Bericht aan de functionaris voor gegevensbescherming",
                             "de": "Mitteilung an den Datenschutzbeauftragten", "en": "Notice to the DPO"},
        # To the citizen, asking for what is missing (issue 15).
        "information_request": {"fr": "Demande d'informations complémentaires",
                                "nl": "Verzoek om aanvullende informatie",
                                "de": "Bitte um ergänzende Angaben", "en": "Request for further information"},
        "information_reminder": {"fr": "Rappel de la demande d'informations",
                                 "nl": "Herinnering aan het verzoek om informatie",
                                 "de": "Erinnerung an die Bitte um Angaben",
                                 "en": "Reminder of the request for information"},
        "closed_no_answer": {"fr": "Clôture faute de réponse", "nl": "Afsluiting bij gebrek aan antwoord",
                             "de": "Abschluss mangels Antwort", "en": "Closed for lack of answer"},
        # To the administration concerned (issue 15).
        "position_request": {"fr": "Demande de position à l'administration",
                             "nl": "Verzoek om standpunt aan de administratie",
                             "de": "Bitte um Stellungnahme an die Verwaltung",
                             "en": "Request for the administration's position"},
        "position_reminder": {"fr": "Rappel à l'administration", "nl": "Herinnering aan de administratie",
                              "de": "Erinnerung an die Verwaltung", "en": "Reminder to the administration"},
    },
    "change": {
        "registered": {"fr": "Enregistrement", "nl": "Registratie", "de": "Registrierung", "en": "Registered"},
        # The citizen's personal link (issue 17): the details hold counts, never a token.
        "citizen_link_sent": {"fr": "Lien personnel envoyé", "nl": "Persoonlijke link verstuurd",
                              "de": "Persönlicher Link gesendet", "en": "Personal link sent"},
        "citizen_links_revoked": {"fr": "Liens personnels désactivés", "nl": "Persoonlijke links gedeactiveerd",
                                  "de": "Persönliche Links deaktiviert", "en": "Personal links revoked"},
        # Privacy (issue 16, `privacy/handlers.py`): the details of these entries name no person.
        "anonymised": {"fr": "Anonymisation", "nl": "Anonimisering", "de": "Anonymisierung", "en": "Anonymised"},
        "correspondent_erased": {"fr": "Effacement d'un correspondant", "nl": "Wissing van een correspondent",
                                 "de": "Löschung eines Korrespondenten", "en": "Correspondent erased"},
        "legal_hold_placed": {"fr": "Gel juridique posé", "nl": "Juridische bewaring ingesteld",
                              "de": "Rechtliche Aufbewahrung angeordnet", "en": "Legal hold placed"},
        "legal_hold_released": {"fr": "Gel juridique levé", "nl": "Juridische bewaring opgeheven",
                                "de": "Rechtliche Aufbewahrung aufgehoben", "en": "Legal hold released"},
        "rectified": {"fr": "Rectification des coordonnées", "nl": "Rechtzetting van de contactgegevens",
                      "de": "Berichtigung der Kontaktdaten", "en": "Contact details rectified"},
        "status": {"fr": "Changement de statut", "nl": "Statuswijziging", "de": "Statusänderung",
                   "en": "Status change"},
        "assignment": {"fr": "Attribution", "nl": "Toewijzing", "de": "Zuweisung", "en": "Assignment"},
        "classification": {"fr": "Classification", "nl": "Classificatie", "de": "Einordnung",
                           "en": "Classification"},
        "screening": {"fr": "Décision de recevabilité", "nl": "Beslissing over de ontvankelijkheid",
                      "de": "Zulässigkeitsentscheidung", "en": "Screening decision"},
        "extension": {"fr": "Prolongation du délai", "nl": "Termijnverlenging", "de": "Fristverlängerung",
                      "en": "Deadline extended"},
        "recommendation": {"fr": "Recommandation", "nl": "Aanbeveling", "de": "Empfehlung",
                           "en": "Recommendation"},
        "follow_up_appended": {"fr": "Message ajouté au dossier", "nl": "Bericht aan het dossier toegevoegd",
                               "de": "Nachricht zur Akte genommen", "en": "Message added to the file"},
        "follow_up_attached": {"fr": "Message rattaché depuis la file d'attente",
                               "nl": "Bericht gekoppeld vanuit de wachtrij",
                               "de": "Nachricht aus der Warteschlange zugeordnet",
                               "en": "Held message attached"},
        "notification_failed": {"fr": "Échec de l'envoi d'un avis", "nl": "Bericht niet verstuurd",
                                "de": "Mitteilung nicht zugestellt", "en": "Notice not delivered"},
        "correspondent_added": {"fr": "Correspondant admis", "nl": "Correspondent toegelaten",
                                "de": "Korrespondent zugelassen", "en": "Correspondent admitted"},
        "read_receipt": {"fr": "Accusé de lecture reçu", "nl": "Leesbevestiging ontvangen",
                         "de": "Lesebestätigung erhalten", "en": "Read receipt received"},
        "facts": {"fr": "Faits consignés", "nl": "Feiten vastgelegd", "de": "Sachverhalt erfasst",
                  "en": "Facts recorded"},
        # The back office (issue 13).
        "note_added": {"fr": "Note interne", "nl": "Interne notitie", "de": "Interne Notiz", "en": "Internal note"},
        "merged_into": {"fr": "Fusionnée dans un autre dossier", "nl": "Samengevoegd met een ander dossier",
                        "de": "In eine andere Akte zusammengeführt", "en": "Merged into another file"},
        "merged_from": {"fr": "Dossier fusionné dans celui-ci", "nl": "Dossier hierin samengevoegd",
                        "de": "Akte hierin zusammengeführt", "en": "File merged into this one"},
        "merge_undone": {"fr": "Fusion annulée", "nl": "Samenvoeging ongedaan gemaakt",
                         "de": "Zusammenführung rückgängig gemacht", "en": "Merge undone"},
        "link_added": {"fr": "Dossier lié", "nl": "Dossier gekoppeld", "de": "Akte verknüpft", "en": "File linked"},
        "link_removed": {"fr": "Lien supprimé", "nl": "Koppeling verwijderd", "de": "Verknüpfung entfernt",
                         "en": "Link removed"},
        "staff_message": {"fr": "Message envoyé au citoyen", "nl": "Bericht aan de burger verstuurd",
                          "de": "Nachricht an den Bürger gesendet", "en": "Message sent to the citizen"},
        # Requests for information to the citizen (issue 15).
        "information_requested": {"fr": "Informations demandées au citoyen",
                                  "nl": "Informatie gevraagd aan de burger",
                                  "de": "Angaben beim Bürger angefordert",
                                  "en": "Information requested from the citizen"},
        "information_reminder": {"fr": "Rappel envoyé au citoyen", "nl": "Herinnering aan de burger verstuurd",
                                 "de": "Erinnerung an den Bürger gesendet", "en": "Reminder sent to the citizen"},
        "information_answered": {"fr": "Réponse du citoyen : le délai reprend",
                                 "nl": "Antwoord van de burger: de termijn loopt weer",
                                 "de": "Antwort des Bürgers: die Frist läuft weiter",
                                 "en": "The citizen answered: the deadline runs again"},
        "information_request_ended": {"fr": "Demande d'informations sans objet",
                                      "nl": "Verzoek om informatie vervallen",
                                      "de": "Bitte um Angaben gegenstandslos",
                                      "en": "Request for information no longer needed"},
        "closed_no_answer": {"fr": "Clôturée faute de réponse du citoyen",
                             "nl": "Afgesloten bij gebrek aan antwoord van de burger",
                             "de": "Mangels Antwort des Bürgers abgeschlossen",
                             "en": "Closed for lack of answer from the citizen"},
        # Recommendations followed up (issue 15).
        "recommendation_follow_up": {"fr": "Suivi d'une recommandation", "nl": "Opvolging van een aanbeveling",
                                     "de": "Umsetzung einer Empfehlung", "en": "Recommendation followed up"},
        "recommendation_review": {"fr": "Date de révision d'une recommandation",
                                  "nl": "Herzieningsdatum van een aanbeveling",
                                  "de": "Überprüfungsdatum einer Empfehlung", "en": "Recommendation review date"},
        # The administration concerned (issue 15).
        "position_requested": {"fr": "Position demandée à l'administration",
                               "nl": "Standpunt gevraagd aan de administratie",
                               "de": "Stellungnahme der Verwaltung erbeten", "en": "Administration's position requested"},
        "position_answered": {"fr": "Réponse de l'administration reçue",
                              "nl": "Antwoord van de administratie ontvangen",
                              "de": "Antwort der Verwaltung erhalten", "en": "Administration's answer received"},
        "administration_message": {"fr": "Message de l'administration reçu",
                                   "nl": "Bericht van de administratie ontvangen",
                                   "de": "Nachricht der Verwaltung erhalten", "en": "Message from the administration"},
        "position_reminder": {"fr": "Rappel envoyé à l'administration",
                              "nl": "Herinnering aan de administratie verstuurd",
                              "de": "Erinnerung an die Verwaltung gesendet", "en": "Reminder sent to the administration"},
        "position_no_answer": {"fr": "Pas de réponse de l'administration dans le délai",
                               "nl": "Geen antwoord van de administratie binnen de termijn",
                               "de": "Keine Antwort der Verwaltung innerhalb der Frist",
                               "en": "No answer from the administration in time"},
        "administration_message_shared": {"fr": "Message de l'administration montré au citoyen",
                                          "nl": "Bericht van de administratie getoond aan de burger",
                                          "de": "Nachricht der Verwaltung dem Bürger gezeigt",
                                          "en": "Administration's message shown to the citizen"},
        "administration_message_hidden": {"fr": "Message de l'administration caché au citoyen",
                                          "nl": "Bericht van de administratie verborgen voor de burger",
                                          "de": "Nachricht der Verwaltung vor dem Bürger verborgen",
                                          "en": "Administration's message hidden from the citizen"},
    },
    # What a named rule of intake decided (`shared.events.RuleHit.outcome`); the rule's own name is a technical id,
    # shown as is ("Classé automatique par la règle vacation-subject").
    # Actors of the change log that are no staff member's address (`handlers/citizen_access.py`).
    "actor": {
        "citizen request": {"fr": "demande du citoyen", "nl": "verzoek van de burger", "de": "Anfrage des Bürgers",
                            "en": "citizen's request"},
        "superseded by a newer link": {"fr": "remplacé : le citoyen a ouvert un lien plus récent",
                                       "nl": "vervangen: de burger opende een recentere link",
                                       "de": "ersetzt: der Bürger hat einen neueren Link geöffnet",
                                       "en": "replaced: the citizen opened a newer link"},
    },
    "rule_outcome": {
        "automated": {"fr": "classé automatique", "nl": "als automatisch ingedeeld",
                      "de": "als automatisch eingestuft", "en": "classified automated"},
        "bounce": {"fr": "classé avis de non-remise", "nl": "als onbestelbaarheidsbericht ingedeeld",
                   "de": "als Unzustellbarkeitsnachricht eingestuft", "en": "classified bounce"},
        "report": {"fr": "classé rapport automatique", "nl": "als automatisch rapport ingedeeld",
                   "de": "als automatischer Bericht eingestuft", "en": "classified automated report"},
        "forward": {"fr": "classé transfert", "nl": "als doorgestuurd bericht ingedeeld",
                    "de": "als Weiterleitung eingestuft", "en": "classified forward"},
        "acknowledgment-suppressed": {"fr": "accusé de réception supprimé", "nl": "ontvangstbevestiging onderdrukt",
                                      "de": "Eingangsbestätigung unterdrückt", "en": "acknowledgment suppressed"},
    },
    # Words of the recommendations' lines (`register recommendation ...`, issue 15).
    "recommendation": {
        "general": {"fr": "générale", "nl": "algemeen", "de": "allgemein", "en": "general"},
        "review": {"fr": "révision", "nl": "herziening", "de": "Überprüfung", "en": "review"},
    },
    # What an administration did with a recommendation (issue 15, `recommendations.FollowUp`).
    "follow_up": {
        "pending": {"fr": "En attente", "nl": "In afwachting", "de": "Ausstehend", "en": "Pending"},
        "accepted": {"fr": "Acceptée", "nl": "Aanvaard", "de": "Angenommen", "en": "Accepted"},
        "implemented": {"fr": "Mise en œuvre", "nl": "Uitgevoerd", "de": "Umgesetzt", "en": "Implemented"},
        "refused": {"fr": "Refusée", "nl": "Geweigerd", "de": "Abgelehnt", "en": "Refused"},
    },
    "language": {
        "fr": {"fr": "français", "nl": "Frans", "de": "Französisch", "en": "French"},
        "nl": {"fr": "néerlandais", "nl": "Nederlands", "de": "Niederländisch", "en": "Dutch"},
        "de": {"fr": "allemand", "nl": "Duits", "de": "Deutsch", "en": "German"},
        "en": {"fr": "anglais", "nl": "Engels", "de": "Englisch", "en": "English"},
    },
    # Reasons the registry itself gives in the change log (the actor is the registry, not a member of staff).
    "system_reason": {
        "acknowledgment sent": {"fr": "accusé de réception envoyé", "nl": "ontvangstbevestiging verstuurd",
                                "de": "Eingangsbestätigung versandt", "en": "acknowledgment sent"},
        "acknowledgment failed": {"fr": "l'accusé de réception n'a pas pu être remis",
                                  "nl": "de ontvangstbevestiging kon niet worden bezorgd",
                                  "de": "die Eingangsbestätigung konnte nicht zugestellt werden",
                                  "en": "the acknowledgment could not be delivered"},
        "no answer to the request for information": {
            "fr": "pas de réponse à la demande d'informations", "nl": "geen antwoord op het verzoek om informatie",
            "de": "keine Antwort auf die Bitte um Angaben", "en": "no answer to the request for information"},
    },
    # What a request for information asks the citizen for (issue 15, `information_requests.MissingItem`), as staff
    # read it (the citizen's own wording is in the notifier's templates).
    "missing_information": {
        "first_line_contact": {"fr": "Contact préalable avec le service concerné (première ligne)",
                               "nl": "Voorafgaand contact met de betrokken dienst (eerstelijn)",
                               "de": "Vorheriger Kontakt mit der betroffenen Dienststelle (erste Linie)",
                               "en": "Prior contact with the service concerned (first line)"},
        "facts_date": {"fr": "Date des faits", "nl": "Datum van de feiten", "de": "Datum des Sachverhalts",
                       "en": "Date of the facts"},
        "last_step_date": {"fr": "Date de la dernière démarche", "nl": "Datum van de laatste stap",
                           "de": "Datum des letzten Schritts", "en": "Date of the last step taken"},
        "identity": {"fr": "Identité complète", "nl": "Volledige identiteit", "de": "Vollständige Identität",
                     "en": "Full identity"},
        "postal_address": {"fr": "Adresse postale", "nl": "Postadres", "de": "Postanschrift", "en": "Postal address"},
    },
    # Identity anomalies intake records as "code" or "code: detail" (services/intake/message/understanding.py).
    "identity_note": {
        "several_from_headers": {"fr": "plusieurs en-têtes From", "nl": "meerdere From-kopregels",
                                 "de": "mehrere From-Kopfzeilen", "en": "several From headers"},
        "several_from_addresses": {"fr": "plusieurs adresses dans From", "nl": "meerdere adressen in From",
                                   "de": "mehrere Adressen in From", "en": "several From addresses"},
        "no_from_address": {"fr": "aucune adresse dans From", "nl": "geen adres in From",
                            "de": "keine Adresse in From", "en": "no From address"},
        "display_name_shows_another_address": {
            "fr": "le nom affiché montre une autre adresse", "nl": "de weergavenaam toont een ander adres",
            "de": "der Anzeigename zeigt eine andere Adresse", "en": "the display name shows another address"},
        "encoded_word_in_address": {"fr": "mot encodé dans l'adresse", "nl": "gecodeerd woord in het adres",
                                    "de": "kodiertes Wort in der Adresse", "en": "encoded word in the address"},
        "sender_differs": {"fr": "l'en-tête Sender diffère de From", "nl": "de Sender-kopregel verschilt van From",
                           "de": "die Sender-Kopfzeile weicht von From ab", "en": "the Sender header differs from From"},
    },
    "hold_reason": {
        "sender_not_party": {"fr": "Expéditeur étranger au dossier", "nl": "Afzender is geen partij",
                             "de": "Absender ist nicht beteiligt", "en": "Sender is not a party"},
        "unknown_case_number": {"fr": "Numéro de dossier inconnu", "nl": "Onbekend dossiernummer",
                                "de": "Unbekanntes Aktenzeichen", "en": "Unknown case number"},
        "ambiguous_reference": {"fr": "Référence ambiguë", "nl": "Dubbelzinnige verwijzing",
                                "de": "Mehrdeutiger Verweis", "en": "Ambiguous reference"},
        "automated_unmatched": {"fr": "Message automatique sans dossier", "nl": "Automatisch bericht zonder dossier",
                                "de": "Automatische Nachricht ohne Akte", "en": "Automated message without a case"},
        "sender_failed_authentication": {
            "fr": "Échec de l'authentification de l'expéditeur", "nl": "Authenticatie van de afzender mislukt",
            "de": "Authentifizierung des Absenders fehlgeschlagen", "en": "Sender failed authentication"},
        "staff_forward_not_verified": {
            "fr": "Transfert d'un agent non vérifié", "nl": "Doorsturing door een medewerker niet geverifieerd",
            "de": "Weiterleitung durch Mitarbeiter nicht verifiziert", "en": "Staff forward not verified"},
        "letter_date_too_old": {
            "fr": "Date de réception du courrier trop ancienne", "nl": "Ontvangstdatum van de brief te oud",
            "de": "Eingangsdatum des Briefes zu alt", "en": "Letter receipt date too old"},
        "receipt_sender_not_recipient": {
            "fr": "Accusé de lecture envoyé par une autre adresse que celle du destinataire de l'avis",
            "nl": "Leesbevestiging verstuurd door een ander adres dan dat van de geadresseerde van het bericht",
            "de": "Lesebestätigung von einer anderen Adresse als der des Empfängers der Mitteilung",
            "en": "Read receipt sent from an address other than the notice's recipient"},
        "needs_confirmation": {"fr": "À confirmer par le personnel", "nl": "Te bevestigen door een medewerker",
                               "de": "Von Mitarbeitern zu bestätigen", "en": "To be confirmed by staff"},
        "administration_unreferenced": {"fr": "Message d'une administration sans numéro de dossier",
                                        "nl": "Bericht van een administratie zonder dossiernummer",
                                        "de": "Nachricht einer Verwaltung ohne Aktenzeichen",
                                        "en": "Message from an administration without a file number"},
    },
}


def primary_language(language: str | None) -> str:
    """"fr-BE", "nl_BE", "DE" -> "fr", "nl", "de"; None -> French."""
    return (language or DEFAULT_LANGUAGE).split("-")[0].split("_")[0].lower()


def label(value: str, language: str | None = None, vocabulary: str | None = None) -> str:
    """The label of a vocabulary value in `language` ("fr", "nl", "de", "en"; "fr-BE" works), French by default.

    `vocabulary` names one of `VOCABULARIES` (channel, admissibility, direction, disposition, sender_verdict, notice,
    change, actor, language, system_reason, hold_reason, identity_note, rule_outcome, missing_information); without it the
    value is looked up among kinds, statuses, outcomes, founded categories and
    inadmissibility reasons.
    """
    table = VOCABULARIES.get(vocabulary, {}) if vocabulary else LABELS
    labels = table.get(value)
    if labels is None:
        return str(value)
    return labels.get(primary_language(language)) or labels[DEFAULT_LANGUAGE]
