"""Printable PDF letters for complainants without an email address (pure: bytes out).

The address block sits where a DL window envelope shows it (C5/6 and DL windows, left, about 45 mm from the top,
as in NBN / DIN 5008 type B layouts), so a folded A4 needs no separate envelope addressing.
"""

from __future__ import annotations

from datetime import date

from fpdf import FPDF

from services.notifier.rendering import long_date

# The core PDF fonts only cover Latin-1: replace the few typographic characters outside it rather than lose text.
_LATIN1_FALLBACKS = str.maketrans({
    "’": "'", "‘": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "…": "...", "œ": "oe", "Œ": "OE",
    "€": "EUR", "\u00a0": " ", "\u202f": " ",
})


def _latin1(text: str) -> str:
    return text.translate(_LATIN1_FALLBACKS).encode("latin-1", errors="replace").decode("latin-1")


def build_letter_pdf(
    *,
    organisation_name: str,
    organisation_address: str,
    recipient_name: str,
    postal_address: str,
    reference: str,
    letter_date: date,
    language: str,
    subject: str,
    body: str,
) -> bytes:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(25, 20, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_title(_latin1(subject))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(90, 5, _latin1(organisation_name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(90, 4.5, _latin1(organisation_address), new_x="LMARGIN", new_y="NEXT")
    # Window-envelope address block.
    pdf.set_xy(25, 50)
    pdf.set_font("Helvetica", "", 11)
    block = "\n".join(line for line in [recipient_name, *postal_address.splitlines()] if line.strip())
    pdf.multi_cell(85, 5, _latin1(block), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(120, 90)
    pdf.cell(65, 5, _latin1(long_date(letter_date, language)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(25, 100)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 5, _latin1(f"Ref. {reference}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 5.5, _latin1(subject), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 5.5, _latin1(body), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
