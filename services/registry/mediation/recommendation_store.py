"""Database side of recommendations followed up (issue 15; the rules are `recommendations.py`): the rows a handler
reads inside its transaction, and the read-only queries of the back office, the CLI and the annual indicators.

Every query is bounded: the watcher's sweep reads a page of due reviews through `ix_recommendations_status_review_date`
(open statuses, review date reached); the list reads a page in id order, filtered by status (same index) or
addressee (`ix_recommendations_addressee`); the indicators group the year's recommendations found by
`ix_recommendations_issued_on`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select

from services.registry.access.roles import VisibilityScope
from services.registry.models import Administration, Complaint, Recommendation
from services.registry.mediation.recommendations import FINAL, FollowUp
from services.registry.repository import RegistryStore, Transaction, scope_condition

__all__ = ["RecommendationFilter", "RecommendationRow", "addressees", "administration_name", "by_id",
           "by_request_key", "due_reviews", "indicator_groups", "list_recommendations", "of_complaint"]

OPEN_STATUSES = tuple(s.value for s in FollowUp if s not in FINAL)


# --- inside a handler's transaction ----------------------------------------------------------------------------------
async def by_id(tx: Transaction, recommendation_id: int, *, for_update: bool = False) -> Recommendation | None:
    query = select(Recommendation).where(Recommendation.id == recommendation_id)
    if for_update:
        query = query.with_for_update()
    return (await tx.session.execute(query)).scalar_one_or_none()


async def by_request_key(tx: Transaction, request_key: str) -> Recommendation | None:
    query = select(Recommendation).where(Recommendation.request_key == request_key)
    return (await tx.session.execute(query)).scalar_one_or_none()


async def administration_name(tx: Transaction, administration_id: int) -> str | None:
    """The name of a directory entry (`administrations`, issue 15), None if there is no such entry."""
    query = select(Administration.name).where(Administration.id == administration_id)
    return (await tx.session.execute(query)).scalar_one_or_none()


async def due_reviews(tx: Transaction, today: date, *, after_id: int, limit: int
                      ) -> list[tuple[Recommendation, Complaint | None]]:
    """Open recommendations whose review date has come and whose reminder for it has not gone out, in id order from
    `after_id`, locked, each with its file (None: a general one)."""
    query = (select(Recommendation, Complaint)
             .outerjoin(Complaint, Complaint.id == Recommendation.complaint_id)
             .where(Recommendation.status.in_(OPEN_STATUSES), Recommendation.review_date <= today,
                    or_(Recommendation.reminded_for.is_(None), Recommendation.reminded_for != Recommendation.review_date),
                    Recommendation.id > after_id)
             .order_by(Recommendation.id).limit(limit).with_for_update(of=Recommendation))
    return [(recommendation, complaint) for recommendation, complaint in (await tx.session.execute(query)).all()]


# --- read-only queries -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecommendationRow:
    """A recommendation as lists show it: the row, and its file's number (None: general)."""

    recommendation: Recommendation
    number: str | None


@dataclass(frozen=True)
class RecommendationFilter:
    """The list's filters: follow-up status, addressee (exact name), general only; `scope`: what the reader may see
    of file-tied recommendations (a general one is visible to whoever reads files)."""

    status: str | None = None
    addressee: str | None = None
    general_only: bool = False
    recommendation_id: int | None = None
    scope: VisibilityScope | None = None
    limit: int = 50
    offset: int = 0


def _visible(store: RegistryStore, scope: VisibilityScope | None) -> Any | None:
    if scope is None:
        return None
    admitted = scope_condition(Complaint, scope, store.engine.dialect.name)
    return None if admitted is None else or_(Recommendation.complaint_id.is_(None), admitted)


async def list_recommendations(store: RegistryStore, criteria: RecommendationFilter) -> list[RecommendationRow]:
    """A page of recommendations, newest first, with their files' numbers."""
    query = select(Recommendation, Complaint.number).outerjoin(Complaint, Complaint.id == Recommendation.complaint_id)
    conditions = []
    if criteria.status:
        conditions.append(Recommendation.status == criteria.status)
    if criteria.addressee:
        conditions.append(Recommendation.addressee == criteria.addressee)
    if criteria.general_only:
        conditions.append(Recommendation.complaint_id.is_(None))
    if criteria.recommendation_id is not None:
        conditions.append(Recommendation.id == criteria.recommendation_id)
    visible = _visible(store, criteria.scope)
    if visible is not None:
        conditions.append(visible)
    query = (query.where(and_(*conditions)) if conditions else query).order_by(Recommendation.id.desc())
    async with store.reading() as tx:
        session = tx.session
        rows = await session.execute(query.limit(criteria.limit).offset(criteria.offset))
        return [RecommendationRow(recommendation, number) for recommendation, number in rows.all()]


async def of_complaint(store: RegistryStore, complaint_id: int) -> list[Recommendation]:
    """The recommendations drawn from one file, oldest first."""
    query = (select(Recommendation).where(Recommendation.complaint_id == complaint_id)
             .order_by(Recommendation.issued_on, Recommendation.id))
    async with store.reading() as tx:
        session = tx.session
        return list((await session.execute(query)).scalars())


async def file_number(store: RegistryStore, complaint_id: int | None) -> str | None:
    """The number of the file a recommendation is drawn from (None: a general one)."""
    if complaint_id is None:
        return None
    async with store.reading() as tx:
        session = tx.session
        return (await session.execute(select(Complaint.number).where(Complaint.id == complaint_id))).scalar()


async def addressees(store: RegistryStore, limit: int = 500, *, scope: VisibilityScope | None = None) -> list[str]:
    """The addressees named so far (the list's filter), by name; with `scope`, only those of recommendations the
    reader may see (a data-protection file's addressee is the DPO's alone, as in its alerts)."""
    query = select(Recommendation.addressee).where(Recommendation.addressee != "")
    visible = _visible(store, scope)
    if visible is not None:
        query = query.outerjoin(Complaint, Complaint.id == Recommendation.complaint_id).where(visible)
    query = query.distinct().order_by(Recommendation.addressee).limit(limit)
    async with store.reading() as tx:
        session = tx.session
        return list((await session.execute(query)).scalars())


async def indicator_groups(store: RegistryStore, year: int) -> list[tuple[str, str, bool, int]]:
    """The recommendations issued in `year`, counted by (addressee, status, general). The addressee of a
    data-protection file's recommendation is counted unnamed ("", the report's "unspecified"): the indicators are
    read by everyone who reads the report, and that addressee is the DPO's alone, as in its alerts."""
    general = Recommendation.complaint_id.is_(None).label("general")
    # Inlined, not bound: PostgreSQL must see the same expression in SELECT and GROUP BY.
    addressee = case((Complaint.data_protection.is_(True), literal_column("''")), else_=Recommendation.addressee)
    query = (select(addressee, Recommendation.status, general, func.count())
             .outerjoin(Complaint, Complaint.id == Recommendation.complaint_id)
             .where(Recommendation.issued_on.between(date(year, 1, 1), date(year, 12, 31)))
             .group_by(addressee, Recommendation.status, "general"))
    async with store.reading() as tx:
        session = tx.session
        return [(str(a), str(s), bool(g), int(n)) for a, s, g, n in (await session.execute(query)).all()]

