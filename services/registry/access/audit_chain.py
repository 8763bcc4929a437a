"""The audit trail's rules without I/O: what an entry holds and how big it may be, its canonical encoding and hash,
the check of a whole chain, who must give a reason to read a file, and which address a request came from.

An entry is hashed over a canonical encoding of every field, its sequence and the previous entry's hash: a compact
JSON array (keys of `details` sorted, UTF-8, timestamps in UTC ISO 8601 with microseconds) whose SHA-256 is the
entry's `hash` and the next entry's `prev_hash`. The first entry's `prev_hash` is `GENESIS`. Changing any field of
any entry, removing one or slipping one in therefore breaks the chain at that entry (`ChainChecker`), and the
chain's head (sequence and hash, kept apart in `audit_head`) shows an entry removed from, or added at, the end.

Fields are bounded before they are hashed, so what is stored is exactly what was hashed: control characters removed
(a NUL cannot even be stored by PostgreSQL), text cut to a length (`*_MAX`), `details` reduced to plain JSON of at
most `DETAILS_MAX_BYTES` (otherwise only its key names are kept) and stripped of message text (`BODY_KEYS`: the
trail says who read a file, it is not a second copy of it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from services.registry.access.roles import Principal

GENESIS = "0" * 64

# The vocabulary of actions (issue 13): `change.<command>` names a register command in snake case (`change.assign`),
# `account.<...>` an account event, from the accounts pages or `ombudsdesk users` (`account.create`,
# `account.set_roles`, `account.disable`, `account.issue_token`, `account.issue_link`, ...).
# `held.read`: the text of a message in the holding pen was shown (personal data, not yet any file's).
FIXED_ACTIONS = ("file.read", "file.denied", "original.download", "attachment.download", "held.read", "export",
                 "search", "login", "login.failed", "logout", "audit.view", "audit.export",
                 # a citizen's personal link (issue 17, `citizen_responder.py`)
                 "citizen.view", "citizen.message", "citizen.denied", "citizen.resend")
ACTION_FAMILIES = ("change", "account")
_ACTION = re.compile("|".join((
    *(re.escape(action) for action in FIXED_ACTIONS),
    r"change\.[a-z][a-z0-9_]{0,50}",
    r"account\.[a-z][a-z0-9_]{0,30}(?:\.[a-z][a-z0-9_]{0,30})?",
)))

ACTOR_MAX = 320  # an email address (RFC 5321 path limit)
ROLES_MAX = 120
ACTION_MAX = 64
NUMBER_MAX = 40  # the complaints' own column; a longer "number" came from a hostile URL
IP_MAX = 64
USER_AGENT_MAX = 300
REASON_MAX = 2000
DETAILS_MAX_BYTES = 4096
DETAILS_DEPTH_MAX = 4
# Keys of `details` never kept: the text of messages, notes or answers (the change log and the thread keep those).
BODY_KEYS = frozenset({"body", "text", "new_text", "message", "raw", "raw_object", "html"})

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class InvalidAction(ValueError):
    """An action outside the vocabulary: a programming error, refused rather than recorded under a made-up name."""


def check_action(action: str) -> str:
    if not isinstance(action, str) or len(action) > ACTION_MAX or _ACTION.fullmatch(action) is None:
        raise InvalidAction(f"not an audit action: {action!r}")
    return action


def _valid_unicode(text: str) -> str:
    # A lone surrogate cannot be encoded in UTF-8 (nor stored): it becomes "?".
    return text.encode("utf-8", "replace").decode("utf-8")


def one_line(value: object, limit: int) -> str | None:
    """Text of a single-line field: controls removed, cut to `limit` characters; empty becomes None."""
    if value is None:
        return None
    text = _CONTROLS.sub("", _valid_unicode(str(value))).strip()[:limit]
    return text or None


def multi_line(value: object, limit: int) -> str | None:
    if value is None:
        return None
    text = _CONTROLS_BUT_LINES.sub("", _valid_unicode(str(value))).strip()[:limit]
    return text or None


def _plain(value: Any, depth: int) -> Any:
    """Any value as plain JSON: strings cleaned, non-finite floats and unknown types as text, depth bounded."""
    if value is None or isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return multi_line(value, DETAILS_MAX_BYTES) or ""
    if depth >= DETAILS_DEPTH_MAX:
        return one_line(value, 200) or ""
    if isinstance(value, Mapping):
        return {one_line(key, 64) or "_": _plain(item, depth + 1) for key, item in value.items()
                if str(key) not in BODY_KEYS}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(item, depth + 1) for item in items]
    return one_line(value, 200) or ""


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def bounded_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """`details` as stored: plain JSON, no message text, at most `DETAILS_MAX_BYTES` once encoded."""
    if not details:
        return {}
    plain = _plain(dict(details), 0)
    if len(canonical_json(plain).encode("utf-8")) <= DETAILS_MAX_BYTES:
        return plain
    # Too big to keep whole: say so, with the names of what was there (bounded too).
    keys = sorted(plain)[:20]
    return {"truncated": True, "keys": keys}


def roles_text(roles: Iterable[str]) -> str:
    return ",".join(sorted({str(role) for role in roles}))[:ROLES_MAX]


def utc_iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime in the audit trail; pass an aware one")
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the trail, as stored (every field below `sequence` and `prev_hash` is hashed with them)."""

    sequence: int
    at: datetime
    account_id: int | None
    actor: str
    roles: str
    action: str
    number: str | None
    ip: str | None
    user_agent: str | None
    reason: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        return canonical_encoding(self.sequence, self.prev_hash, at=self.at, account_id=self.account_id,
                                  actor=self.actor, roles=self.roles, action=self.action, number=self.number,
                                  ip=self.ip, user_agent=self.user_agent, reason=self.reason, details=self.details)

    def computed_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


