"""What staff read when a scanned letter is refused: every problem message, French first, then Dutch, German and
English (the languages of the Belgian and French services we serve).

A problem is stored as a stable English code with its parameters (`letters.LetterProblem`); the reason files are
written in `OMBUDSDESK_LETTERS_STAFF_LANGUAGE`, the logs in English. An unknown language falls back to French.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("fr", "nl", "de", "en")
DEFAULT_LANGUAGE = "fr"

MESSAGES: Mapping[str, Mapping[str, str]] = {
    # Fields
    "missing": {
        "fr": "manquant (obligatoire)",
        "nl": "ontbreekt (verplicht)",
        "de": "fehlt (Pflichtangabe)",
        "en": "missing (required)",
    },
    "unknown_field": {
        "fr": "champ inconnu (noms acceptés : docs/intake-letters.md)",
        "nl": "onbekend veld (aanvaarde namen: docs/intake-letters.md)",
        "de": "unbekanntes Feld (zulässige Namen: docs/intake-letters.md)",
        "en": "unknown field (accepted names: docs/intake-letters.md)",
    },
    "too_long": {
        "fr": "plus de {limit} caractères",
        "nl": "langer dan {limit} tekens",
        "de": "länger als {limit} Zeichen",
        "en": "longer than {limit} characters",
    },
    "not_email": {
        "fr": "'{value}' n'est pas une adresse e-mail",
        "nl": "'{value}' is geen e-mailadres",
        "de": "'{value}' ist keine E-Mail-Adresse",
        "en": "'{value}' is not an email address",
    },
    "bad_language": {
        "fr": "'{value}' n'est pas l'une des langues {choices}",
        "nl": "'{value}' is niet een van de talen {choices}",
        "de": "'{value}' ist keine der Sprachen {choices}",
        "en": "'{value}' is not one of {choices}",
    },
    "not_date": {
        "fr": "'{value}' n'est pas une date (écrire AAAA-MM-JJ ou JJ/MM/AAAA)",
        "nl": "'{value}' is geen datum (schrijf JJJJ-MM-DD of DD/MM/JJJJ)",
        "de": "'{value}' ist kein Datum (JJJJ-MM-TT oder TT/MM/JJJJ schreiben)",
        "en": "'{value}' is not a date (write it as YYYY-MM-DD or DD/MM/YYYY)",
    },
    "after_receipt": {
        "fr": "{value} est après la date de réception {received}",
        "nl": "{value} valt na de ontvangstdatum {received}",
        "de": "{value} liegt nach dem Eingangsdatum {received}",
        "en": "{value} is after the receipt date {received}",
    },
    "not_yes_no": {
        "fr": "'{value}' n'est ni oui ni non",
        "nl": "'{value}' is geen ja of nee",
        "de": "'{value}' ist weder ja noch nein",
        "en": "'{value}' is neither yes nor no",
    },
    "future": {
        "fr": "{value} est dans le futur",
        "nl": "{value} ligt in de toekomst",
        "de": "{value} liegt in der Zukunft",
        "en": "{value} is in the future",
    },
    "postmark_after_receipt": {
        "fr": "{value} est postérieure à la date de réception {received}",
        "nl": "{value} ligt na de ontvangstdatum {received}",
        "de": "{value} liegt nach dem Eingangsdatum {received}",
        "en": "{value} is after the date received {received}",
    },
    "postmark_too_old": {
        "fr": "{value} est plus d'un an avant la date de réception {received}",
        "nl": "{value} ligt meer dan een jaar voor de ontvangstdatum {received}",
        "de": "{value} liegt mehr als ein Jahr vor dem Eingangsdatum {received}",
        "en": "{value} is more than a year before the date received {received}",
    },
    "not_whole_number": {
        "fr": "'{value}' n'est pas un nombre entier",
        "nl": "'{value}' is geen geheel getal",
        "de": "'{value}' ist keine ganze Zahl",
        "en": "'{value}' is not a whole number",
    },
    "pages_out_of_range": {
        "fr": "{value} n'est pas compris entre 1 et {limit}",
        "nl": "{value} ligt niet tussen 1 en {limit}",
        "de": "{value} liegt nicht zwischen 1 und {limit}",
        "en": "{value} is not between 1 and {limit}",
    },
    "pages_mismatch": {
        "fr": "{value} déclarée(s) mais le PDF a {actual} page(s)",
        "nl": "{value} opgegeven maar de PDF heeft {actual} pagina('s)",
        "de": "{value} angegeben, aber das PDF hat {actual} Seite(n)",
        "en": "{value} declared but the PDF has {actual} page(s)",
    },
    # Files of the drop folder
    "bad_json": {
        "fr": "JSON UTF-8 invalide : {error}",
        "nl": "ongeldige UTF-8-JSON: {error}",
        "de": "ungültiges UTF-8-JSON: {error}",
        "en": "not valid UTF-8 JSON: {error}",
    },
    "not_json_object": {
        "fr": "doit contenir un seul objet JSON de paires champ : valeur",
        "nl": "moet één JSON-object met veld: waarde-paren bevatten",
        "de": "muss ein einziges JSON-Objekt mit Feld: Wert-Paaren enthalten",
        "en": "must hold one JSON object of field: value pairs",
    },
    "bad_text": {
        "fr": "texte ni UTF-8 ni Windows-1252 : {error}",
        "nl": "tekst is noch UTF-8 noch Windows-1252: {error}",
        "de": "Text ist weder UTF-8 noch Windows-1252: {error}",
        "en": "neither UTF-8 nor Windows-1252 text: {error}",
    },
    "no_file_column": {
        "fr": "la ligne d'en-tête n'a pas de colonne 'file' (ou 'fichier') nommant chaque PDF",
        "nl": "de kopregel heeft geen kolom 'file' (of 'fichier') die elke PDF noemt",
        "de": "die Kopfzeile hat keine Spalte 'file' (oder 'fichier') mit dem Namen jedes PDF",
        "en": "the header line has no 'file' column naming each PDF",
    },
    "empty_manifest": {
        "fr": "aucun courrier n'est listé",
        "nl": "er staat geen enkele brief in",
        "de": "kein Brief aufgeführt",
        "en": "no letter listed",
    },
    "pdf_missing": {
        "fr": "le PDF {name} est absent",
        "nl": "de PDF {name} ontbreekt",
        "de": "das PDF {name} fehlt",
        "en": "the PDF {name} is missing",
    },
    "not_pdf": {
        "fr": "ce n'est pas un fichier PDF",
        "nl": "dit is geen PDF-bestand",
        "de": "dies ist keine PDF-Datei",
        "en": "not a PDF file",
    },
    "not_plain_name": {
        "fr": "'{value}' doit être le nom d'un PDF du dossier de dépôt lui-même",
        "nl": "'{value}' moet de naam zijn van een PDF in de afgiftemap zelf",
        "de": "'{value}' muss der Name eines PDF im Ablageordner selbst sein",
        "en": "'{value}' must be the name of a PDF in the drop folder itself",
    },
    "listed_twice": {
        "fr": "{value} est listé deux fois",
        "nl": "{value} staat er twee keer in",
        "de": "{value} ist zweimal aufgeführt",
        "en": "{value} is listed twice",
    },
    "not_in_folder": {
        "fr": "{value} n'est pas dans le dossier de dépôt",
        "nl": "{value} staat niet in de afgiftemap",
        "de": "{value} ist nicht im Ablageordner",
        "en": "{value} is not in the drop folder",
    },
    "same_scan": {
        "fr": "{value} est le même scan que {other}",
        "nl": "{value} is dezelfde scan als {other}",
        "de": "{value} ist derselbe Scan wie {other}",
        "en": "{value} is the same scan as {other}",
    },
    "no_metadata": {
        "fr": "pas de métadonnées : ni fichier {name}, ni manifeste CSV qui le liste",
        "nl": "geen metadata: geen bestand {name} en geen CSV-manifest dat het vermeldt",
        "de": "keine Metadaten: weder eine Datei {name} noch ein CSV-Manifest, das es aufführt",
        "en": "no metadata: no {name} sidecar and no CSV manifest lists it",
    },
    "not_a_letter": {
        "fr": "pas un courrier : seuls des PDF avec un fichier .json ou un manifeste .csv sont repris",
        "nl": "geen brief: alleen PDF's met een .json-bestand of een .csv-manifest worden opgenomen",
        "de": "kein Brief: nur PDFs mit einer .json-Datei oder einem .csv-Manifest werden übernommen",
        "en": "not a letter: only PDF files with a .json sidecar or a .csv manifest are taken in",
    },
    "symlink": {
        "fr": "lien symbolique refusé : déposer le fichier lui-même (sa cible n'a été ni lue ni déplacée)",
        "nl": "symbolische koppeling geweigerd: plaats het bestand zelf (het doel is niet gelezen of verplaatst)",
        "de": "symbolischer Link abgelehnt: die Datei selbst ablegen (ihr Ziel wurde weder gelesen noch verschoben)",
        "en": "symbolic link refused: drop the file itself (its target was neither read nor moved)",
    },
    "not_regular_file": {
        "fr": "pas un fichier ordinaire (tube, périphérique…) : refusé sans être lu",
        "nl": "geen gewoon bestand (pipe, apparaat…): geweigerd zonder te lezen",
        "de": "keine gewöhnliche Datei (Pipe, Gerät…): abgelehnt, ohne gelesen zu werden",
        "en": "not a regular file (pipe, device…): refused without being read",
    },
    "hard_link": {
        "fr": "fichier à plusieurs noms (lien physique) refusé sans être lu : déposer une copie du fichier",
        "nl": "bestand met meerdere namen (harde koppeling) geweigerd zonder te lezen: plaats een kopie ervan",
        "de": "Datei mit mehreren Namen (harter Link) abgelehnt, ohne gelesen zu werden: eine Kopie der Datei ablegen",
        "en": "file with several names (hard link) refused without being read: drop a copy of the file",
    },
    # Scan-to-email
    "unreadable_mail": {
        "fr": "e-mail illisible : {error}",
        "nl": "onleesbare e-mail: {error}",
        "de": "unlesbare E-Mail: {error}",
        "en": "unreadable e-mail: {error}",
    },
    "no_pdf_attached": {
        "fr": "aucun PDF en pièce jointe",
        "nl": "geen PDF als bijlage",
        "de": "kein PDF angehängt",
        "en": "no PDF attached",
    },
    "several_pdfs": {
        "fr": "{count} PDF joints : un seul courrier par e-mail",
        "nl": "{count} PDF's als bijlage: één brief per e-mail",
        "de": "{count} PDFs angehängt: ein Brief pro E-Mail",
        "en": "{count} PDFs attached: send one letter per e-mail",
    },
    "several_json": {
        "fr": "plus d'une pièce jointe JSON de métadonnées",
        "nl": "meer dan één JSON-bijlage met metadata",
        "de": "mehr als ein JSON-Anhang mit Metadaten",
        "en": "more than one JSON metadata attachment",
    },
    "no_body_metadata": {
        "fr": "pas de métadonnées : écrire des lignes « clé: valeur » dans le corps ou joindre un fichier JSON",
        "nl": "geen metadata: schrijf regels 'sleutel: waarde' in de tekst of voeg een JSON-bestand toe",
        "de": "keine Metadaten: Zeilen 'Schlüssel: Wert' in den Text schreiben oder eine JSON-Datei anhängen",
        "en": "no metadata: write `key: value` lines in the body or attach a JSON file",
    },
    "scan_sender_not_authorised": {
        "fr": "l'expéditeur {sender} n'est pas un copieur autorisé (OMBUDSDESK_LETTERS_SCAN_SENDERS)",
        "nl": "de afzender {sender} is geen toegelaten kopieerapparaat (OMBUDSDESK_LETTERS_SCAN_SENDERS)",
        "de": "der Absender {sender} ist kein zugelassenes Kopiergerät (OMBUDSDESK_LETTERS_SCAN_SENDERS)",
        "en": "the sender {sender} is not an authorised copier (OMBUDSDESK_LETTERS_SCAN_SENDERS)",
    },
    "scan_not_authenticated": {
        "fr": "un scan n'est accepté que par le port de soumission authentifié (SMTP AUTH) ou une boîte IMAP du "
              "personnel",
        "nl": "een scan wordt alleen aanvaard via de geauthenticeerde verzendpoort (SMTP AUTH) of een "
              "IMAP-postvak van het personeel",
        "de": "ein Scan wird nur über den authentifizierten Einlieferungsport (SMTP AUTH) oder ein IMAP-Postfach "
              "des Personals angenommen",
        "en": "a scan is accepted only over the authenticated submission port (SMTP AUTH) or from a staff IMAP "
              "mailbox",
    },
    # Where, and the headers of the reason files
    "line": {"fr": "ligne {number}", "nl": "regel {number}", "de": "Zeile {number}", "en": "line {number}"},
    "folder_reason_header": {
        "fr": "Refusé le {stamp} : {count} problème(s). Corrigez-les et déposez à nouveau les fichiers.",
        "nl": "Geweigerd op {stamp}: {count} probleem/problemen. Verbeter ze en zet de bestanden opnieuw neer.",
        "de": "Abgelehnt am {stamp}: {count} Problem(e). Bitte beheben und die Dateien erneut ablegen.",
        "en": "Rejected {stamp}: {count} problem(s); fix them and drop the files again.",
    },
    "scan_reason_header": {
        "fr": "Courrier scanné reçu par e-mail et refusé le {stamp} : {count} problème(s). "
              "Corrigez les métadonnées et renvoyez-le.",
        "nl": "Gescande brief per e-mail ontvangen en geweigerd op {stamp}: {count} probleem/problemen. "
              "Verbeter de metadata en stuur hem opnieuw.",
        "de": "Per E-Mail eingegangener Scan am {stamp} abgelehnt: {count} Problem(e). "
              "Bitte die Metadaten berichtigen und erneut senden.",
        "en": "Scanned letter received by e-mail and rejected {stamp}: {count} problem(s); "
              "fix the metadata and send it again.",
    },
}


def render(code: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The message in `language` (French when unknown); an unknown code shows itself rather than failing."""
    texts = MESSAGES.get(code)
    if texts is None:
        return code
    template = texts.get(language) or texts[DEFAULT_LANGUAGE]
    return template.format(**params)
