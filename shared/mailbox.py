"""Is this a plain mailbox we can write to? For addresses people type into a form (staff's manual entry, the
directory of administrations, the public complaint form), not for headers of received mail (intake parses those).
And does a stored text name one address, whole (`mentions_address`, the erasure's matching)?"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address

# RFC 5321 4.5.3.1.3: a path is at most 256 octets, brackets included.
MAX_MAILBOX = 254


def plain_mailbox(value: str) -> bool:
    """ASCII `local@domain.tld`, no display name, no quoting, no comment: what a notice can be sent to."""
    if not value.isascii() or '"' in value or len(value) > MAX_MAILBOX:
        return False
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, HeaderParseError):
        return False
    labels = address.domain.split(".")
    return bool(address.username) and len(labels) >= 2 and all(labels) and address.addr_spec == value


def mentions_address(text: str, address: str) -> bool:
    """Whether `text` names `address` as a whole address (case-folded): erasing ann@x.org must not reach
    joann@x.org or ann@x.org.uk. Linear: one search for a fixed string with look-arounds of one character."""
    pattern = re.compile(r"(?<![\w.+-])" + re.escape(address.lower()) + r"(?![\w-]|\.\w)")
    return pattern.search(text.lower()) is not None
