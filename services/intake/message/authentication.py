"""Who wrote this message, on which evidence (pure, no I/O): RFC 8601 `Authentication-Results` written by a trusted
authentication server, and optionally intake's own DKIM check (RFC 6376), turned into a `SenderVerdict`.

The rules (docs/security.md):

- Only `Authentication-Results` whose authserv-id is in `OMBUDSDESK_AUTHSERV_IDS` count: anyone can write one, so
  a header naming any other authserv-id is ignored (RFC 8601 section 7.2).
- Of those, only the topmost one counts. RFC 8601 section 5 requires the border MTA to remove (or rename) incoming
  headers that bear its own authserv-id, and trace headers are prepended (RFC 5322 section 3.6.7), so the topmost
  is the one our MX added last, even where it failed to strip a forged one further down. With split milters
  (OpenDKIM, then OpenDMARC) the topmost is the DMARC one, which is the one that decides.
- `verified`: `dmarc=pass` for the From domain, or `dkim=pass` whose signing domain (`header.d`) is aligned with the
  From domain; `failed`: `dmarc=fail`; `unverified`: anything else, including no trusted header at all.

Alignment (RFC 7489 section 3.1.1, relaxed mode) compares organisational domains, which strictly needs the Public
Suffix List. We use a conservative approximation instead: two domains are aligned when they are equal or one is a
parent of the other, the parent having at least two labels and not being a known two-label public suffix
(`co.uk`, `com.au`, ... in `_TWO_LABEL_SUFFIXES`). It never aligns two registrants under one public suffix
(`evil.co.uk` with `victim.co.uk`, `evil.example` with `victim.example`); it does not align siblings
(`a.example.org` with `b.example.org`), which then stay `unverified` (the safe side); its one leak is a suffix
missing from the list whose operator publishes DKIM keys for itself (`github.io` signing for `x.github.io`).
A DMARC verdict from the trusted MX, which has the real list, needs no alignment from us.

Intake's own check (`verify_dkim`, setting `OMBUDSDESK_VERIFY_DKIM_DMARC`, off by default) is for the case where
intake itself is the MX: `dkimpy` verifies the signatures, with the DNS TXT lookup injected (the real resolver in
production, a dictionary in tests). A DKIM signature aligned with From is a DMARC pass (RFC 7489 section 4.2), so it
gives `verified`; intake does not check SPF, so it can never conclude a DMARC `fail` on its own: no aligned DKIM
pass stays `unverified`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import authres

from shared.events import SenderVerdict

# An Authentication-Results header longer than this is not one an MX wrote; authres' parser is quadratic in the
# length of what it reads (each token re-copies the rest), so nothing longer is handed to it.
MAX_HEADER_CHARS = 4096
# Headers looked at, top down, to find the topmost trusted one.
MAX_HEADERS = 50
# Intake's own check: signatures verified per message (each may cost a DNS lookup) and the time each lookup may take.
MAX_SIGNATURES = 3
DNS_TIMEOUT_SECONDS = 3

# Two-label public suffixes under which anyone may register a domain (Public Suffix List, the common ones in
# European mail). Not exhaustive: see the module docstring for what a missing one means.
_TWO_LABEL_SUFFIXES = frozenset({
    "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk", "sch.uk", "nhs.uk",
    "co.at", "or.at", "ac.at", "gv.at", "co.nz", "org.nz", "com.au", "net.au", "org.au", "edu.au", "gov.au",
    "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "co.za", "org.za", "com.br", "net.br", "com.tr", "com.cn",
    "com.mx", "co.in", "co.il", "co.kr", "com.pl", "net.pl", "org.pl", "com.es", "org.es", "com.pt", "com.gr",
    "com.cy", "com.mt", "co.hu", "com.ro", "com.ua", "com.ru", "gouv.fr", "asso.fr", "com.fr", "tm.fr",
    "ac.be", "eu.com", "gb.net", "uk.com", "us.com", "de.com", "br.com", "cn.com",
})

# dkimpy logs key and DNS errors naming the sender's domain: kept out of the service's logs (no personal data there).
_DKIM_LOG = logging.getLogger("ombudsdesk.intake.dkimpy")
_DKIM_LOG.addHandler(logging.NullHandler())
_DKIM_LOG.propagate = False

# dkimpy's DNS interface: the TXT record at `name` (bytes, e.g. b"sel._domainkey.example.org."), or None.
TxtLookup = Callable[..., "bytes | None"]


@dataclass(frozen=True)
class Verdict:
    verdict: SenderVerdict
    # Short English technical evidence, e.g. "dmarc=pass header.from=example.org (mx.example.be)".
    evidence: str


UNVERIFIED_NO_RESULT = Verdict(SenderVerdict.UNVERIFIED, "no trusted Authentication-Results")


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment of a DKIM signing domain with the From domain (RFC 7489 3.1.1), approximated as the module
    docstring says: equal, or one a parent of the other that is not a public suffix."""
    signing, author = _domain(signing_domain), _domain(from_domain)
    if not signing or not author:
        return False
    if signing == author:
        return True
    if author.endswith("." + signing):
        parent = signing
    elif signing.endswith("." + author):
        parent = author
    else:
        return False
    return parent.count(".") >= 1 and parent not in _TWO_LABEL_SUFFIXES


