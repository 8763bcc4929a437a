"""The sender verdict (pure): RFC 8601 Authentication-Results parsed with authres, only from trusted authserv-ids;
relaxed alignment; intake's own DKIM check with dkimpy over a key generated for the test and a dictionary for DNS."""

from __future__ import annotations

import base64
import pickle
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.intake.message.authentication import (
    MAX_HEADER_CHARS,
    aligned,
    system_txt_lookup,
    verdict_from_headers,
    verify_dkim,
)
from services.intake.pipeline import parse_context
from services.intake.settings import IntakeSettings
from services.intake.message.understanding import ParseContext, understand
from shared.events import SenderVerdict
from shared.settings import load_settings

MX = "mx.mediation.example.be"
TRUSTED = frozenset({MX})
VERIFIED, FAILED, UNVERIFIED = SenderVerdict.VERIFIED, SenderVerdict.FAILED, SenderVerdict.UNVERIFIED


@pytest.mark.parametrize(("values", "verdict", "evidence"), [
    ([f"{MX}; dmarc=pass header.from=example.org"], VERIFIED, f"dmarc=pass header.from=example.org ({MX})"),
    ([f"{MX}; dmarc=fail (p=reject) header.from=example.org"], FAILED, f"dmarc=fail header.from=example.org ({MX})"),
    # dmarc=pass about another From domain than the message's
    ([f"{MX}; dmarc=pass header.from=attacker.example"], UNVERIFIED,
     f"dmarc=pass header.from=attacker.example, not the From domain example.org ({MX})"),
    ([f"{MX}; dkim=pass header.i=@news.example.org"], VERIFIED,
     f"dkim=pass header.d=news.example.org aligned with header.from=example.org ({MX})"),
    ([f"{MX}; dkim=fail header.d=example.org; dmarc=none header.from=example.org"], UNVERIFIED,
     f"dmarc=none header.from=example.org ({MX})"),
    ([f"{MX}; dkim=pass header.d=esp.example; spf=pass smtp.mailfrom=example.org"], UNVERIFIED,
     f"no dmarc result and no dkim pass aligned with header.from=example.org ({MX})"),
    ([f"{MX}; none"], UNVERIFIED, f"no dmarc result and no dkim pass aligned with header.from=example.org ({MX})"),
    # Microsoft 365 writes no authserv-id: nothing of ours
    (["spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.org; dkim=pass (signature was verified) "
      "header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100"],
     UNVERIFIED, "no trusted Authentication-Results (1 from other authserv-ids ignored)"),
    # a forged one from elsewhere, then ours (split milters: the topmost trusted one is DMARC's)
    (["attacker.example; dmarc=pass header.from=example.org", f"{MX}; dmarc=fail header.from=example.org",
      f"{MX}; dkim=pass header.d=example.org"], FAILED, f"dmarc=fail header.from=example.org ({MX})"),
    # a DMARC fail in any trusted header wins over a pass above it (split milters may write DMARC's below)
    ([f"{MX}; dmarc=pass header.from=example.org", f"{MX}; dmarc=fail header.from=example.org"], FAILED,
     f"dmarc=fail header.from=example.org ({MX})"),
    # a pass that names no From domain says nothing about this From
    ([f"{MX}; dmarc=pass"], UNVERIFIED, f"dmarc=pass without header.from ({MX})"),
    # the authserv-id must be the first token, not a word somewhere in the header
    ([f"attacker.example ({MX}); dmarc=pass header.from=example.org"], UNVERIFIED,
     "no trusted Authentication-Results (1 from other authserv-ids ignored)"),
    ([f"{MX}; dmarc=pass header.from=example.org; this is not = valid ;;"], UNVERIFIED,
     f"Authentication-Results of {MX} unreadable"),
    ([f"{MX}; dkim=pass header.d=" + "x" * MAX_HEADER_CHARS], UNVERIFIED,
     f"Authentication-Results of {MX} longer than {MAX_HEADER_CHARS} characters ignored"),
    ([], UNVERIFIED, "no trusted Authentication-Results"),
])
def test_verdict_from_authentication_results(values, verdict, evidence):
    result = verdict_from_headers(values, "example.org", TRUSTED)
    assert (result.verdict, result.evidence) == (verdict, evidence)


def test_a_folded_header_and_a_trusted_id_written_in_capitals_in_the_setting():
    folded = f"{MX};\r\n\tdkim=pass header.d=example.org;\r\n\tdmarc=pass\r\n header.from=example.org"
    assert verdict_from_headers([folded], "Example.ORG", frozenset({MX.upper()})).verdict is VERIFIED


def test_dmarc_fail_counts_even_without_a_from_domain_and_pass_needs_one():
    assert verdict_from_headers([f"{MX}; dmarc=fail"], None, TRUSTED).verdict is FAILED
    assert verdict_from_headers([f"{MX}; dmarc=pass"], None, TRUSTED).verdict is UNVERIFIED


@pytest.mark.parametrize(("signing", "author", "expected"), [
    ("example.org", "example.org", True),
    ("EXAMPLE.org.", "example.org", True),
    ("example.org", "mail.example.org", True),
    ("mail.example.org", "example.org", True),
    ("a.example.org", "b.example.org", False),  # siblings: the approximation stays on the safe side
    ("evil.co.uk", "victim.co.uk", False),
    ("co.uk", "victim.co.uk", False),
    ("org", "example.org", False),
    ("example.org.evil.example", "example.org", False),
    ("xexample.org", "example.org", False),
    ("", "example.org", False),
])
def test_relaxed_alignment(signing, author, expected):
    assert aligned(signing, author) is expected


