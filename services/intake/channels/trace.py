"""The trace intake adds to what it takes in over SMTP (pure): a `Received:` header and the session's provenance.

RFC 5321 4.4 asks every SMTP server that accepts a message to prepend a `Received:` line naming the client (its HELO
and its IP address), itself, the protocol and the time; RFC 3848 names the protocol (ESMTP, ESMTPS with TLS, ESMTPA
with AUTH, ESMTPSA with both). It is the raw original's own record of where it came from, for staff and for a later
investigation. The HELO name is the client's claim and is written by whoever connects: only the characters a host
name or an address literal may hold are kept, so that it cannot add a header or break the line.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime

from shared.events import Provenance

MAX_HELO_CHARS = 255  # RFC 1035 2.3.4: a domain name is at most 255 octets
MAX_LOGIN_CHARS = 254  # RFC 5321 4.5.3.1.3: the longest path an address login could be
_NOT_IN_A_HOST_NAME = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")
_NOT_IN_A_LOGIN = re.compile(r"[^\w.@+\-]")


def clean_helo(helo: str | None) -> str | None:
    """The HELO/EHLO argument reduced to host-name characters and bounded; None when nothing usable is left."""
    if not helo:
        return None
    cleaned = _NOT_IN_A_HOST_NAME.sub("", helo[: MAX_HELO_CHARS * 4])[:MAX_HELO_CHARS]
    return cleaned or None


def session_provenance(peer: object, helo: str | None, login: str | None) -> Provenance:
    """What an SMTP session proved or claimed: the peer address (from the socket, not the client's word), its HELO
    (its word), the AUTH login (proven by the password, RFC 4954)."""
    peer_ip = None
    if isinstance(peer, (tuple, list)) and peer:
        peer_ip = str(peer[0])[:64]
    elif isinstance(peer, str) and peer:
        peer_ip = peer[:64]
    authenticated = _NOT_IN_A_LOGIN.sub("", login)[:MAX_LOGIN_CHARS].lower() if login else None
    return Provenance(peer_ip=peer_ip, peer_helo=clean_helo(helo), authenticated_as=authenticated or None)


def received_header(provenance: Provenance, *, our_host: str, tls: bool, queue_id: str, when: datetime) -> bytes:
    """The `Received:` line (RFC 5321 4.4, protocol names of RFC 3848) to prepend to a raw original, CRLF-ended."""
    protocol = "ESMTP" + ("S" if tls else "") + ("A" if provenance.authenticated_as else "")
    helo = provenance.peer_helo or "unknown"
    address = f"[{provenance.peer_ip}]" if provenance.peer_ip else "[unknown]"
    host = _NOT_IN_A_HOST_NAME.sub("", our_host)[:MAX_HELO_CHARS] or "localhost"
    line = (f"Received: from {helo} ({address})\r\n\tby {host} (ombudsdesk intake) with {protocol} id "
            f"{queue_id};\r\n\t{format_datetime(when)}\r\n")
    return line.encode("ascii", "replace")
