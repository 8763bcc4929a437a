"""Whom we never write to (pure): auto-repliers, bounces, mailing lists, our own addresses, forwarding staff.

Answering a machine starts mail loops (RFC 3834 section 2 and 5); answering our own address or a staff member who
forwarded a citizen's mail would send the citizen's acknowledgment to the wrong person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.notifier.reasons import ReasonCode, reason

# Local parts that belong to machines (RFC 2142 role accounts, list managers, bounce handlers).
_MACHINE_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply",
        "do_not_reply", "bounce", "bounces", "listserv", "majordomo", "mailman", "autoreply", "auto-reply",
        "nobody", "daemon", "abuse",
    }
)
_MACHINE_SUFFIXES = ("-request", "-bounces", "-bounce", "-owner", "-admin", "+bounces", "-noreply")
_MACHINE_PREFIXES = ("owner-", "bounce-", "bounces+", "noreply", "no-reply", "mailer-daemon")


@dataclass(frozen=True)
class SuppressionRules:
    own_addresses: frozenset[str]
    own_domains: frozenset[str]
    staff_addresses: frozenset[str]
    staff_domains: frozenset[str]

    @classmethod
    def build(
        cls,
        own_addresses: Iterable[str],
        own_domains: Iterable[str],
        staff_addresses: Iterable[str],
        staff_domains: Iterable[str],
    ) -> "SuppressionRules":
        def lower(values: Iterable[str]) -> frozenset[str]:
            return frozenset(value.strip().lower() for value in values if value and value.strip())

        return cls(lower(own_addresses), lower(own_domains), lower(staff_addresses), lower(staff_domains))


def machine_address_reason(address: str) -> str | None:
    local = address.rpartition("@")[0].lower()
    if local in _MACHINE_LOCAL_PARTS or local.endswith(_MACHINE_SUFFIXES) or local.startswith(_MACHINE_PREFIXES):
        return ReasonCode.MACHINE_ADDRESS
    return None


def suppression_reason(
    address: str,
    rules: SuppressionRules,
    *,
    automated: bool = False,
    automated_reason: str | None = None,
    citizen_notice: bool = True,
) -> str | None:
    """Why we must not email `address` (a stored reason, see `reasons`), or None when we may."""
    if automated:
        return reason(ReasonCode.AUTOMATED_MESSAGE, automated_reason)
    lowered = address.lower()
    domain = lowered.rpartition("@")[2]
    if lowered in rules.own_addresses:
        return ReasonCode.OWN_ADDRESS
    # Staff notices (deadline warnings) do go to colleagues, possibly in our own domain.
    if citizen_notice and domain in rules.own_domains:
        return ReasonCode.OWN_ADDRESS
    if citizen_notice and (lowered in rules.staff_addresses or domain in rules.staff_domains):
        return ReasonCode.STAFF_ADDRESS
    return machine_address_reason(lowered)