def _domain(value: str | None) -> str:
    return (value or "").strip().strip(".").lower()


def _authserv_id(value: str) -> str:
    """The first token of an Authentication-Results value (RFC 8601 2.2: authserv-id comes first)."""
    head = value[:300].lstrip()
    token = head.split(None, 1)[0] if head else ""
    return token.split(";", 1)[0].lower()


def _property(result: object, ptype: str, name: str) -> str | None:
    for prop in getattr(result, "properties", None) or ():
        if str(prop.type).lower() == ptype and str(prop.name).lower() == name and prop.value:
            return str(prop.value)
    return None


def verdict_from_headers(values: Sequence[str], from_domain: str | None, trusted_ids: frozenset[str]) -> Verdict:
    """The verdict the topmost trusted `Authentication-Results` gives about `from_domain` (the RFC5322.From domain).

    `values` are the header values top down, unfolded or not; `trusted_ids` lower-case authserv-ids."""
    trusted = {authserv_id.strip().lower() for authserv_id in trusted_ids}
    ignored = 0
    verdicts: list[Verdict] = []
    for value in values[:MAX_HEADERS]:
        text = " ".join(str(value).split())
        authserv_id = _authserv_id(text)
        if not authserv_id or authserv_id not in trusted:
            ignored += 1
            continue
        if len(text) > MAX_HEADER_CHARS:
            verdicts.append(Verdict(SenderVerdict.UNVERIFIED, f"Authentication-Results of {authserv_id} longer than "
                                                              f"{MAX_HEADER_CHARS} characters ignored"))
            continue
        try:
            header = authres.core_features().parse_value(text)
        except Exception:  # noqa: BLE001 - authres raises its own errors, RecursionError on nested comments...
            header = None
        if header is None or header.authserv_id != authserv_id:
            verdicts.append(Verdict(SenderVerdict.UNVERIFIED, f"Authentication-Results of {authserv_id} unreadable"))
            continue
        verdicts.append(_judge(header.results, _domain(from_domain), authserv_id))
    if verdicts:
        # The topmost decides a pass; a DMARC fail recorded in any of them wins (an MX that writes DKIM and DMARC
        # results in separate headers may put the DMARC one below).
        failed = next((verdict for verdict in verdicts if verdict.verdict is SenderVerdict.FAILED), None)
        return failed or verdicts[0]
    if ignored:
        return Verdict(SenderVerdict.UNVERIFIED,
                       f"no trusted Authentication-Results ({ignored} from other authserv-ids ignored)")
    return UNVERIFIED_NO_RESULT


def _judge(results: Sequence[object], from_domain: str, authserv_id: str) -> Verdict:
    dmarc = [result for result in results if str(getattr(result, "method", "")).lower() == "dmarc"]
    for result in dmarc:
        if str(result.result).lower() == "fail":
            # Whichever From the MX looked at, it found this message failing DMARC: never believed (RFC 7489 6.6.2).
            checked = _domain(_property(result, "header", "from")) or from_domain or "?"
            return Verdict(SenderVerdict.FAILED, f"dmarc=fail header.from={checked} ({authserv_id})")
    if not from_domain:
        return Verdict(SenderVerdict.UNVERIFIED, f"no From domain to check ({authserv_id})")
    for result in dmarc:
        # A pass counts only for the domain it names: a result without header.from says nothing about this From.
        checked = _domain(_property(result, "header", "from"))
        if str(result.result).lower() == "pass" and checked == from_domain:
            return Verdict(SenderVerdict.VERIFIED, f"dmarc=pass header.from={from_domain} ({authserv_id})")
    for result in results:
        if str(getattr(result, "method", "")).lower() != "dkim" or str(result.result).lower() != "pass":
            continue
        signing = _property(result, "header", "d") or (_property(result, "header", "i") or "").rpartition("@")[2]
        if signing and aligned(signing, from_domain):
            return Verdict(SenderVerdict.VERIFIED,
                           f"dkim=pass header.d={_domain(signing)} aligned with header.from={from_domain} "
                           f"({authserv_id})")
    if dmarc:
        # What the MX found, for the domain it names (a pass about another domain is no pass for this From).
        checked = _domain(_property(dmarc[0], "header", "from"))
        if not checked:
            return Verdict(SenderVerdict.UNVERIFIED,
                           f"dmarc={str(dmarc[0].result).lower()} without header.from ({authserv_id})")
        other = f", not the From domain {from_domain}" if checked != from_domain else ""
        return Verdict(SenderVerdict.UNVERIFIED,
                       f"dmarc={str(dmarc[0].result).lower()} header.from={checked}{other} ({authserv_id})")
    return Verdict(SenderVerdict.UNVERIFIED,
                   f"no dmarc result and no dkim pass aligned with header.from={from_domain} ({authserv_id})")


