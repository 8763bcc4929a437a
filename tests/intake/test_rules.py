"""The chain of named rules that tells what kind of message intake took in (services/intake/message/rules).

One example per rule: a message the rule hits. A rule without an example fails `test_every_rule_has_an_example`,
so adding a rule is adding its module and one line here.
"""

from __future__ import annotations

import sys
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.intake.message.rules import CHAIN, Outcome, Rule, discover
from services.intake.message.understanding import ParseContext, understand

MAILS = Path(__file__).parent / "mails"
CONTEXT = ParseContext(staff_addresses=frozenset({"accueil@commune.example.be"}))


def mail(subject: str = "Plainte", body: str = "Bonjour, ma facture est fausse.", sender: str = "jeanne@example.org",
         **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "plaintes@ombudsdesk.localhost"
    message["Subject"] = subject
    message["Message-ID"] = "<rule-example@example.org>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


FORWARD = ("Pour suite utile.\n\n-----Original Message-----\nFrom: Jeanne Dupont <jeanne@example.org>\n"
           "Sent: Tuesday, 24 November 2026 09:15\nSubject: Plainte eau\n\nMa facture d'eau est fausse.\n")

# rule name -> (raw message, parse context)
EXAMPLES: dict[str, tuple[bytes, ParseContext]] = {
    "dsn-bounce": (mail("Undelivered Mail Returned to Sender", "The mail could not be delivered to "
                        "<jeanne@example.org>: 550 5.1.1 user unknown", "MAILER-DAEMON@mx.example.net",
                        X_Failed_Recipients="jeanne@example.org"), CONTEXT),
    "multipart-report": ((MAILS / "arf_abuse_report.eml").read_bytes(), CONTEXT),
    "delivery-notice": (mail("Delivery Status Notification (Delay)", "Still trying.",
                             "MAILER-DAEMON@mx.example.net"), CONTEXT),
    "staff-forward": (mail("TR: Plainte eau", FORWARD, "accueil@commune.example.be"), CONTEXT),
    "auto-submitted-header": (mail(Auto_Submitted="auto-replied"), CONTEXT),
    "precedence-header": (mail(Precedence="bulk"), CONTEXT),
    "list-headers": (mail(List_Id="<news.example.org>"), CONTEXT),
    "auto-reply-headers": (mail(X_Autoreply="yes"), CONTEXT),
    "challenge-response-agent": (mail(X_Delivery_Agent="TMDA/1.1.12"), CONTEXT),
    "own-message-id": (mail().replace(b"<rule-example@example.org>", b"<ack.1@ombudsdesk.localhost>"), CONTEXT),
    "null-reverse-path": (mail(), ParseContext(envelope_sender="")),
    "machine-sender": (mail(sender="no-reply@example.org"), CONTEXT),
    "challenge-response-domain": (mail(sender="guard@boxbe.com"), CONTEXT),
    "challenge-response-text": (mail(body="This account is protected by Bluebottle.\nPlease confirm."), CONTEXT),
    "vacation-subject": (mail("Out of Office: Re: votre plainte"), CONTEXT),
    "challenge-response-subject": (mail("Please confirm you are human: Plainte"), CONTEXT),
    "auto-reply-to-our-mail": (mail("Re: votre dossier (message d'absence)",
                                    In_Reply_To="<ack.1@ombudsdesk.localhost>"), CONTEXT),
    "delivery-notice-subject": (mail("Avis de non-remise", "x", "Service courrier"), CONTEXT),
    "x-auto-response-suppress": (mail(X_Auto_Response_Suppress="All"), CONTEXT),
}


def test_every_rule_has_an_example():
    assert {rule.name for rule in CHAIN} == set(EXAMPLES)


def test_rules_run_in_order_with_unique_names():
    assert [rule.order for rule in CHAIN] == sorted(rule.order for rule in CHAIN)
    assert len({rule.name for rule in CHAIN}) == len(CHAIN)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_rule_hits_its_example_and_says_why(name):
    raw, context = EXAMPLES[name]
    hits = understand(raw, context).rules
    hit = next((hit for hit in hits if hit.rule == name), None)
    assert hit is not None, [hit.rule for hit in hits]
    assert hit.outcome == next(rule.outcome.value for rule in CHAIN if rule.name == name)
    assert hit.why


def test_a_citizens_complaint_hits_no_rule():
    result = understand(mail(), CONTEXT)
    assert result.rules == ()
    assert result.automated_reason is None


def test_only_hits_are_recorded_and_the_first_of_a_kind_decides():
    raw = mail("Out of Office: absent", Auto_Submitted="auto-replied", Precedence="bulk",
               X_Auto_Response_Suppress="All")
    result = understand(raw, CONTEXT)
    assert [(hit.rule, hit.outcome) for hit in result.rules] == [
        ("auto-submitted-header", "automated"), ("x-auto-response-suppress", "acknowledgment-suppressed")]
    assert result.automated_reason == "Auto-Submitted: auto-replied"
    assert result.acknowledgment_suppressed == "X-Auto-Response-Suppress"


def test_the_vacation_reply_is_classified_by_its_named_rule():
    result = understand((MAILS / "vacation_reply_subject_only.eml").read_bytes(), CONTEXT)
    assert result.rules[0].rule == "vacation-subject"
    assert result.automated_reason == result.rules[0].why


def test_a_staff_forward_is_not_suppressed_by_the_staff_members_header():
    raw = mail("TR: Plainte eau", FORWARD, "accueil@commune.example.be", X_Auto_Response_Suppress="All")
    result = understand(raw, CONTEXT)
    assert [hit.rule for hit in result.rules] == ["staff-forward"]
    assert result.sender.email == "jeanne@example.org"
    assert result.acknowledgment_suppressed is None


def test_a_bounce_is_recorded_as_such():
    raw, context = EXAMPLES["dsn-bounce"]
    result = understand(raw, context)
    assert result.bounce is not None and result.automated_reason == "delivery status notification"
    assert result.rules[0].rule == "dsn-bounce"


def test_a_new_rule_is_found_by_adding_its_module(tmp_path, monkeypatch):
    package = tmp_path / "extra_rules"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helpers.py").write_text("NOT_A_RULE = True\n")
    (package / "shouting_subject.py").write_text(textwrap.dedent('''
        from services.intake.message.rules import Outcome, Rule

        RULE = Rule("shouting-subject", 10, Outcome.AUTOMATED, "A subject in capitals",
                    lambda facts: "capitals" if facts.subject.isupper() else None)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import extra_rules

    found = discover(extra_rules)
    assert [rule.name for rule in found] == ["shouting-subject"]
    assert isinstance(found[0], Rule) and found[0].outcome is Outcome.AUTOMATED
    sys.modules.pop("extra_rules.shouting_subject", None)


def test_two_rules_with_one_name_are_refused(tmp_path, monkeypatch):
    package = tmp_path / "clashing_rules"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ("one", "two"):
        (package / f"{module}.py").write_text(textwrap.dedent(f'''
            from services.intake.message.rules import Outcome, Rule

            RULE = Rule("same-name", {10 if module == "one" else 20}, Outcome.AUTOMATED, "x", lambda facts: None)
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import clashing_rules

    with pytest.raises(ValueError, match="same-name"):
        discover(clashing_rules)


def test_a_public_module_without_a_rule_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "ruleless_rules"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("HELP = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import ruleless_rules

    with pytest.raises(TypeError, match="defines no RULE"):
        discover(ruleless_rules)
