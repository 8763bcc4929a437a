"""Whose quota a rate-limited notice counts against (pure): one mailbox, however its address is spelled, and
whether the sender of the message it answers was verified.

A limit keyed on the exact address is no limit: `victim+1@gmail.com`, `victim+2@gmail.com` and `v.ictim@gmail.com`
all reach the same mailbox. So the count is on a normalised key (issue 10, docs/security.md):

- lower case (the domain is case-insensitive, RFC 5321 2.4; the local part is in practice);
- the sub-address detail removed: `user+detail` is delivered to `user` (RFC 5233 1, with "+" as separator);
- for providers known to ignore dots in the local part (Gmail, which also answers at googlemail.com), the dots
  removed and the domain made one.

And a forged unverified complaint "From: victim@..." must not use up the acknowledgments a verified citizen is owed:
notices answering a `verified` sender are counted in a quota of their own (`Quota.VERIFIED`), with the same limit.
"""

from __future__ import annotations

from enum import StrEnum

# RFC 5233 1: "user+detail"; the separator this module recognises is "+" (the common one, and Gmail's).
SUBADDRESS_SEPARATOR = "+"
# Providers that deliver a local part with or without its dots to the same mailbox, and their canonical domain.
DOT_INSENSITIVE_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


class Quota(StrEnum):
    """Which count a notice takes part in: notices answering a verified sender, or any other."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"


def mailbox_key(address: str) -> str:
    """The mailbox an address reaches, as rate limits count it: `V.Ictim+Promo@GoogleMail.com` -> `victim@gmail.com`.

    `address` is a plain addr-spec (`headers.clean_address` refused anything else); a value without "@" is only
    lower-cased. A local part that is nothing but its detail (`+tag@x`) is kept whole: there is no user to keep.
    """
    local, at, domain = address.strip().lower().rpartition("@")
    if not at or not local:
        return address.strip().lower()
    user = local.partition(SUBADDRESS_SEPARATOR)[0] or local
    canonical = DOT_INSENSITIVE_DOMAINS.get(domain)
    if canonical is not None:
        user = user.replace(".", "") or user
        domain = canonical
    return f"{user}@{domain}"


def limit_key(address: str, quota: Quota = Quota.UNVERIFIED) -> str:
    """The key stored with a notice (`Notice.limit_key`) and counted by the outbox: quota and mailbox."""
    return f"{quota.value}:{mailbox_key(address)}"
