"""Helpers of the letters tests: real PDFs (fpdf2) and a valid set of letter metadata."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF


def make_pdf(pages: int = 1, text: str = "Madame, Monsieur") -> bytes:
    """A real PDF of `pages` pages; `text` makes its bytes (hence its letter key) differ from another's."""
    pdf = FPDF()
    for number in range(pages):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.cell(text=f"{text} - page {number + 1}")
    return bytes(pdf.output())


def metadata(**changes: Any) -> dict[str, Any]:
    """A valid sidecar's fields (received 2026-11-20, two pages), with `changes` applied; None removes a field."""
    fields: dict[str, Any] = {
        "complainant_name": "Jeanne Dupont",
        "postal_address": "Rue de la Loi 16, 1000 Bruxelles",
        "email": "jeanne@example.org",
        "language": "fr",
        "received_on": "2026-11-20",
        "postmarked_on": "2026-11-18",
        "pages": 2,
        "archive_reference": "BOX-2026-117/3",
        "staff_member": "m.peeters",
        "subject": "Facture d'eau contestée",
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}
