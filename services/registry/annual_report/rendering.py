"""The annual report as a web page (HTML, one self-contained file) or as a PDF laid out from that page by WeasyPrint.

The page inlines its stylesheet and its SVG charts: it can be published as it is, mailed, or archived, with nothing
fetched from elsewhere (WeasyPrint is given no base URL, so nothing is fetched while making the PDF either). Every
chart is a `figure` whose accessible name is its table's caption, followed by the table itself (`th` with scopes), so
that the figures are there for a screen reader and for anyone who wants to reuse them.
"""

from __future__ import annotations

from enum import StrEnum

import jinja2

from services.registry.annual_report.charts import bar_chart_svg
from services.registry.annual_report.content import ReportDocument, format_value


class ReportFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"


_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("services.registry.annual_report", "templates"),
    autoescape=True,  # the introduction and every label are text, never markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(document: ReportDocument) -> str:
    charts = {
        table.key: bar_chart_svg(table, this_year=str(document.year), previous_year=str(document.year - 1),
                                 language=document.language)
        for section in document.sections for table in section.tables if table.chart and table.rows
    }
    paragraphs = [part.strip() for part in document.introduction.split("\n\n") if part.strip()]
    return _environment.get_template("report.html").render(
        document=document, charts=charts, introduction=paragraphs,
        value=lambda number, unit: format_value(number, unit, document.language),
    )


def render_pdf(document: ReportDocument) -> bytes:
    import weasyprint  # loads Pango: imported only when a PDF is asked for

    return weasyprint.HTML(string=render_html(document)).write_pdf()


def render(document: ReportDocument, report_format: ReportFormat) -> bytes:
    if report_format is ReportFormat.PDF:
        return render_pdf(document)
    return render_html(document).encode("utf-8")
