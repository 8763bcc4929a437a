"""Charts of the annual report, drawn on the server as SVG with matplotlib (no JavaScript, no external service).

One horizontal bar chart per table: this year's bars, last year's beside them in a lighter tone, the value written at
the end of each bar so that the chart can be read without the axis. Figures are built with matplotlib's object API
(`Figure`, no `pyplot` global state), so that two reports rendered at once in the back office don't draw into each
other. The SVG keeps its text as text (`svg.fonttype: none`: selectable, and the PDF renders it with the page's
fonts) and is deterministic for a given table (fixed hash salt, no date), so that a report rendered twice is the
same file.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display; set before anything draws

from matplotlib.figure import Figure  # noqa: E402 - after the backend is chosen

from services.registry.annual_report.content import Table, format_value  # noqa: E402

# Colours with a contrast of at least 3:1 against white (WCAG 2.1, 1.4.11 non-text contrast).
THIS_YEAR = "#1f4e79"
PREVIOUS_YEAR = "#6b8fb3"
TEXT = "#1a1a1a"
BAR_HEIGHT = 0.38
ROW_INCHES = 0.42
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "ombudsdesk-annual-report", "font.family": "DejaVu Sans"}


def bar_chart_svg(table: Table, *, this_year: str, previous_year: str, language: str) -> str:
    """The table as an SVG bar chart (a string to inline in the HTML page)."""
    # Every text drawn takes its font when it is created: the whole figure is made inside the context.
    with matplotlib.rc_context(STYLE):
        rows = list(table.rows)
        figure = Figure(figsize=(7.0, 0.9 + ROW_INCHES * max(len(rows), 1) * (1.6 if table.has_previous else 1)))
        axes = figure.add_subplot()
        positions = list(range(len(rows)))
        values = [float(row.value or 0) for row in rows]
        largest = max([*values, *[float(row.previous or 0) for row in rows], 1.0])
        offset = BAR_HEIGHT / 2 if table.has_previous else 0.0
        bars = axes.barh([p - offset for p in positions], values, height=BAR_HEIGHT, color=THIS_YEAR,
                         label=this_year)
        labelled = [(bars, [row.value for row in rows])]
        if table.has_previous:
            before = axes.barh([p + offset for p in positions], [float(row.previous or 0) for row in rows],
                               height=BAR_HEIGHT, color=PREVIOUS_YEAR, label=previous_year)
            labelled.append((before, [row.previous for row in rows]))
            axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False, fontsize=9)
        for container, figures in labelled:
            axes.bar_label(container, labels=[format_value(v, table.unit, language) for v in figures], padding=3,
                           fontsize=9, color=TEXT)
        axes.set_yticks(positions, labels=[row.label for row in rows], fontsize=9, color=TEXT)
        axes.invert_yaxis()  # the first row at the top, as in the table
        axes.set_xlim(0, largest * 1.18)  # room for the value written after the longest bar
        axes.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            axes.spines[side].set_visible(False)
        figure.tight_layout()
        output = io.StringIO()
        figure.savefig(output, format="svg", metadata={"Date": None, "Creator": None})
    svg = output.getvalue()
    # The page embeds the SVG inline: drop the XML prolog and doctype, which are only valid at the start of a file.
    return svg[svg.index("<svg"):]