def verify_dkim(raw: bytes, from_domain: str | None, lookup: TxtLookup) -> Verdict:
    """Intake's own DKIM check (RFC 6376) of at most `MAX_SIGNATURES` signatures, DNS through `lookup`: `verified`
    when one passes with a signing domain aligned with `from_domain`, else `unverified` (never `failed`: SPF, the
    other half of DMARC, is not checked here)."""
    import dkim  # dkimpy: imported only where intake is configured to verify

    author = _domain(from_domain)
    lookup = bounded_key_lookup(lookup)
    try:
        checker = dkim.DKIM(raw, logger=_DKIM_LOG, minkey=1024, timeout=DNS_TIMEOUT_SECONDS)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    except Exception:  # noqa: BLE001 - a header block dkimpy cannot read carries no usable signature
        return Verdict(SenderVerdict.UNVERIFIED, "dkim=permerror (intake)")
    if count == 0:
        return Verdict(SenderVerdict.UNVERIFIED, "dkim=none (intake)")
    outcomes: list[str] = []
    for index in range(min(count, MAX_SIGNATURES)):
        checker.domain = None
        try:
            passed = checker.verify(idx=index, dnsfunc=lookup)
        except dkim.ValidationError:  # a body hash or signature that does not match (RFC 8601 2.7.1: fail)
            passed = False
        except dkim.DnsTimeoutError:
            outcomes.append("dkim=temperror")
            continue
        except Exception:  # noqa: BLE001 - dkimpy raises on malformed signatures and keys (a permanent error)
            outcomes.append("dkim=permerror")
            continue
        signing = (checker.domain or b"").decode("ascii", "replace") if isinstance(checker.domain, bytes) else ""
        if passed and author and aligned(signing, author):
            return Verdict(SenderVerdict.VERIFIED,
                           f"dkim=pass header.d={_domain(signing)} aligned with header.from={author} (intake)")
        outcomes.append(f"dkim={'pass' if passed else 'fail'} header.d={_domain(signing) or '?'}")
    detail = ", ".join(dict.fromkeys(outcomes))
    return Verdict(SenderVerdict.UNVERIFIED, f"{detail}; none aligned with header.from={author or '?'} (intake)")


# RSA verification costs grow with the key and the exponent: a sender's DNS could publish an 8192-bit key with a
# huge exponent and make each signature cost seconds. DKIM keys are 1024 to 4096 bits (RFC 8301 3.2) with a small
# exponent (65537 in practice); anything else is treated as no key at all (dkim=permerror).
MAX_KEY_BITS = 4096
ALLOWED_EXPONENTS = frozenset({3, 65537})


def bounded_key_lookup(lookup: TxtLookup) -> TxtLookup:
    """`lookup`, answering None for a DKIM key record whose RSA key is larger than `MAX_KEY_BITS` or whose exponent is
    not a usual one, so that dkimpy never spends long on it."""
    def bounded(name: bytes, *args: object, **kwargs: object) -> bytes | None:
        record = lookup(name, *args, **kwargs)
        return record if record is None or acceptable_key_record(record) else None
    return bounded


def acceptable_key_record(record: bytes) -> bool:
    """Whether a DKIM key record (RFC 6376 3.6.1) holds a key we agree to verify with; non-RSA keys are left to
    dkimpy (ed25519 costs the same whatever the record says)."""
    import base64

    from dkim.crypto import parse_public_key
    from dkim.util import parse_tag_value

    try:
        tags = parse_tag_value(record)
        if tags.get(b"k", b"rsa").strip().lower() != b"rsa":
            return True
        der = base64.b64decode(b"".join(tags.get(b"p", b"").split()))
        if len(der) > MAX_KEY_BITS // 8 + 64:
            return False
        key = parse_public_key(der)
    except Exception:  # noqa: BLE001 - a record dkimpy cannot read either: it reports the error itself
        return True
    return key["modulus"].bit_length() <= MAX_KEY_BITS and key["publicExponent"] in ALLOWED_EXPONENTS


def system_txt_lookup(name: bytes, timeout: float = DNS_TIMEOUT_SECONDS) -> bytes | None:
    """The real DNS (dnspython through dkimpy), for intake's own check in production; a module-level function so
    that a parse context holding it can be sent to a parse worker process."""
    from dkim.dnsplug import get_txt

    return get_txt(name, timeout=timeout)
