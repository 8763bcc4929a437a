"""`ombudsdesk report YEAR`: the published annual report of a year, as an HTML page or a PDF, in FR/NL/DE/EN.

It reads the register directly (like `ombudsdesk register indicators`): figures only, no personal data. The
introduction comes from `--introduction FILE` (plain text, paragraphs separated by blank lines).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from services.registry.annual_report.publication import annual_report_document
from services.registry.annual_report.rendering import ReportFormat, render
from services.registry.handlers.ports import RegisterClock, utc_now
from services.registry.repository import RegistryStore, migrate
from services.registry.settings import RegistrySettings
from services.registry.vocabulary import Language
from services.registry.wiring import policy_from_settings
from shared.cli_help import one_of
from shared.database import create_engine
from shared.settings import load_settings

# Introductions longer than this are refused: a report's foreword, not a document smuggled into it.
MAX_INTRODUCTION_CHARACTERS = 20_000


def report(year: int = typer.Argument(..., metavar="YEAR", min=2000, max=2999, help="e.g. 2026"),
           report_format: ReportFormat = typer.Option(ReportFormat.HTML, "--format", metavar="FORMAT",
                                                      help=one_of(ReportFormat)),
           language: Language = typer.Option(Language.FR, "--language", metavar="LANG", help=one_of(Language)),
           output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="where to write the report"),
           introduction: Path | None = typer.Option(None, "--introduction", metavar="FILE",
                                                    help="a plain-text introduction (blank lines between paragraphs)"),
           ) -> None:
    """The published annual report of a year: indicators with charts and tables, the previous year beside them."""
    intro_text = ""
    if introduction is not None:
        intro_text = introduction.read_text(encoding="utf-8")
        if len(intro_text) > MAX_INTRODUCTION_CHARACTERS:
            typer.echo(f"the introduction is longer than {MAX_INTRODUCTION_CHARACTERS} characters", err=True)
            raise typer.Exit(2)
    settings = load_settings(RegistrySettings)

    async def build() -> bytes:
        policy = policy_from_settings(settings)
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            document = await annual_report_document(
                RegistryStore(engine), year, policy.timezone, language=language.value,
                organisation=settings.localized_organisation_name(language.value), introduction=intro_text,
                screening=policy.screening,
                today=RegisterClock(utc_now, policy.timezone).today())
        finally:
            await engine.dispose()
        # Charts and PDF layout are CPU work: off the event loop (nothing else runs here, but the habit is kept).
        return await asyncio.to_thread(render, document, report_format)

    content = asyncio.run(build())
    output.write_bytes(content)
    typer.echo(f"{output} ({report_format.value}, {language.value}, {len(content):,} bytes)")
