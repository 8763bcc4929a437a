"""Page counts of scanned letters (letters/metadata.py) read by pypdf, bounded."""

from __future__ import annotations

import io

from pypdf import PdfWriter

from services.intake.letters import metadata
from services.intake.letters.metadata import count_pdf_pages


def pdf(pages: int, compress: bool = False) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if compress:
        writer.compress_identical_objects()
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pages_are_counted_from_the_page_tree():
    assert count_pdf_pages(pdf(3)) == 3


def test_an_incrementally_updated_pdf_is_counted_as_it_now_is():
    writer = PdfWriter(clone_from=io.BytesIO(pdf(2)))
    writer.add_blank_page(width=595, height=842)
    updated = io.BytesIO()
    writer.write(updated)
    assert count_pdf_pages(updated.getvalue()) == 3


def test_what_is_no_readable_pdf_has_no_count():
    assert count_pdf_pages(b"%PDF-1.7\nnot really a pdf") is None
    assert count_pdf_pages(b"\x89PNG\r\n\x1a\n") is None


def test_beyond_the_bounds_the_declared_count_stands(monkeypatch):
    big = pdf(3)
    monkeypatch.setattr(metadata, "MAX_PDF_BYTES", len(big) - 1)
    assert count_pdf_pages(big) is None
    monkeypatch.setattr(metadata, "MAX_PDF_BYTES", 200 * 1024 * 1024)
    monkeypatch.setattr(metadata, "MAX_PAGES", 2)
    assert count_pdf_pages(big) is None
