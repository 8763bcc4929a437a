"""Validation of scanned letters' metadata (pure): every invalid field named with its file, dates, manifests."""

from __future__ import annotations

from datetime import date

import pytest

from services.intake.letters.metadata import (
    LetterInvalid,
    count_pdf_pages,
    letter_message_key,
    looks_like_pdf,
    parse_manifest,
    parse_sidecar,
    validate_letter,
)
from tests.intake.letter_support import make_pdf, metadata

TODAY = date(2026, 11, 24)


def valid_fields(**changes: object) -> dict[str, object]:
    return metadata(**{"postal_address": "Rue de la Loi 16\n1000 Bruxelles", "subject": None, **changes})


def problems_of(fields: dict[str, object], source: str = "scan-001.json", **kwargs: object) -> dict[str, str]:
    with pytest.raises(LetterInvalid) as caught:
        validate_letter(fields, source, today=TODAY, **kwargs)
    assert all(problem.source == source for problem in caught.value.problems)
    return {problem.field: problem.message() for problem in caught.value.problems}


def test_valid_letter_keeps_receipt_date_as_legal_start():
    letter = validate_letter(valid_fields(), "scan-001.json", today=TODAY)
    assert letter.received_on == date(2026, 11, 20)
    assert letter.postmarked_on == date(2026, 11, 18)
    assert letter.pages == 2
    assert letter.email == "jeanne@example.org"
    assert letter.postal_address == "Rue de la Loi 16\n1000 Bruxelles"


def test_french_aliases_and_day_first_dates_are_accepted():
    fields = {"nom": "Jan Peeters", "adresse": "Wetstraat 16, 1000 Brussel", "langue": "NL",
              "date_reception": "20/11/2026", "date_cachet": "18.11.2026", "pages": "1",
              "reference_archive": "A-1", "agent": "m.peeters"}
    letter = validate_letter(fields, "batch.csv", today=TODAY, line=2)
    assert (letter.language, letter.received_on, letter.postmarked_on) == ("nl", date(2026, 11, 20), date(2026, 11, 18))
    assert letter.email is None


def test_every_invalid_field_is_reported_at_once_naming_the_file():
    problems = problems_of(valid_fields(complainant_name="  ", email="jeanne(at)example.org", language="es",
                                        received_on="31/02/2026", pages="deux", archive_reference=None,
                                        colour="blue"))
    assert set(problems) == {"complainant_name", "email", "language", "received_on", "pages", "archive_reference",
                             "colour"}
    assert "missing" in problems["complainant_name"]
    assert "'es'" in problems["language"]
    assert "not a date" in problems["received_on"]
    assert "unknown field" in problems["colour"]


def test_date_consistency():
    assert "future" in problems_of(valid_fields(received_on="2026-11-25", postmarked_on=None))["received_on"]
    assert "after the date received" in problems_of(valid_fields(postmarked_on="2026-11-21"))["postmarked_on"]
    assert "more than a year" in problems_of(valid_fields(postmarked_on="2024-11-21"))["postmarked_on"]


def test_pages_must_match_the_pdf_when_it_can_be_counted():
    assert "PDF has 3" in problems_of(valid_fields(pages=2), pdf_pages=3)["pages"]
    assert "between 1" in problems_of(valid_fields(pages=0))["pages"]
    assert validate_letter(valid_fields(pages=3), "x.json", today=TODAY, pdf_pages=3).pages == 3


def test_pdf_recognised_and_pages_counted():
    content = make_pdf(3)
    assert looks_like_pdf(content)
    assert count_pdf_pages(content) == 3
    assert not looks_like_pdf(b"\x89PNG\r\n")
    assert letter_message_key(content) == letter_message_key(bytes(content))
    assert letter_message_key(content) != letter_message_key(make_pdf(2))


def test_sidecar_must_be_a_json_object():
    assert parse_sidecar(b'\xef\xbb\xbf{"nom": "X"}', "a.json") == {"nom": "X"}
    with pytest.raises(LetterInvalid, match=r"a\.json: \(file\): not valid UTF-8 JSON"):
        parse_sidecar(b"{nom: X", "a.json")
    with pytest.raises(LetterInvalid, match="one JSON object"):
        parse_sidecar(b"[1, 2]", "a.json")


def test_manifest_with_semicolons_names_each_line():
    content = ("fichier;nom;adresse;langue;date_reception;pages;reference_archive;agent\n"
               "a.pdf;Jeanne Dupont;\"Rue X 1\n1000 Bruxelles\";fr;20/11/2026;1;A-1;mp\n"
               ";;;;;;;\n"
               "b.pdf;Jan Peeters;Wetstraat 2;nl;2026-11-21;2;A-2;mp\n").encode("utf-8-sig")
    rows = parse_manifest(content, "batch.csv")
    assert [row.file for row in rows] == ["a.pdf", "b.pdf"]
    assert rows[0].fields["adresse"] == "Rue X 1\n1000 Bruxelles"
    assert (rows[1].source, rows[1].line) == ("batch.csv", 5)
    letter = validate_letter(rows[1].fields, rows[1].source, today=TODAY, line=rows[1].line)
    assert letter.complainant_name == "Jan Peeters"


def test_manifest_without_file_column_is_rejected():
    with pytest.raises(LetterInvalid, match="no 'file' column"):
        parse_manifest(b"name,pages\nX,1\n", "batch.csv")


def test_manifest_saved_by_excel_in_windows_1252_is_read():
    content = "fichier;nom;adresse\na.pdf;Hélène Müller;Rue de l'Église 3\n".encode("cp1252")
    [row] = parse_manifest(content, "batch.csv")
    assert row.fields == {"nom": "Hélène Müller", "adresse": "Rue de l'Église 3"}


def test_problems_read_in_the_staff_language_french_first():
    with pytest.raises(LetterInvalid) as caught:
        validate_letter(valid_fields(pages="deux", staff_member=None), "scan.json", today=TODAY)
    assert caught.value.report("fr") == ("scan.json: staff_member: manquant (obligatoire)\n"
                                         "scan.json: pages: 'deux' n'est pas un nombre entier\n")
    assert "'deux' is geen geheel getal" in caught.value.report("nl")
    assert "'deux' ist keine ganze Zahl" in caught.value.report("de")
    assert caught.value.report("xx") == caught.value.report("fr")


def test_the_facts_screening_uses_can_be_stated_with_the_letter():
    letter = validate_letter(valid_fields(date_faits="03/09/2026", last_step_date="2026-10-01", premiere_ligne="Oui"),
                             "scan-001.json", today=TODAY)
    assert (letter.facts_date, letter.last_step_date, letter.first_line_contacted) == (
        date(2026, 9, 3), date(2026, 10, 1), True)
    assert validate_letter(valid_fields(first_line_contacted="nee"), "x.json", today=TODAY).first_line_contacted is False
    assert validate_letter(valid_fields(), "x.json", today=TODAY).first_line_contacted is None
    problems = problems_of(valid_fields(facts_date="2026-11-21", first_line_contacted="peut-être"))
    assert "after the receipt date 2026-11-20" in problems["facts_date"]
    assert "neither yes nor no" in problems["first_line_contacted"]
