"""Possible duplicates (issue 15): is a new complaint from a citizen who already wrote about the same service lately?
Pure: the normalisation of what identifies a citizen, and the decision; `duplicate_store.py` finds the candidates.

Two files are possible duplicates when they are about the same service (both of no identified service count as the
same: a citizen who writes twice about something screening could not place still deserves a look) and the earlier
one was received within the window before the new one, and either
- their complainant's email address is the same (compared as the register stores it: trimmed, lower case), or
- their complainant's name and postal address are the same once normalised (`citizen_key`): accents, case,
  punctuation and spacing aside, the name's words in any order ("DUPONT, Jeanne" = "Jeanne Dupont"), the address's
  words in their order ("Rue de la Loi 16, 1000 Bruxelles" = "rue de la loi 16 1000 BRUXELLES").

It is a flag for staff, who merge or link the files or leave them apart; nothing is merged automatically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

from services.registry.screening_config import normalise

__all__ = ["Citizen", "MAX_CANDIDATES", "citizen_key", "is_possible_duplicate", "normal_address", "normal_name",
           "window_start"]

# The most candidates flagged on one file: more says "a prolific writer", and staff search the register then.
MAX_CANDIDATES = 10


def normal_name(name: str | None) -> str:
    """The name's words, normalised and sorted: the order of first and last names varies from letter to letter."""
    return " ".join(sorted(normalise(name or "").split()))


def normal_address(address: str | None) -> str:
    return normalise(address or "")


def citizen_key(name: str | None, postal_address: str | None) -> str | None:
    """A fixed-length key of the normalised name and postal address (indexed on `complaints.citizen_key`); None
    when either is missing: a name alone (or an address alone) says too little to call two files the same person's."""
    person, address = normal_name(name), normal_address(postal_address)
    if not person or not address:
        return None
    return hashlib.sha256(f"{person}\n{address}".encode()).hexdigest()


@dataclass(frozen=True)
class Citizen:
    """What identifies a file's citizen and its subject for the check: email, name, postal address, service, date."""

    email: str | None
    name: str | None
    postal_address: str | None
    service: str | None
    received_on: date


def window_start(received_on: date, window_days: int) -> date:
    """The earliest legal start of a candidate for a complaint received on `received_on`."""
    return received_on - timedelta(days=window_days)


def _email(value: str | None) -> str | None:
    return (value or "").strip().lower() or None


def is_possible_duplicate(new: Citizen, earlier: Citizen, window_days: int) -> bool:
    """Whether `earlier` is a possible duplicate of `new` (see the module's rules); `window_days` 0 disables."""
    if window_days <= 0 or new.service != earlier.service:
        return False
    if not window_start(new.received_on, window_days) <= earlier.received_on <= new.received_on:
        return False
    email = _email(new.email)
    if email is not None and email == _email(earlier.email):
        return True
    key = citizen_key(new.name, new.postal_address)
    return key is not None and key == citizen_key(earlier.name, earlier.postal_address)
