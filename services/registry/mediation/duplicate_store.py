"""Database side of the possible-duplicate check (issue 15; the rules are `duplicates.py`): the earlier files a new
complaint may duplicate, found inside the registering transaction, and flagged on it.

The query is two index seeks, each bounded: the files of the same email address (`ix_complaints_complainant_email`)
and those of the same name and postal address (`ix_complaints_citizen_key`, migration 0013), each cut to the
`MAX_CANDIDATES` most recent within the window; the service and the window are checked on those rows. No scan of
the register, whatever its size: the cost is that of the citizen's own files.
"""

from __future__ import annotations

from sqlalchemy import select

from services.registry.mediation.duplicates import MAX_CANDIDATES, Citizen, citizen_key, is_possible_duplicate, window_start
from services.registry.models import Complaint
from services.registry.repository import Transaction
from services.registry.vocabulary import Status

__all__ = ["flag_possible_duplicates"]


def _citizen(complaint: Complaint) -> Citizen:
    return Citizen(email=complaint.complainant_email, name=complaint.complainant_name,
                   postal_address=complaint.complainant_postal_address, service=complaint.service_concerned,
                   received_on=complaint.legal_start)


async def flag_possible_duplicates(tx: Transaction, complaint: Complaint, window_days: int) -> None:
    """Set the new `complaint`'s `citizen_key` and, when earlier files match (`duplicates.is_possible_duplicate`),
    its `possible_duplicates` (their numbers, most recent first). Called before the complaint is inserted."""
    complaint.citizen_key = citizen_key(complaint.complainant_name, complaint.complainant_postal_address)
    if window_days <= 0:
        return
    new = _citizen(complaint)
    since = window_start(complaint.legal_start, window_days)
    found: dict[int, Complaint] = {}
    for column, value in ((Complaint.complainant_email, complaint.complainant_email),
                          (Complaint.citizen_key, complaint.citizen_key)):
        if value is None:
            continue
        query = (select(Complaint).where(column == value, Complaint.legal_start >= since,
                                         Complaint.status != Status.MERGED.value)
                 .order_by(Complaint.legal_start.desc(), Complaint.id.desc()).limit(MAX_CANDIDATES))
        for earlier in (await tx.session.execute(query)).scalars():
            if earlier is not complaint and is_possible_duplicate(new, _citizen(earlier), window_days):
                found[earlier.id] = earlier
    ranked = sorted(found.values(), key=lambda c: (c.legal_start, c.id), reverse=True)[:MAX_CANDIDATES]
    complaint.possible_duplicates = [c.number for c in ranked] or None
