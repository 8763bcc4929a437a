"""The published annual report (issue 17): what it says (figures counted here from the generated records, not taken
from the implementation), in four languages, as a self-contained page whose every chart has its table, and as a PDF
made by `ombudsdesk report` from a real register, rendered to images with pdftoppm and read back with pdftotext."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert

from services.registry.annual_report.content import LONGEST_TABLE, build_document, message
from services.registry.annual_report.rendering import render_html, render_pdf
from services.registry.indicators import ComplaintRecord, RecommendationRecord, annual_indicators
from services.registry.models import Complaint
from services.registry.repository import migrate
from shared.database import create_engine
from tests.conftest import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = ("email", "letter", "web_form", "phone")
KINDS = ("complaint", "complaint", "complaint", "question", "suggestion", "compliment")
SERVICES = ("pensions", "taxes", "family_allowances", None)


def generated_year(year: int, count: int, seed: int) -> list[ComplaintRecord]:
    rng = random.Random(seed)
    records = []
    for index in range(count):
        received = date(year, 1, 1) + timedelta(days=rng.randrange(360))
        answered = received + timedelta(days=rng.randrange(10, 60))
        records.append(ComplaintRecord(
            number=f"MED-{year}-{index + 1:05d}", received_on=received, channel=rng.choice(CHANNELS),
            kind=rng.choice(KINDS), status="closed", admissibility=rng.choice(["admissible", "inadmissible"]),
            inadmissibility_reasons=(), redirected_to=None, service=rng.choice(SERVICES), theme=None,
            outcome="founded", outcome_category=None, acknowledgment_due=received + timedelta(days=5),
            acknowledged_on=received + timedelta(days=1), answer_due=received + timedelta(days=45),
            answered_on=answered, ended_on=answered, improvement_actions=()))
    return records


def rows_of(document, table_key: str) -> dict[str, tuple]:
    for section in document.sections:
        for table in section.tables:
            if table.key == table_key:
                return {row.label: (row.value, row.previous) for row in table.rows}
    raise AssertionError(f"no table {table_key}")


def test_the_report_compares_each_channel_with_the_previous_year() -> None:
    this_year, last_year = generated_year(2026, 400, seed=1), generated_year(2025, 250, seed=2)
    document = build_document(annual_indicators(this_year, 2026), annual_indicators(last_year, 2025),
                              language="en", organisation="Test ombudsman")
    expected_now = Counter(record.channel for record in this_year)
    expected_before = Counter(record.channel for record in last_year)
    by_channel = rows_of(document, "by_channel")
    assert by_channel["Email"] == (expected_now["email"], expected_before["email"])
    assert by_channel["Letter"] == (expected_now["letter"], expected_before["letter"])
    assert sum(value for value, _ in by_channel.values()) == 400
    assert sum(previous for _, previous in by_channel.values()) == 250
    assert document.title == "Annual report 2026"
    # No survey and no recommendation yet: those sections are absent, not shown as zeros.
    assert {section.key for section in document.sections} == {
        "received", "admissibility", "redirected", "outcomes", "deadlines", "services"}


def test_a_long_table_keeps_its_largest_rows_and_sums_the_rest() -> None:
    services = {f"service-{index:02d}": index + 1 for index in range(30)}  # 30 services, 1..30 requests
    indicators = annual_indicators([], 2026)
    indicators["by_service"] = services
    document = build_document(indicators, None, language="fr", organisation="x")
    rows = rows_of(document, "by_service")
    assert len(rows) == LONGEST_TABLE
    assert rows[message("others", "fr")][0] == sum(range(1, 30 - LONGEST_TABLE + 2))  # the 16 smallest
    assert rows["service-29"][0] == 30
    assert sum(value for value, _ in rows.values()) == sum(services.values())


@pytest.mark.parametrize(("language", "title", "heading"), [
    ("fr", "Rapport annuel 2026", "Les demandes reçues"),
    ("nl", "Jaarverslag 2026", "Ontvangen aanvragen"),
    ("de", "Jahresbericht 2026", "Eingegangene Anliegen"),
    ("en", "Annual report 2026", "What we received"),
])
def test_the_page_is_self_contained_translated_and_every_chart_has_its_table(language: str, title: str,
                                                                             heading: str) -> None:
    document = build_document(annual_indicators(generated_year(2026, 120, seed=3), 2026),
                              annual_indicators(generated_year(2025, 90, seed=4), 2025), language=language,
                              organisation="Médiateur <b>test</b>",
                              introduction="Premier paragraphe <script>alert(1)</script>.\n\nSecond paragraphe.")
    page = render_html(document)
    assert f'<html lang="{language}">' in page
    assert f"<h1>{title}</h1>" in page and heading in page
    # Text is text: the organisation's name and the introduction are escaped, never markup.
    assert "<script>" not in page and "&lt;script&gt;" in page and "Médiateur &lt;b&gt;test&lt;/b&gt;" in page
    assert page.count("<p>Second paragraphe.</p>") == 1
    # Nothing is fetched from elsewhere: no external stylesheet, script, image or font.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page
    # Each chart (a figure with an accessible name) is followed by the table of its figures.
    figures = re.findall(r'<figure role="img" aria-label="[^"]+">(.*?)</figure>\s*<table>', page, re.S)
    assert len(figures) == page.count("<figure") >= 8
    assert all("<svg" in figure for figure in figures)


def _register_rows(records: list[ComplaintRecord]) -> list[dict[str, object]]:
    created = datetime(2026, 11, 1, tzinfo=timezone.utc)
    return [{
        "number": record.number, "year": record.received_on.year, "sequence": int(record.number[-5:]),
        "message_key": f"report-{record.number}", "kind": record.kind, "channel": record.channel,
        "received_at": datetime.combine(record.received_on, time(9), timezone.utc),
        "legal_start": record.received_on, "complainant_name": "N", "complainant_email": None,
        "subject_line": "s", "body": "b", "attachments": [], "admissibility": record.admissibility,
        "admissibility_reasons": [], "status": "closed", "acknowledgment_due": record.acknowledgment_due,
        "answer_due": record.answer_due, "answer_extended": False, "paused_days": 0,
        "acknowledged_at": datetime.combine(record.acknowledged_on, time(10), timezone.utc),
        "answered_at": datetime.combine(record.answered_on, time(10), timezone.utc),
        "closed_at": datetime.combine(record.ended_on, time(10), timezone.utc), "outcome": "founded",
        "service_concerned": record.service, "recommendations": [], "automated": False,
        "created_at": created, "updated_at": created,
    } for record in records]


async def test_ombudsdesk_report_writes_a_pdf_whose_pages_render_and_read_in_dutch(tmp_path: Path) -> None:
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        require_or_skip("poppler-utils (pdftoppm, pdftotext) missing; make test installs it")
    this_year, last_year = generated_year(2026, 300, seed=5), generated_year(2025, 200, seed=6)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.execute(insert(Complaint), _register_rows(this_year + last_year))
    finally:
        await engine.dispose()
    introduction = tmp_path / "intro.txt"
    introduction.write_text("Een woord vooraf van de ombudsman.\n\nTweede alinea.", encoding="utf-8")
    output = tmp_path / "jaarverslag.pdf"
    environment = {**os.environ, "OMBUDSDESK_VAR_DIR": str(tmp_path),
                   "OMBUDSDESK_ORGANISATION_NAME_TRANSLATIONS": '{"nl": "Ombudsdienst Test"}'}
    result = subprocess.run(
        [sys.executable, "-m", "ombudsdesk", "report", "2026", "--format", "pdf", "--language", "nl",
         "--output", str(output), "--introduction", str(introduction)],
        capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert output.read_bytes().startswith(b"%PDF-")

    pages = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(output), str(pages)], check=True, timeout=60)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) >= 3
    assert all(image.stat().st_size > 2000 for image in images)  # drawn pages, not blank ones
    text = subprocess.run(["pdftotext", "-layout", str(output), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "Jaarverslag 2026" in text and "Ombudsdienst Test" in text and "Een woord vooraf" in text
    assert "In 2026 ontving de dienst 300 aanvragen (vorig jaar: 200)." in text
    email_now = sum(1 for record in this_year if record.channel == "email")
    email_before = sum(1 for record in last_year if record.channel == "email")
    assert re.search(rf"E-mail\s+{email_now}\s+{email_before}", text), "the channel table's row, both years"
    if os.environ.get("OMBUDSDESK_SCREENSHOTS") == "docs":
        target = ROOT / "docs" / "screenshots"
        subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "2", "-l", "2", "-singlefile", str(output),
                        str(target / "annual-report-nl-page-2")], check=True, timeout=60)


@pytest.mark.parametrize(("language", "title", "sentence"), [
    ("fr", "Rapport annuel 2026", "le service a reçu 120 demandes"),
    ("nl", "Jaarverslag 2026", "ontving de dienst 120 aanvragen"),
    ("de", "Jahresbericht 2026", "gingen 120 Anliegen ein"),
    ("en", "Annual report 2026", "the service received 120 requests"),
])
def test_the_pdf_reads_in_each_language(tmp_path: Path, language: str, title: str, sentence: str) -> None:
    if not shutil.which("pdftotext"):
        require_or_skip("poppler-utils (pdftotext) missing; make test installs it")
    document = build_document(annual_indicators(generated_year(2026, 120, seed=7), 2026),
                              annual_indicators(generated_year(2025, 80, seed=8), 2025), language=language,
                              organisation="Ombuds")
    pdf = tmp_path / f"report-{language}.pdf"
    pdf.write_bytes(render_pdf(document))
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True,
                                   timeout=60).stdout.split())
    assert title in text and sentence in text


def test_recommendations_by_addressee_show_each_addressee_s_total() -> None:
    """`recommendations.by_service` holds each addressee's counts by status: the report's row (and bar) is its total
    (the page once failed to draw such a table: a count per status is no number)."""
    this_year = [RecommendationRecord(date(2026, 3, day), status, addressee) for day, status, addressee in (
        (1, "pending", "SPF Finances"), (2, "refused", "SPF Finances"), (3, "implemented", "SPF Finances"),
        (4, "accepted", "Actiris"))]
    last_year = [RecommendationRecord(date(2025, 5, 1), "implemented", "SPF Finances")]
    document = build_document(annual_indicators([], 2026, recommendations=this_year),
                              annual_indicators([], 2025, recommendations=last_year), language="en",
                              organisation="Test ombudsman")
    assert rows_of(document, "recommendations_by_service") == {"SPF Finances": (3, 1), "Actiris": (1, 0)}
    page = render_html(document)
    assert re.search(r"<th[^>]*>SPF Finances</th>\s*<td[^>]*>3</td>\s*<td[^>]*>1</td>", page), "its table row"
