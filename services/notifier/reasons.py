"""Why a notice was not sent, or not yet (pure): a stable reason code stored with the notice, shown to staff in
their language through a translation table (FR first), never an English sentence frozen in the database.

A stored reason reads `code` or `code: detail`, the detail being technical text (an SMTP reply, a flag's own reason)
shown as is. A stored text that does not start with a known code (rows written before codes existed) is shown as is.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    AUTOMATED_MESSAGE = "automated_message"
    NO_EMAIL_ADDRESS = "no_email_address"
    NO_USABLE_ADDRESS = "no_usable_address"
    OWN_ADDRESS = "own_address"
    STAFF_ADDRESS = "staff_address"
    MACHINE_ADDRESS = "machine_address"
    EMAIL_UNDELIVERABLE = "email_undeliverable"
    ADDRESS_FLAGGED = "address_flagged"
    RATE_LIMITED = "rate_limited"
    ACKNOWLEDGMENT_LIMIT = "acknowledgment_limit"
    ACKNOWLEDGMENT_SUPPRESSED = "acknowledgment_suppressed"
    UNSAFE_ADDRESS = "unsafe_address"
    RECIPIENT_REFUSED = "recipient_refused"
    RELAY_REFUSED = "relay_refused"
    RELAY_DEFERRED = "relay_deferred"
    INTERNAL_ERROR = "internal_error"
    GAVE_UP = "gave_up"
    BOUNCE = "bounce"


STAFF_LANGUAGES = ("fr", "nl", "de", "en")

_TEXTS: dict[ReasonCode, dict[str, str]] = {
    ReasonCode.AUTOMATED_MESSAGE: {
        "fr": "message automatique (réponse automatique, rapport de non-remise ou liste)",
        "nl": "automatisch bericht (automatisch antwoord, onbestelbaarheidsbericht of lijst)",
        "de": "automatische Nachricht (Abwesenheitsnotiz, Unzustellbarkeitsbericht oder Liste)",
        "en": "automated message (auto-reply, bounce or mailing list)",
    },
    ReasonCode.NO_EMAIL_ADDRESS: {
        "fr": "pas d'adresse électronique : lettre à imprimer",
        "nl": "geen e-mailadres: brief af te drukken",
        "de": "keine E-Mail-Adresse: Brief zu drucken",
        "en": "no email address: letter to print",
    },
    ReasonCode.NO_USABLE_ADDRESS: {
        "fr": "aucune adresse utilisable",
        "nl": "geen bruikbaar adres",
        "de": "keine verwendbare Adresse",
        "en": "no usable address",
    },
    ReasonCode.OWN_ADDRESS: {
        "fr": "une de nos propres adresses",
        "nl": "een van onze eigen adressen",
        "de": "eine unserer eigenen Adressen",
        "en": "one of our own addresses",
    },
    ReasonCode.STAFF_ADDRESS: {
        "fr": "adresse d'un agent (transfert pour le compte d'un citoyen)",
        "nl": "adres van een medewerker (doorgestuurd namens een burger)",
        "de": "Adresse eines Mitarbeiters (im Auftrag eines Bürgers weitergeleitet)",
        "en": "staff address (forwarded on behalf of a citizen)",
    },
    ReasonCode.MACHINE_ADDRESS: {
        "fr": "adresse d'un automate",
        "nl": "adres van een automaat",
        "de": "Adresse eines Automaten",
        "en": "machine address",
    },
    ReasonCode.EMAIL_UNDELIVERABLE: {
        "fr": "courriel non distribuable : lettre à imprimer",
        "nl": "e-mail onbestelbaar: brief af te drukken",
        "de": "E-Mail unzustellbar: Brief zu drucken",
        "en": "email undeliverable: letter to print",
    },
    ReasonCode.ADDRESS_FLAGGED: {
        "fr": "adresse signalée comme non distribuable",
        "nl": "adres gemarkeerd als onbestelbaar",
        "de": "Adresse als unzustellbar markiert",
        "en": "address flagged undeliverable",
    },
    ReasonCode.RATE_LIMITED: {
        "fr": "limite journalière d'avis atteinte pour cette adresse",
        "nl": "daglimiet van berichten voor dit adres bereikt",
        "de": "Tageshöchstzahl an Nachrichten für diese Adresse erreicht",
        "en": "daily notice limit reached for this address",
    },
    ReasonCode.ACKNOWLEDGMENT_LIMIT: {
        "fr": "limite d'accusés de réception sur 24 heures atteinte pour cette adresse",
        "nl": "limiet van ontvangstbevestigingen per 24 uur bereikt voor dit adres",
        "de": "Höchstzahl an Eingangsbestätigungen in 24 Stunden für diese Adresse erreicht",
        "en": "acknowledgment limit per 24 hours reached for this address",
    },
    ReasonCode.ACKNOWLEDGMENT_SUPPRESSED: {
        "fr": "pas d'accusé de réception automatique, décidé à la réception du message",
        "nl": "geen automatische ontvangstbevestiging, beslist bij de ontvangst van het bericht",
        "de": "keine automatische Eingangsbestätigung, beim Eingang der Nachricht entschieden",
        "en": "no automatic acknowledgment, decided when the message was received",
    },
    ReasonCode.UNSAFE_ADDRESS: {
        "fr": "adresse refusée (format dangereux)",
        "nl": "adres geweigerd (onveilig formaat)",
        "de": "Adresse abgelehnt (unsicheres Format)",
        "en": "address refused (unsafe form)",
    },
    ReasonCode.RECIPIENT_REFUSED: {
        "fr": "destinataire refusé par le relais",
        "nl": "ontvanger geweigerd door de relay",
        "de": "Empfänger vom Relay abgelehnt",
        "en": "recipient refused by the relay",
    },
    ReasonCode.RELAY_REFUSED: {
        "fr": "le relais refuse nos envois (configuration à vérifier)",
        "nl": "de relay weigert onze berichten (configuratie nakijken)",
        "de": "das Relay lehnt unsere Sendungen ab (Konfiguration prüfen)",
        "en": "the relay refuses our mail (check the set-up)",
    },
    ReasonCode.RELAY_DEFERRED: {
        "fr": "relais indisponible ou envoi différé, nouvel essai prévu",
        "nl": "relay onbereikbaar of verzending uitgesteld, nieuwe poging gepland",
        "de": "Relay nicht erreichbar oder Versand verschoben, neuer Versuch geplant",
        "en": "relay unavailable or sending deferred, retry scheduled",
    },
    ReasonCode.INTERNAL_ERROR: {
        "fr": "erreur interne, nouvel essai prévu",
        "nl": "interne fout, nieuwe poging gepland",
        "de": "interner Fehler, neuer Versuch geplant",
        "en": "internal error, retry scheduled",
    },
    ReasonCode.GAVE_UP: {
        "fr": "abandon après le délai de nouvelles tentatives",
        "nl": "opgegeven na de termijn voor nieuwe pogingen",
        "de": "nach Ablauf der Wiederholungsfrist aufgegeben",
        "en": "gave up after the retry deadline",
    },
    ReasonCode.BOUNCE: {
        "fr": "rapport de non-remise reçu",
        "nl": "onbestelbaarheidsbericht ontvangen",
        "de": "Unzustellbarkeitsbericht erhalten",
        "en": "bounce received",
    },
}


def reason(code: ReasonCode, detail: str | None = None) -> str:
    """The stored form: `code` or `code: detail`."""
    detail = (detail or "").strip()
    return f"{code.value}: {detail}" if detail else code.value


def parse_reason(stored: str | None) -> tuple[ReasonCode | None, str]:
    if not stored:
        return None, ""
    head, separator, detail = stored.partition(":")
    try:
        return ReasonCode(head.strip()), detail.strip() if separator else ""
    except ValueError:
        return None, stored


def describe_reason(stored: str | None, language: str = "fr") -> str:
    """What staff read: the translated text of the code, then the technical detail."""
    code, detail = parse_reason(stored)
    if code is None:
        return detail
    texts = _TEXTS[code]
    text = texts.get(language, texts["fr"])
    return f"{text} ({detail})" if detail else text
