"""Database side of the possible-duplicate check (issue 15; the rules are `duplicates.py`): the earlier files a new
complaint may duplicate, found inside the registering transaction, and flagged on it.

The query is an index seek per key, each bounded: the files of the same email address (`ix_complaints_complainant_email`)
and those of the same name and postal address (`ix_complaints_citizen_key`, migration 0013), each cut to the
`MAX_CANDIDATES` most recent within the window; the service and the window are checked on those rows. No scan of
the register, whatever its size: the cost is that of the citizen's own files.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased

from services.registry.mediation.duplicates import MAX_CANDIDATES, Citizen, citizen_key, is_possible_duplicate, window_start
from services.registry.models import Complaint
from services.registry.repository import Transaction
from services.registry.vocabulary import Status

__all__ = ["flag_possible_duplicates", "read_possible_duplicates"]


def _citizen(complaint: Complaint) -> Citizen:
    return Citizen(email=complaint.complainant_email, name=complaint.complainant_name,
                   postal_address=complaint.complainant_postal_address, service=complaint.service_concerned,
                   received_on=complaint.legal_start)


_CANDIDATES = "duplicate_candidates"
_KEYS = ("complainant_email", "citizen_key")


@functools.cache
def _candidates(name: str) -> Any:
    """The most recent files (at most `MAX_CANDIDATES` each) of each value of the column `name` within the window
    (parameters `values` and `since`): an index seek per value; the database ranks the value's files within the
    window, and returns at most `MAX_CANDIDATES` of them. Built once per column: building the ranked subquery and
    its aliased entity cost about 3 % of the registry's CPU per message (issue 12's profile)."""
    column = getattr(Complaint, name)
    rank = func.row_number().over(partition_by=column, order_by=(Complaint.legal_start.desc(), Complaint.id.desc()))
    ranked = (select(Complaint, rank.label("rank"))
              .where(column.in_(bindparam("values", expanding=True, type_=column.type)),
                     Complaint.legal_start >= bindparam("since", type_=Complaint.legal_start.type),
                     Complaint.status != Status.MERGED.value)
              .subquery())
    found = aliased(Complaint, ranked)
    return select(found).where(ranked.c.rank <= MAX_CANDIDATES).order_by(ranked.c.rank)


async def read_possible_duplicates(tx: Transaction, citizens: list[tuple[str | None, str | None, date]]) -> None:
    """`flag_possible_duplicates`'s question for several citizens at once (a batch's, issue 12): (email, citizen
    key, window start) each; one query per key column, from the earliest window start. Each complaint then keeps
    the candidates within its own window: the most recent come first, so the cut per value is the same."""
    if not citizens:
        return
    since = min(start for _email, _key, start in citizens)
    known = tx.read_ahead.setdefault(_CANDIDATES, {})
    for index, name in enumerate(_KEYS):
        values = list(dict.fromkeys(citizen[index] for citizen in citizens if citizen[index] is not None))
        if not values:
            continue
        found: dict[tuple[str, str], list[Complaint]] = {(name, value): [] for value in values}
        with tx.session.no_autoflush:
            for complaint in (await tx.session.execute(_candidates(name), {"values": values, "since": since})
                              ).scalars():
                found[(name, getattr(complaint, name))].append(complaint)
        known.update({key: (since, complaints) for key, complaints in found.items()})


async def flag_possible_duplicates(tx: Transaction, complaint: Complaint, window_days: int) -> None:
    """Set the new `complaint`'s `citizen_key` and, when earlier files match (`duplicates.is_possible_duplicate`),
    its `possible_duplicates` (their numbers, most recent first). Called before the complaint is staged.

    The earlier files are those stored (read now, or by the batch's look-ahead: `read_possible_duplicates`) and
    those registered earlier in the same transaction, which a look-ahead read before them cannot know, whether a
    flush inserted them since or not (a batch is inserted at its commit)."""
    complaint.citizen_key = citizen_key(complaint.complainant_name, complaint.complainant_postal_address)
    if window_days <= 0:
        return
    new = _citizen(complaint)
    since = window_start(complaint.legal_start, window_days)
    keys = [(name, value) for name, value in zip(_KEYS, (complaint.complainant_email, complaint.citizen_key))
            if value is not None]
    known = tx.read_ahead.get(_CANDIDATES, {})
    if not all(key in known and known[key][0] <= since for key in keys):
        await read_possible_duplicates(tx, [(complaint.complainant_email, complaint.citizen_key, since)])
        known = tx.read_ahead[_CANDIDATES]
    stored = [c for key in keys for c in known[key][1] if c.legal_start >= since]
    staged = [c for c in tx.staged(Complaint) if c.legal_start >= since and c.status != Status.MERGED.value
              and any(getattr(c, name) == value for name, value in keys)]
    found = {earlier.number: earlier for earlier in [*stored, *staged]
             if earlier is not complaint and is_possible_duplicate(new, _citizen(earlier), window_days)}

    def recent(c: Complaint) -> tuple[date, float, int]:
        return c.legal_start, c.id if c.id is not None else float("inf"), c.sequence

    ranked = sorted(found.values(), key=recent, reverse=True)[:MAX_CANDIDATES]
    complaint.possible_duplicates = [c.number for c in ranked] or None
