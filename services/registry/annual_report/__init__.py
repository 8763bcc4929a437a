"""The published annual report (issue 17): the annual indicators laid out for people, with charts and their tables,
the previous year beside each figure, an editable introduction, in FR/NL/DE/EN, as an HTML page or a PDF.

- `content.py`: what the report says (pure: indicators in, sections of tables out);
- `charts.py`: the tables as SVG bar charts (matplotlib);
- `rendering.py`: the page (Jinja2) and the PDF (WeasyPrint);
- `publication.py`: reading the two years' indicators and the introduction from the register, for the CLI
  (`ombudsdesk report`) and the back office.
"""
