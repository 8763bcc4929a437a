"""Who wrote this message (pure, no server): addresses parsed before decoding, the sender verdict from trusted
Authentication-Results only, identity anomalies, and staff forwards trusted only when the forward is authenticated.

Each attack is a mail file under tests/intake/mails/, named for it; the expected values are read off the file by
hand, not computed by the code under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.intake.message.understanding import ParseContext, Understanding, understand
from shared.events import Provenance, SenderVerdict

MAILS = Path(__file__).parent / "mails"
MX = "mx.mediation.example.be"
CONTEXT = ParseContext(trusted_authserv_ids=frozenset({MX}))
STAFF = ParseContext(trusted_authserv_ids=frozenset({MX}), staff_addresses=frozenset({"balie@commune.example.be"}),
                     staff_domains=frozenset({"commune.example.be"}))


def read(name: str, context: ParseContext = CONTEXT) -> Understanding:
    return understand((MAILS / name).read_bytes(), context)


def test_an_encoded_line_break_in_the_display_name_never_makes_an_address():
    result = read("encoded_crlf_from.eml")
    assert result.sender.email == "eve@example.com"
    # Decoded for display only: the CR LF is gone, what it tried to smuggle is plain text of the name.
    assert result.sender.name == "Eve Bcc: victim@example.org"
    assert "\r" not in result.sender.name and "\n" not in result.sender.name
    assert "victim@example.org" not in result.recipients
    assert "display_name_shows_another_address" in result.identity_notes
    assert result.sender_verdict is SenderVerdict.UNVERIFIED
    assert result.case_numbers == ("MED-2026-00001",)


def test_a_quoted_address_as_display_name_is_a_name():
    result = read("display_name_as_address.eml")
    assert (result.sender.name, result.sender.email) == ("victim@example.org", "eve@example.com")
    assert "display_name_shows_another_address" in result.identity_notes


def test_an_unquoted_address_before_the_angle_address_is_not_the_sender():
    result = read("display_name_unquoted_address.eml")
    assert result.sender.email == "eve@example.com"
    assert "several_from_addresses: victim@example.org, eve@example.com" in result.identity_notes
    assert result.sender_verdict is SenderVerdict.UNVERIFIED


def test_an_encoded_word_alone_is_no_address():
    result = read("encoded_address_only.eml")
    assert result.sender.email is None
    assert "no_from_address" in result.identity_notes


def test_an_encoded_word_in_the_local_part_stays_literal_and_is_never_decoded_into_another_address():
    result = read("encoded_word_in_local_part.eml")
    assert result.sender.email == "=?utf-8?q?attacker?q?agent?=@victim.example"  # not agent@victim.example
    assert "encoded_word_in_address" in result.identity_notes


def test_an_encoded_word_alone_falls_back_to_the_envelope_sender_never_to_the_decoded_text():
    raw = (MAILS / "encoded_address_only.eml").read_bytes()
    result = understand(raw, ParseContext(envelope_sender="bounce@mailer.example"))
    assert result.sender.email == "bounce@mailer.example"
    assert result.sender_verdict is SenderVerdict.UNVERIFIED


def test_raw_8bit_from_keeps_its_address_and_decodes_its_name_with_the_body_charset():
    result = read("raw_8bit_from.eml")
    assert (result.sender.name, result.sender.email) == ("Renée Dupont", "renee@example.org")
    assert not any(note.startswith("sender_differs") for note in result.identity_notes)


def test_authentication_results_from_a_foreign_authserv_id_are_ignored():
    result = read("forged_authentication_results.eml")
    assert result.sender.email == "jeanne@example.org"
    assert result.sender_verdict is SenderVerdict.UNVERIFIED
    assert result.sender_evidence == "no trusted Authentication-Results (1 from other authserv-ids ignored)"


def test_without_any_trusted_authserv_id_nothing_is_verified():
    result = read("dmarc_pass_trusted.eml", ParseContext())
    assert result.sender_verdict is SenderVerdict.UNVERIFIED


def test_a_dmarc_fail_in_any_trusted_header_wins_over_the_topmost_pass():
    """The MX's own header (topmost, mixed case, with a comment) says pass; one further down with the same
    authserv-id says fail: a pass cannot outvote a recorded DMARC fail (split milters may write it below)."""
    result = read("dmarc_pass_trusted.eml")
    assert result.sender_verdict is SenderVerdict.FAILED
    assert result.sender_evidence == "dmarc=fail header.from=example.org (mx.mediation.example.be)"
    assert result.identity_notes == ()


def test_authentication_results_from_a_client_that_is_not_a_trusted_relay_are_ignored():
    """Delivered straight to intake by a client outside smtp_relay_clients: its trusted-looking header is its own."""
    context = ParseContext(trusted_authserv_ids=frozenset({"mx.mediation.example.be"}),
                           provenance=Provenance(peer_ip="192.0.2.66", delivered_by_relay=False))
    result = read("dmarc_fail_follow_up.eml", context)
    assert result.sender_verdict is SenderVerdict.UNVERIFIED
    assert "not delivered by a trusted relay" in result.sender_evidence


def test_dmarc_fail_on_a_follow_up_is_failed_whatever_a_forged_header_below_says():
    result = read("dmarc_fail_follow_up.eml")
    assert result.sender_verdict is SenderVerdict.FAILED
    assert result.sender_evidence == "dmarc=fail header.from=example.org (mx.mediation.example.be)"
    assert result.our_references == () and result.case_numbers == ("MED-2026-00001",)


def test_dkim_pass_for_a_parent_domain_of_the_from_domain_is_verified():
    result = read("dkim_aligned_subdomain.eml")
    assert result.sender_verdict is SenderVerdict.VERIFIED
    assert result.sender_evidence == ("dkim=pass header.d=mail.example.org aligned with header.from=example.org "
                                      "(mx.mediation.example.be)")


def test_dkim_pass_of_another_registrant_under_a_public_suffix_is_not_aligned():
    result = read("dkim_pass_other_registrant.eml")
    assert result.sender_verdict is SenderVerdict.UNVERIFIED
    assert result.sender_evidence == "dmarc=none header.from=victim.co.uk (mx.mediation.example.be)"


def test_several_from_headers_are_recorded_and_never_verified():
    result = read("several_from_headers.eml")
    assert result.sender.email == "eve@attacker.example"  # the first From with an address, as before
    assert "several_from_headers: 2" in result.identity_notes
    assert "several_from_addresses: eve@attacker.example, jeanne@example.org" in result.identity_notes
    assert result.sender_verdict is SenderVerdict.UNVERIFIED
    assert result.sender_evidence == ("dmarc=pass header.from=attacker.example (mx.mediation.example.be); "
                                      "not verified: several_from_headers, several_from_addresses")


def test_a_sender_that_differs_from_from_is_recorded_and_never_verified():
    result = read("sender_differs.eml")
    assert result.sender.email == "jeanne@example.org"
    assert result.identity_notes == ("sender_differs: robot@lists.example.net",)
    assert result.sender_verdict is SenderVerdict.UNVERIFIED


def test_an_unauthenticated_staff_forward_is_extracted_but_held():
    result = read("staff_forward_unauthenticated.eml", STAFF)
    assert result.forwarded_by is not None and result.forwarded_by.email == "accueil@commune.example.be"
    assert result.sender.email == "jeanne@example.org"  # staff see whom it is about
    assert result.forward_verified is False
    assert result.needs_confirmation == "staff_forward_not_verified"
    assert result.sent_at is not None and result.sent_at.year == 2024


def test_a_staff_forward_verified_by_the_mx_for_the_staff_domain_is_trusted():
    result = read("staff_forward_authenticated_by_mx.eml", STAFF)
    assert result.forwarded_by is not None and result.forwarded_by.email == "accueil@commune.example.be"
    assert result.sender.email == "jeanne@example.org"
    assert result.sender_verdict is SenderVerdict.VERIFIED
    assert (result.forward_verified, result.needs_confirmation) == (True, None)


def test_a_pass_for_another_domain_does_not_authenticate_a_staff_forward():
    result = read("staff_forward_verified_for_another_domain.eml", STAFF)
    assert result.sender_verdict is SenderVerdict.UNVERIFIED
    assert (result.forward_verified, result.needs_confirmation) == (False, "staff_forward_not_verified")


@pytest.mark.parametrize(("provenance", "trusted"), [
    (Provenance(authenticated_as="balie@commune.example.be"), True),  # a login named in staff_logins
    (Provenance(authenticated_as="copier@commune.example.be"), False),  # looks like staff, is not a staff login
    (Provenance(staff_mailbox=True), True),
    (Provenance(authenticated_as="copieur"), False),  # a login that names no staff member
    (Provenance(authenticated_as="jeanne@example.org"), False),
    (Provenance(peer_ip="192.0.2.10", peer_helo="commune.example.be"), False),  # what a client says is no proof
])
def test_a_staff_forward_over_a_staff_channel_is_trusted(provenance, trusted):
    context = ParseContext(staff_domains=STAFF.staff_domains, staff_addresses=STAFF.staff_addresses,
                           staff_logins=frozenset({"balie@commune.example.be"}), provenance=provenance)
    result = read("staff_forward_unauthenticated.eml", context)
    assert result.forwarded_by is not None and result.sender.email == "jeanne@example.org"
    assert result.forward_verified is trusted
    assert result.needs_confirmation == (None if trusted else "staff_forward_not_verified")


def test_an_attached_original_is_read_from_its_raw_from_header():
    result = read("staff_forward_attached_encoded_from.eml", STAFF)
    assert result.forwarded_by is not None and result.forwarded_by.email == "balie@commune.example.be"
    assert (result.sender.name, result.sender.email) == ("victim@example.org", "eve@example.com")
    assert result.needs_confirmation == "staff_forward_not_verified"


def test_hostile_address_headers_are_bounded():
    import time

    long_from = b"From: " + b"a" * 200_000 + b" <eve@example.com>\r\n"
    nested = b"From: " + b"(" * 7_900 + b"eve@example.com\r\n"  # just under the length that is not parsed
    long_trusted = b"Authentication-Results: " + MX.encode() + b"; dmarc=pass header.from=" + b"x" * 5000 + b"\r\n"
    foreign = b"Authentication-Results: other.example; dmarc=pass header.from=" + b"x" * 4000 + b"\r\n"
    for head in (long_from, nested, long_trusted * 60, foreign * 1000):
        raw = head + b"Subject: x\r\nMessage-ID: <h@example.com>\r\n\r\nbody\r\n"
        started = time.perf_counter()
        result = understand(raw, CONTEXT)
        assert time.perf_counter() - started < 2.0
        assert result.sender_verdict is SenderVerdict.UNVERIFIED