def canonical_encoding(sequence: int, prev_hash: str, *, at: datetime, account_id: int | None, actor: str,
                       roles: str, action: str, number: str | None, ip: str | None, user_agent: str | None,
                       reason: str | None, details: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash is taken over. A version tag first, so that a later encoding can coexist."""
    return canonical_json(["audit/1", sequence, prev_hash, utc_iso(at), account_id, actor, roles, action, number,
                           ip, user_agent, reason, dict(details)]).encode("utf-8")


def entry_hash(sequence: int, prev_hash: str, **fields: Any) -> str:
    return hashlib.sha256(canonical_encoding(sequence, prev_hash, **fields)).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """The chain checked from its first entry to its head: `ok`, how many entries were read, and the sequence of
    the first entry that is missing, altered or unexpected (`first_broken`), with what is wrong there (`problem`)."""

    ok: bool
    entries: int
    first_broken: int | None = None
    problem: str | None = None
    head_sequence: int = 0
    head_hash: str = GENESIS


class ChainChecker:
    """Walks the entries in sequence order (`feed`), then compares the end with the head (`finish`)."""

    def __init__(self, head_sequence: int, head_hash: str) -> None:
        self.head_sequence, self.head_hash = head_sequence, head_hash
        self.entries = 0
        self._expected_sequence, self._expected_prev = 1, GENESIS
        self._broken: tuple[int, str] | None = None

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def feed(self, record: AuditRecord) -> bool:
        """Check the next entry; False once the chain is broken (the caller may stop reading)."""
        if self._broken is not None:
            return False
        self.entries += 1
        if record.sequence > self._expected_sequence:
            self._broken = (self._expected_sequence, "missing")
        elif record.sequence < self._expected_sequence:  # only a reader that does not sort could send this
            self._broken = (record.sequence, "out of order")
        elif record.sequence > self.head_sequence:
            self._broken = (record.sequence, "beyond the head")
        elif record.prev_hash != self._expected_prev:
            self._broken = (record.sequence, "previous hash differs")
        elif record.computed_hash() != record.hash:
            self._broken = (record.sequence, "content altered")
        else:
            self._expected_sequence, self._expected_prev = record.sequence + 1, record.hash
            return True
        return False

    def finish(self) -> VerifyResult:
        broken = self._broken
        if broken is None and self._expected_sequence <= self.head_sequence:
            broken = (self._expected_sequence, "missing")
        if broken is None and self._expected_prev != self.head_hash:
            broken = (self.head_sequence, "head hash differs")
        if broken is None:
            return VerifyResult(True, self.entries, head_sequence=self.head_sequence, head_hash=self.head_hash)
        return VerifyResult(False, self.entries, broken[0], broken[1], self.head_sequence, self.head_hash)


def reason_required(principal: Principal, handler: str | None) -> bool:
    """Whether reading a file takes a reason (issue 13: "for a read by someone who is not the handler, a reason is
    asked").

    Everyone but the file's handler says why: a colleague, a supervisor, a DPO, and anyone opening a file nobody
    handles yet (the back office offers ready-made reasons such as triage, so this costs one click, and the audit
    trail then says why every person who is not the handler looked). Every read is recorded either way.
    """
    if not handler or not handler.strip():
        return True
    return principal.actor.strip().lower() != handler.strip().lower()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[Network] = ()) -> str | None:
    """The address a request came from. `X-Forwarded-For` is believed only when the peer is a trusted proxy, and
    then hop by hop from the right, as far as the hops are trusted proxies themselves (the leftmost entries are
    whatever the client wrote). With no trusted proxy, the peer's own address."""
    proxies = tuple(trusted_proxies)
    peer_address = _address(peer) if peer else None

    def trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in proxies)

    if not proxies or not trusted(peer_address) or not forwarded_for:
        return one_line(peer, IP_MAX)
    current = peer_address
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            break  # a malformed hop: the last address we can vouch for is the answer
        current = address
        if not trusted(address):
            break
    return one_line(str(current), IP_MAX)