# Intake's own DKIM check -----------------------------------------------------------------------------------------

class DictResolver:
    """DNS TXT records from a dictionary, as dkimpy's dnsfunc; counts the lookups."""

    def __init__(self, records: dict[str, bytes]) -> None:
        self.records = records
        self.lookups: list[str] = []

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        key = name.decode().rstrip(".").lower()
        self.lookups.append(key)
        return self.records.get(key)


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory) -> tuple[bytes, bytes]:
    """A fresh 2048-bit RSA key (openssl): the private key in PEM and the DKIM TXT record of its public key."""
    folder: Path = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True)
    public_der = subprocess.run(["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
                                check=True, capture_output=True).stdout
    return private.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)


def signed_mail(private_key: bytes, domain: str, sender: str = "Jeanne Dupont <jeanne@example.org>",
                body: str = "Bonjour, voici ma réponse.\n") -> bytes:
    import dkim

    message = EmailMessage()
    message["From"] = sender
    message["To"] = "plaintes@ombudsdesk.localhost"
    message["Subject"] = "Re: [MED-2026-00001]"
    message["Message-ID"] = "<signed-1@example.org>"
    message["Date"] = "Tue, 24 Nov 2026 10:00:00 +0100"
    message.set_content(body)
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    signature = dkim.sign(raw, b"s1", domain.encode(), private_key,
                          include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return signature + raw


def test_own_dkim_check_verifies_an_aligned_signature(key_pair):
    private, record = key_pair
    resolver = DictResolver({"s1._domainkey.example.org": record})
    result = verify_dkim(signed_mail(private, "example.org"), "example.org", resolver)
    assert (result.verdict, result.evidence) == (
        VERIFIED, "dkim=pass header.d=example.org aligned with header.from=example.org (intake)")
    assert resolver.lookups == ["s1._domainkey.example.org"]


def test_own_dkim_check_a_tampered_body_fails(key_pair):
    private, record = key_pair
    raw = signed_mail(private, "example.org").replace(b"ma r", b"ta r")
    result = verify_dkim(raw, "example.org", DictResolver({"s1._domainkey.example.org": record}))
    assert (result.verdict, result.evidence) == (
        UNVERIFIED, "dkim=fail header.d=example.org; none aligned with header.from=example.org (intake)")


def test_own_dkim_check_a_valid_signature_of_another_domain_is_not_aligned(key_pair):
    private, record = key_pair
    raw = signed_mail(private, "attacker.example")
    result = verify_dkim(raw, "example.org", DictResolver({"s1._domainkey.attacker.example": record}))
    assert (result.verdict, result.evidence) == (
        UNVERIFIED, "dkim=pass header.d=attacker.example; none aligned with header.from=example.org (intake)")


def test_own_dkim_check_without_a_key_or_a_signature(key_pair):
    private, _ = key_pair
    assert verify_dkim(signed_mail(private, "example.org"), "example.org", DictResolver({})).evidence == (
        "dkim=fail header.d=example.org; none aligned with header.from=example.org (intake)")
    unsigned = b"From: jeanne@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    assert verify_dkim(unsigned, "example.org", DictResolver({})).evidence == "dkim=none (intake)"


def test_understand_runs_the_own_check_only_when_configured(key_pair):
    private, record = key_pair
    raw = signed_mail(private, "example.org")
    resolver = DictResolver({"s1._domainkey.example.org": record})
    assert understand(raw, ParseContext()).sender_verdict is UNVERIFIED
    result = understand(raw, ParseContext(dkim_txt_lookup=resolver))
    assert result.sender_verdict is VERIFIED and result.sender.email == "jeanne@example.org"
    # A trusted header that concludes decides first: DMARC fail is never overturned by intake's own check.
    lookups = len(resolver.lookups)
    failed = f"Authentication-Results: {MX}; dmarc=fail header.from=example.org\r\n".encode() + raw
    result = understand(failed, ParseContext(trusted_authserv_ids=TRUSTED, dkim_txt_lookup=resolver))
    assert result.sender_verdict is FAILED and len(resolver.lookups) == lookups


def test_settings_name_the_trusted_authserv_ids_and_the_own_check_is_off_by_default(monkeypatch):
    monkeypatch.setenv("OMBUDSDESK_AUTHSERV_IDS", "MX.Mediation.Example.be, mx2.mediation.example.be")
    settings = load_settings(IntakeSettings)
    context = parse_context(settings)
    assert context.trusted_authserv_ids == frozenset({MX, "mx2.mediation.example.be"})
    assert context.dkim_txt_lookup is None
    assert settings.letters_scan_max_age_days == 30
    context = parse_context(load_settings(IntakeSettings, verify_dkim_dmarc=True))
    assert context.dkim_txt_lookup is system_txt_lookup
    # The context travels to the parse worker processes: it must pickle.
    assert pickle.loads(pickle.dumps(context)).dkim_txt_lookup is system_txt_lookup


def test_a_dkim_key_too_large_or_with_an_unusual_exponent_is_treated_as_no_key():
    """An 8192-bit key, or a huge exponent, would make each RSA verification cost seconds (security review)."""
    import base64
    import subprocess

    from services.intake.message.authentication import acceptable_key_record

    def record(bits: int, exponent: int) -> bytes:
        der = subprocess.run(
            ["sh", "-c", f"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:{bits} "
                         f"-pkeyopt rsa_keygen_pubexp:{exponent} 2>/dev/null | openssl pkey -pubout -outform DER"],
            capture_output=True, check=True).stdout
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    assert acceptable_key_record(record(2048, 65537))
    assert not acceptable_key_record(record(2048, 65539))
    assert not acceptable_key_record(record(4608, 65537))
