"""The introduction of each year's published report, per language, as staff wrote it in the back office (table
`annual_report_introductions`, migration 0015): the foreword a mediator writes each year above the figures."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from services.registry.models import Base

# A report's foreword, not a document smuggled into it; the form and the CLI refuse longer texts.
MAX_INTRODUCTION_CHARACTERS = 20_000


class AnnualReportIntroduction(Base):
    __tablename__ = "annual_report_introductions"

    year: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(2), primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class IntroductionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, year: int, language: str) -> str:
        async with self.engine.connect() as connection:
            text = await connection.scalar(select(AnnualReportIntroduction.text).where(
                AnnualReportIntroduction.year == year, AnnualReportIntroduction.language == language))
        return text or ""

    async def put(self, year: int, language: str, text: str, *, actor: str) -> None:
        if len(text) > MAX_INTRODUCTION_CHARACTERS:
            raise ValueError(f"longer than {MAX_INTRODUCTION_CHARACTERS} characters")
        now = datetime.now(timezone.utc)
        async with self.engine.begin() as connection:
            changed = await connection.execute(
                AnnualReportIntroduction.__table__.update()
                .where(AnnualReportIntroduction.year == year, AnnualReportIntroduction.language == language)
                .values(text=text, updated_by=actor, updated_at=now))
            if not changed.rowcount:
                await connection.execute(AnnualReportIntroduction.__table__.insert().values(
                    year=year, language=language, text=text, updated_by=actor, updated_at=now))
