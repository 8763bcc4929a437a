"""Kind-specific acknowledgments (issue 15): a compliment or a suggestion is thanked without the complaint
procedure's deadlines, appeal notice or second-line ombudsman; a question gets an answer-oriented receipt (when the
answer comes, no appeal notice); a complaint keeps its acknowledgment. Over real NATS and a real SMTP server, in
French, Dutch, German and English; and the DPO's notice of a data-protection complaint, in the staff language."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.notifier.handlers import organisation_variables
from services.notifier.notices import NoticeKind, draft_acknowledgment, draft_requested_notice
from services.notifier.rendering import LANGUAGES, TemplateRenderer, long_date
from services.notifier.settings import NotifierSettings
from services.notifier.wiring import NotifierService
from shared.events import NoticeRequested, Party
from tests.notifier.support import SmtpSink, eventually, publish, publish_duplicate, registered_event, wait_until

VARIANTS = ("compliment", "suggestion", "question")
# Words of the appeal-deadline and second-line sentences of both shipped jurisdictions, per language: none of them
# may appear in a thank-you, and only the second-line ones may not appear in a question's receipt either.
APPEAL_WORDS = {"fr": ("délais de recours", "recours"), "nl": ("beroep",), "de": ("Rechtsbehelf", "Fristen"),
                "en": ("appeal", "time limits")}
SECOND_LINE_WORDS = {"fr": ("second niveau", "Médiateur fédéral", "Défenseur"),
                     "nl": ("Federale Ombudsman", "kosteloos"), "de": ("Föderalen Ombudsmann", "kostenlos"),
                     "en": ("Federal Ombudsman", "free of charge")}
SUBJECTS = {
    ("compliment", "fr"): "Merci pour votre message", ("compliment", "nl"): "Bedankt voor uw bericht",
    ("compliment", "de"): "Vielen Dank für Ihre Nachricht", ("compliment", "en"): "Thank you for your message",
    ("suggestion", "fr"): "Merci pour votre suggestion", ("suggestion", "nl"): "Bedankt voor uw suggestie",
    ("suggestion", "de"): "Vielen Dank für Ihren Vorschlag", ("suggestion", "en"): "Thank you for your suggestion",
    ("question", "fr"): "Nous avons bien reçu votre question", ("question", "nl"): "Wij hebben uw vraag ontvangen",
    ("question", "de"): "Wir haben Ihre Frage erhalten", ("question", "en"): "We received your question",
    ("complaint", "fr"): "Accusé de réception de votre réclamation",
    ("complaint", "nl"): "Ontvangstmelding van uw klacht",
    ("complaint", "de"): "Eingangsbestätigung Ihrer Beschwerde",
    ("complaint", "en"): "Acknowledgment of your complaint",
}
RECEIVED, DUE = date(2026, 11, 24), date(2027, 1, 8)


def sample(language: str) -> dict[str, object]:
    return {"case_number": "MED-2026-00042", "recipient_name": "Jeanne Dupont", "subject_line": "Accueil au guichet",
            "received_on": RECEIVED, "answer_due": DUE, "handler_name": "", "service_concerned": "",
            "channel": "email", "org": organisation_variables(NotifierSettings(), language)}


# --- which template -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "template"), [
    ("complaint", "acknowledgment"), ("compliment", "acknowledgment_compliment"),
    ("suggestion", "acknowledgment_suggestion"), ("question", "acknowledgment_question"),
    (" Compliment ", "acknowledgment_compliment"),
    # Anything else (an older producer, a value nobody planned) gets the complaint's full acknowledgment, never
    # a template name built from the event: the legal notices are the safe default.
    ("../staff_message", "acknowledgment"), ("acknowledgment", "acknowledgment"), ("", "acknowledgment"),
])
def test_the_kind_received_chooses_the_acknowledgment_template(kind: str, template: str):
    draft = draft_acknowledgment(registered_event(kind=kind), "fr")
    assert draft.template_name == template
    assert draft.kind is NoticeKind.ACKNOWLEDGMENT  # limits and the registry's bookkeeping see an acknowledgment
    assert draft.notification_key == "acknowledgment:MED-2026-00001"


def test_variants_are_not_kinds_of_their_own():
    kinds = TemplateRenderer().kinds()
    assert "acknowledgment" in kinds and "dpo_notification" in kinds
    assert not [kind for kind in kinds if kind.startswith("acknowledgment_")]


# --- what each says, in each language -----------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("jurisdiction", ["BE", "FR"])
def test_thank_yous_and_questions_carry_no_appeal_notice(variant: str, language: str, jurisdiction: str):
    from services.notifier.legal_notices import load_legal_notices

    renderer = TemplateRenderer(legal_notices=load_legal_notices(jurisdiction))
    rendered = renderer.render(f"acknowledgment_{variant}", language, sample(language), legal_on=date(2026, 11, 24))
    text = rendered.text
    assert rendered.subject == f"[MED-2026-00042] {SUBJECTS[variant, language]}"
    assert "MED-2026-00042" in text and long_date(RECEIVED, language) in text
    for word in (*APPEAL_WORDS[language], *SECOND_LINE_WORDS[language], "L213-6"):
        assert word not in text, (word, text)
    assert rendered.legal_notice_version is None  # it printed no legal sentence
    if variant == "question":
        assert long_date(DUE, language) in text  # when to expect the answer
    else:
        assert long_date(DUE, language) not in text  # no procedure deadline in a thank-you


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_complaint_acknowledgment_keeps_its_deadlines_and_legal_notices(language: str):
    rendered = TemplateRenderer().render("acknowledgment", language, sample(language), legal_on=date(2026, 11, 24))
    assert long_date(DUE, language) in rendered.text
    assert any(word in rendered.text for word in APPEAL_WORDS[language])
    assert any(word in rendered.text for word in SECOND_LINE_WORDS[language])
    assert rendered.legal_notice_version == "be-2000"


def test_a_deployment_overrides_a_variant_from_its_templates_dir(tmp_path: Path):
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "acknowledgment_compliment.j2").write_text(
        "{% block subject %}[{{ case_number }}] Un grand merci{% endblock %}{% block body %}Merci !{% endblock %}",
        encoding="utf-8")
    renderer = TemplateRenderer(tmp_path)
    assert renderer.render("acknowledgment_compliment", "fr", sample("fr")).subject == "[MED-2026-00042] Un grand merci"
    assert "suggestion" in renderer.render("acknowledgment_suggestion", "fr", sample("fr")).subject  # others shipped


# --- over NATS and SMTP ---------------------------------------------------------------------------------------------
async def test_each_kind_gets_its_own_acknowledgment_in_four_languages(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    events = {}
    for index, (kind, language) in enumerate((k, lang) for k in (*VARIANTS, "complaint") for lang in LANGUAGES):
        number = f"MED-2026-{index + 1:05d}"
        events[number] = (kind, language)
        # Each citizen their own address: the acknowledgment limit per address must not interfere.
        await publish(nats_server.url, registered_event(
            number, kind=kind, language=language,
            complainant=Party(name="Jeanne Dupont", email=f"citizen{index}@example.org")))
    await wait_until(lambda: len(smtp_sink.messages) >= len(events), timeout=30, what="16 acknowledgments")

    for mail in smtp_sink.messages:
        number = mail["Subject"][1:15]
        kind, language = events[number]
        text = mail.get_body(("plain",)).get_content()
        assert mail["Subject"] == f"[{number}] {SUBJECTS[kind, language]}"
        assert mail["Content-Language"] == language
        assert number in text and long_date(date(2026, 11, 24), language) in text
        appeal = any(word in text for word in APPEAL_WORDS[language])
        second_line = any(word in text for word in SECOND_LINE_WORDS[language])
        answer_date = long_date(date(2027, 1, 8), language) in text
        assert (appeal, second_line, answer_date) == {
            "complaint": (True, True, True), "question": (False, False, True),
            "compliment": (False, False, False), "suggestion": (False, False, False)}[kind], (kind, language, text)
    stored = {notice.complaint_number: notice for notice in await running_notifier.outbox.notices()}
    for number, (kind, _) in events.items():
        notice = stored[number]
        assert notice.notice_kind == "acknowledgment"
        assert notice.template == ("acknowledgment" if kind == "complaint" else f"acknowledgment_{kind}")
        assert notice.legal_notice_version == ("be-2000" if kind == "complaint" else None)


# --- the DPO's notice -------------------------------------------------------------------------------------------------
def dpo_request(number: str = "MED-2026-00077", **context: object) -> NoticeRequested:
    return NoticeRequested(request_key=f"dpo_notification:{number}", complaint_number=number,
                           notice_kind="dpo_notification", recipient=Party(email="dpo@example.org"),
                           context={"legal_start": "2026-11-24", "answer_due": "2027-01-08", **context})


def test_the_dpo_notice_is_a_staff_notice_in_the_staff_language():
    draft = draft_requested_notice(dpo_request(), "fr", "de")
    assert draft.kind is NoticeKind.DPO_NOTIFICATION and not draft.for_citizen
    assert draft.language == "de"
    assert draft.variables["received_on"] == date(2026, 11, 24)
    # A citizen's notice still falls back to the default language, not the staff one.
    follow_up = NoticeRequested(request_key="k", complaint_number="MED-2026-00077", notice_kind="follow_up_received",
                                recipient=Party(email="c@example.org"))
    assert draft_requested_notice(follow_up, "fr", "de").language == "fr"


async def test_the_dpo_is_told_once_in_the_staff_language_with_the_number_only(
    start_notifier, nats_server, smtp_sink: SmtpSink
):
    service = await start_notifier(staff_language="nl")
    # Whatever a producer adds to the context (a subject, a name), the DPO's notice prints none of it.
    request = dpo_request(subject="RGPD : mes données de santé", complainant="Marie Secret")
    await publish(nats_server.url, request)
    await publish_duplicate(nats_server.url, request)
    await wait_until(lambda: len(smtp_sink.messages) >= 1, what="the DPO's notice")

    async def settled() -> bool:
        return all(n.status == "sent" for n in await service.outbox.notices("MED-2026-00077"))

    await eventually(settled, what="the notice marked sent")
    [mail] = smtp_sink.messages
    text = mail.get_body(("plain",)).get_content()
    assert mail["To"] == "dpo@example.org"
    assert mail["Subject"] == "[MED-2026-00077] Nieuwe klacht over gegevensbescherming"
    assert mail["Auto-Submitted"] == "auto-generated"  # a staff notice, not a reply to a citizen
    assert "24 november 2026" in text and "8 januari 2027" in text
    for private in ("RGPD", "santé", "Marie", "Secret"):
        assert private not in text and private not in mail["Subject"]
    [notice] = await service.outbox.notices("MED-2026-00077")
    assert notice.notice_kind == "dpo_notification" and notice.legal_notice_version is None
