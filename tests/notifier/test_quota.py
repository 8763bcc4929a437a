"""The key per-recipient limits count (pure): one mailbox however its address is spelled (RFC 5233 sub-addresses,
Gmail's dots), in the quota of the sender answered. Expected keys are written out by hand."""

from __future__ import annotations

import pytest

from services.notifier.quota import Quota, limit_key, mailbox_key


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("victim@gmail.com", "victim@gmail.com"),
        ("Victim@Gmail.COM", "victim@gmail.com"),
        ("victim+1@gmail.com", "victim@gmail.com"),
        ("victim+2@gmail.com", "victim@gmail.com"),
        ("v.ictim@gmail.com", "victim@gmail.com"),
        ("v.i.c.t.i.m+promo+x@googlemail.com", "victim@gmail.com"),
        # Elsewhere a dot is part of the name: jean.dupont and jeandupont may be two people.
        ("jean.dupont@example.org", "jean.dupont@example.org"),
        ("Jean.Dupont+ombuds@Example.ORG", "jean.dupont@example.org"),
        ("jean.dupont+@example.org", "jean.dupont@example.org"),
        # Only the gmail domains themselves, not one that ends like them.
        ("v.ictim@notgmail.com", "v.ictim@notgmail.com"),
        ("v.ictim@mail.gmail.com", "v.ictim@mail.gmail.com"),
        # A local part that is only a detail keeps it (there is no user to keep).
        ("+tag@example.org", "+tag@example.org"),
        # The last "@" separates the domain.
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_mailbox_key(address: str, expected: str) -> None:
    assert mailbox_key(address) == expected


def test_limit_key_keeps_the_quotas_apart() -> None:
    assert limit_key("V.ictim+2@gmail.com", Quota.VERIFIED) == "verified:victim@gmail.com"
    assert limit_key("victim@gmail.com") == "unverified:victim@gmail.com"
    assert limit_key("victim@gmail.com", Quota.VERIFIED) != limit_key("victim@gmail.com", Quota.UNVERIFIED)
