"""What the understanding of one message needs to know about us, and the person a message names (pure).

Shared by `understanding` and the named rules of `rules/`, which read the context (our domain, staff addresses)
without importing the module that runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.message.authentication import TxtLookup
from services.intake.message.mime import MimeLimits
from shared.events import Provenance


@dataclass(frozen=True)
class ParseContext:
    """What the parser needs to know about us, taken from the settings."""

    own_domain: str = "ombudsdesk.localhost"
    case_number_prefix: str = "MED"
    case_number_width: int = 5
    staff_addresses: frozenset[str] = frozenset()
    staff_domains: frozenset[str] = frozenset()
    limits: MimeLimits = MimeLimits()
    max_text_chars: int = 200_000
    envelope_sender: str | None = None
    # Trust at the door (docs/security.md): the authserv-ids (RFC 8601) whose Authentication-Results we believe,
    # and what the channel itself saw (peer, SMTP AUTH login, staff mailbox).
    trusted_authserv_ids: frozenset[str] = frozenset()
    # SMTP AUTH logins that are staff members' (their forwards are trusted), lower-case.
    staff_logins: frozenset[str] = frozenset()
    provenance: Provenance = Provenance()
    # Intake's own DKIM check where it is the MX (setting verify_dkim_dmarc): the DNS TXT lookup to use, None = off.
    dkim_txt_lookup: TxtLookup | None = None


@dataclass(frozen=True)
class Person:
    name: str = ""
    email: str | None = None


def is_staff(person: Person, context: ParseContext) -> bool:
    """A staff address or an address in a staff domain (settings `staff_addresses`, `staff_domains`)."""
    if not person.email:
        return False
    domain = person.email.rpartition("@")[2]
    return person.email in context.staff_addresses or domain in context.staff_domains
