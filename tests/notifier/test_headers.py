"""Header injection is impossible; our headers are the ones that keep machines quiet (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.notifier.headers import UnsafeAddress, clean_address, clean_header_text, clean_message_id, new_message_id
from services.notifier.mail import Sender, build_email, parse_email
from services.notifier.suppression import SuppressionRules, suppression_reason


@pytest.mark.parametrize(
    "hostile",
    [
        "Jeanne\r\nBcc: victim@example.org",
        "Jeanne\nBcc: victim@example.org",
        "Jeanne\rBcc: victim@example.org",
        "Jeanne\u2028Bcc: victim@example.org",
        "Jeanne\x85Bcc: victim@example.org",
        "=?utf-8?q?Jeanne=0D=0ABcc=3A_victim@example.org?=",
        "=?utf-8?b?SmVhbm5lDQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",
    ],
)
def test_hostile_names_and_subjects_stay_on_one_line(hostile: str):
    cleaned = clean_header_text(hostile)
    assert "\r" not in cleaned and "\n" not in cleaned and "=?" not in cleaned
    message = parse_email(build_email(
        sender=Sender("plaintes@ombudsdesk.localhost", "Service\r\nX-Evil: 1"),
        recipient="jeanne@example.org",
        recipient_name=hostile,
        subject=f"[MED-2026-00001] {hostile}",
        text="Bonjour",
        html="",
        message_id="<abc@ombudsdesk.localhost>",
        language="fr",
        date=datetime(2026, 11, 24, tzinfo=timezone.utc),
    ))  # the wire form, read back
    raw = message.as_bytes()
    header_block = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    header_names = [line.split(b":", 1)[0].lower() for line in header_block.splitlines() if line[:1] not in (b" ", b"\t")]
    assert b"bcc" not in header_names and b"x-evil" not in header_names
    assert message.get_all("To") and len(message.get_all("To")) == 1
    assert message["To"].addresses[0].addr_spec == "jeanne@example.org"


@pytest.mark.parametrize(
    "address",
    ["a@b.org\r\nRCPT TO:<x@y.org>", "a@b.org, c@d.org", "Jeanne <a@b.org>", "a@localhost", "", "a b@c.org",
     "\"a@b\"@c.org"],
)
def test_only_one_plain_address_is_accepted(address: str):
    with pytest.raises(UnsafeAddress):
        clean_address(address)


def test_address_domain_is_lowercased():
    assert clean_address("<Jeanne.Dupont@Example.ORG>") == "Jeanne.Dupont@example.org"


def test_message_ids_are_ours_and_unguessable():
    first = new_message_id("ombudsdesk.localhost")
    assert first != new_message_id("ombudsdesk.localhost")
    assert len(first.split(".notice@")[0]) > 30  # 128 random bits, nothing derived from the case number
    assert first.endswith("@ombudsdesk.localhost>") and first.startswith("<")
    assert clean_message_id("citizen-1@example.org") == "<citizen-1@example.org>"
    assert clean_message_id("<a@b>\r\nBcc: x@y") is None


def test_auto_reply_headers_and_threading():
    message = parse_email(build_email(
        sender=Sender("plaintes@ombudsdesk.localhost", "Service de médiation"),
        recipient="jeanne@example.org",
        recipient_name="Jeanne Dupont",
        subject="[MED-2026-00001] Accusé de réception",
        text="Bonjour",
        html="<p>Bonjour</p>",
        message_id="<abc@ombudsdesk.localhost>",
        language="fr",
        date=datetime(2026, 11, 24, tzinfo=timezone.utc),
        in_reply_to="<c2@example.org>",
        references=("<c1@example.org>", "<c2@example.org>"),
    ))  # the wire form, read back
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["In-Reply-To"] == "<c2@example.org>"
    assert message["References"] == "<c1@example.org> <c2@example.org>"
    assert message.get_content_type() == "multipart/alternative"


def test_the_wire_form_is_7_bit_folded_and_reads_back_as_written():
    text = "Madame,\n\nNous avons bien reçu votre réclamation « test » = 1.\n. Une ligne qui commence par un point\n" + \
        "é" * 120 + "\n"
    html = "<p>Madame, reçu</p>"
    raw = build_email(
        sender=Sender("plaintes@ombudsdesk.localhost", "Service de médiation de l'État"),
        recipient="jeanne@example.org",
        recipient_name="Dupont, Jeanne",
        subject="[MED-2026-00001] Accusé de réception de votre réclamation au sujet de votre pension de retraite",
        text=text,
        html=html,
        message_id="<abc@ombudsdesk.localhost>",
        language="fr",
        date=datetime(2026, 11, 24, tzinfo=timezone.utc),
    )
    assert raw.isascii() and all(len(line) <= 78 for line in raw.split(b"\r\n"))  # RFC 5322 2.1.1
    assert b"\n" not in raw.replace(b"\r\n", b"")
    message = parse_email(raw)
    assert message["To"].addresses[0].display_name == "Dupont, Jeanne"
    assert str(message["From"]) == "Service de médiation de l'État <plaintes@ombudsdesk.localhost>"
    assert str(message["Subject"]) == ("[MED-2026-00001] Accusé de réception de votre réclamation au sujet de votre "
                                       "pension de retraite")  # folded over several encoded words
    plain, rich = (part.get_content().replace("\r\n", "\n") for part in message.iter_parts())
    assert plain == text and rich == html + "\n"


RULES = SuppressionRules.build(
    own_addresses=["plaintes@ombudsdesk.localhost"],
    own_domains=["ombudsdesk.localhost"],
    staff_addresses=["accueil@commune.example.be"],
    staff_domains=["guichet.example.be"],
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("jeanne@example.org", None),
        ("MAILER-DAEMON@example.org", "machine_address"),
        ("postmaster@example.org", "machine_address"),
        ("newsletter-request@lists.example.org", "machine_address"),
        ("owner-consumers@lists.example.org", "machine_address"),
        ("noreply-pensions@example.org", "machine_address"),
        ("plaintes@ombudsdesk.localhost", "own_address"),
        ("someone@ombudsdesk.localhost", "own_address"),
        ("accueil@commune.example.be", "staff_address"),
        ("agent@guichet.example.be", "staff_address"),
    ],
)
def test_whom_we_never_answer(address: str, expected: str | None):
    assert suppression_reason(address, RULES) == expected


def test_automated_messages_are_never_answered_and_staff_do_get_staff_notices():
    assert suppression_reason("jeanne@example.org", RULES, automated=True, automated_reason="bounce") == (
        "automated_message: bounce"
    )
    assert suppression_reason("agent@guichet.example.be", RULES, citizen_notice=False) is None
    assert suppression_reason("plaintes@ombudsdesk.localhost", RULES, citizen_notice=False) == "own_address"


def test_own_and_staff_addresses_come_from_the_same_settings_as_intake(monkeypatch):
    from services.notifier.handlers import suppression_rules
    from services.notifier.settings import NotifierSettings

    monkeypatch.setenv("OMBUDSDESK_COMPLAINT_ADDRESSES", "Plaintes@Mediation.example.be, klachten@mediation.example.be")
    monkeypatch.setenv("OMBUDSDESK_STAFF_DOMAINS", '["guichet.example.be"]')
    rules = suppression_rules(NotifierSettings())
    assert suppression_reason("klachten@mediation.example.be", rules, citizen_notice=False) == "own_address"
    assert suppression_reason("plaintes@mediation.example.be", rules) == "own_address"
    assert suppression_reason("agent@guichet.example.be", rules) == "staff_address"
    assert suppression_reason("agent@guichet.example.be", rules, citizen_notice=False) is None
