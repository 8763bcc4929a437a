"""Trust at the door (issue 10) in the register, on SQLite and PostgreSQL: what is known of who wrote a message is
stored and shown; a failed sender, a forward nobody proved and an old letter date are held for staff (nothing is
registered nor sent); an unverified follow-up is attached but marked; a read receipt joins the file of the notice it
reports on, as an event, never as a complaint."""

from __future__ import annotations

from datetime import datetime, timezone

from services.registry import views
from services.registry.commands import RegisterHeld
from services.registry.followups import (
    CaseFacts,
    Hold,
    HoldReason,
    MatchedBy,
    NoticeFacts,
    RecordReceipt,
    RegisterNew,
    decide,
    receipt_disposition,
)
from services.registry.vocabulary import label
from services.registry.workflow import ReopenPolicy
from shared.events import (
    AttachmentRef,
    ComplaintChanged,
    ComplaintRegistered,
    MessageAppended,
    NoticeRequested,
    NotificationSent,
    Party,
    Provenance,
    SenderVerdict,
)
from tests.registry.conftest import received

TODAY = datetime(2026, 11, 24, tzinfo=timezone.utc).date()
POLICY = ReopenPolicy(window_days=30)
JEANNE = "jeanne.dupont@example.org"
ACK_ID = "<ack-7f3a9c@notices.ombudsdesk.test>"
# What a read receipt's sender may write into it: free text and an attachment, neither of which belongs in a file.
RECEIPT_TEXT = "Your message was displayed. Urgent: verify your account at https://evil.example/login"
RECEIPT_ATTACHMENT = AttachmentRef(filename="invoice.pdf.exe", content_type="application/octet-stream", size=3,
                                   sha256="0" * 64, object_name="attachments/evil")


# --- the decision (pure) ------------------------------------------------------------------------------------------
def _case(number: str = "MED-2026-00001") -> CaseFacts:
    return CaseFacts(number=number, matched_by=MatchedBy.HEADER, parties=frozenset({JEANNE}))


def test_a_failed_sender_is_held_even_from_a_party_and_even_for_a_new_complaint():
    for referenced in ([_case()], []):
        decision = decide(sender_email=JEANNE, referenced=referenced, today=TODAY, policy=POLICY, sender_failed=True)
        assert isinstance(decision, Hold) and decision.reason is HoldReason.SENDER_FAILED_AUTHENTICATION


def test_a_receipt_goes_to_the_one_file_of_its_notice_else_it_is_held():
    to_jeanne = NoticeFacts("MED-2026-00004", JEANNE, "acknowledgment")
    assert decide(sender_email="Jeanne.Dupont@example.org", referenced=[], today=TODAY, policy=POLICY,
                  automated=True, receipt=True, receipt_notices=[to_jeanne]) == RecordReceipt(
        "MED-2026-00004", "acknowledgment")
    unmatched = decide(sender_email=JEANNE, referenced=[], today=TODAY, policy=POLICY, automated=True, receipt=True)
    assert isinstance(unmatched, Hold) and unmatched.reason is HoldReason.AUTOMATED_UNMATCHED
    forged = decide(sender_email=JEANNE, referenced=[], today=TODAY, policy=POLICY, automated=True, receipt=True,
                    receipt_notices=[to_jeanne], sender_failed=True)
    assert isinstance(forged, Hold) and forged.reason is HoldReason.SENDER_FAILED_AUTHENTICATION


def test_a_receipt_from_anyone_but_the_notices_recipient_is_held():
    """Our notice's Message-ID travels in every forward and copy of the thread: knowing it proves nothing."""
    to_jeanne = NoticeFacts("MED-2026-00004", JEANNE, "acknowledgment")
    for sender in ("eve@example.net", "jeanne.dupont+x@example.org", "", None):
        decision = decide(sender_email=sender, referenced=[], today=TODAY, policy=POLICY, automated=True,
                          receipt=True, receipt_notices=[to_jeanne])
        assert isinstance(decision, Hold) and decision.reason is HoldReason.RECEIPT_SENDER_NOT_RECIPIENT
    # A notice without a recorded recipient (a letter) takes no receipt either.
    letter = decide(sender_email=JEANNE, referenced=[], today=TODAY, policy=POLICY, automated=True, receipt=True,
                    receipt_notices=[NoticeFacts("MED-2026-00004", None)])
    assert isinstance(letter, Hold) and letter.reason is HoldReason.RECEIPT_SENDER_NOT_RECIPIENT


def test_only_a_known_disposition_type_is_kept_from_a_receipt():
    assert receipt_disposition("read receipt (RFC 8098): displayed") == "displayed"
    assert receipt_disposition("read receipt (RFC 8098): Deleted") == "deleted"
    assert receipt_disposition("read receipt (RFC 8098)") is None
    assert receipt_disposition("read receipt (RFC 8098): pwned-go-to-evil.example") is None
    assert receipt_disposition(None) is None


def test_confirmation_reasons_hold_with_their_own_reason_or_a_generic_one():
    for code, reason in (("staff_forward_not_verified", HoldReason.STAFF_FORWARD_NOT_VERIFIED),
                         ("letter_date_too_old", HoldReason.LETTER_DATE_TOO_OLD),
                         ("something_new", HoldReason.NEEDS_CONFIRMATION),
                         ("sender_not_party", HoldReason.NEEDS_CONFIRMATION)):  # not a confirmation reason
        decision = decide(sender_email=JEANNE, referenced=[], today=TODAY, policy=POLICY, needs_confirmation=code)
        assert isinstance(decision, Hold) and decision.reason is reason
    assert decide(sender_email=JEANNE, referenced=[], today=TODAY, policy=POLICY) == RegisterNew()


# --- the register (SQLite and PostgreSQL) -----------------------------------------------------------------------
def _text(found, language: str = "fr") -> str:
    return "\n".join(views.complaint_file_lines(*found, views.TextContext(language=language)))


async def test_the_verdict_provenance_and_forwarder_are_stored_and_shown(registry_on_db):
    registry, publisher, _clock = registry_on_db
    event = received(
        sender_verdict=SenderVerdict.VERIFIED, sender_evidence="mx.ombudsdesk.test: dmarc=pass header.from=example.org",
        identity_notes=("sender_differs: secretariat@example.org",),
        provenance=Provenance(peer_ip="192.0.2.25", peer_helo="mail.example.org", authenticated_as="agent.martin"),
        forwarded_by=Party(name="Agent Martin", email="Agent.Martin@Guichet.example.be"), forward_verified=True,
        acknowledgment_suppressed="x_auto_response_suppress")
    outcome = await registry.on_message_received(event)
    assert outcome.action == "registered"
    [registered] = publisher.of(ComplaintRegistered)
    assert registered.sender_verdict is SenderVerdict.VERIFIED
    assert registered.acknowledgment_suppressed == "x_auto_response_suppress"

    found = await registry.store.complaint_file(outcome.number)
    complaint, [first], _changes, _parties = found
    for record in (complaint, first):
        assert record.sender_verdict == "verified"
        assert record.sender_evidence == "mx.ombudsdesk.test: dmarc=pass header.from=example.org"
        assert record.identity_notes == ["sender_differs: secretariat@example.org"]
        assert (record.peer_ip, record.peer_helo, record.authenticated_as) == (
            "192.0.2.25", "mail.example.org", "agent.martin")
        assert (record.forwarded_by_name, record.forwarded_by_email, record.forward_verified) == (
            "Agent Martin", "agent.martin@guichet.example.be", True)
    assert complaint.acknowledgment_suppressed == "x_auto_response_suppress"

    as_json = views.complaint_file(*found)
    assert as_json["sender_verdict"] == "verified" and as_json["provenance"]["peer_ip"] == "192.0.2.25"
    assert as_json["forwarded_by"] == {"name": "Agent Martin", "email": "agent.martin@guichet.example.be",
                                       "verified": True}
    assert as_json["acknowledgment_suppressed"] == "x_auto_response_suppress"
    assert as_json["thread"][0]["sender_verdict"] == "verified"
    assert as_json["thread"][0]["identity_notes"] == ["sender_differs: secretariat@example.org"]

    french = _text(found)
    assert "Authentification de l'expéditeur  expéditeur vérifié — mx.ombudsdesk.test: dmarc=pass" in french
    assert "Transmis par" in french and "Agent Martin <agent.martin@guichet.example.be> (agent vérifié)" in french
    assert "IP 192.0.2.25, HELO mail.example.org, connecté en tant que agent.martin" in french
    assert "Accusé de réception non envoyé" in french and "x_auto_response_suppress" in french
    assert "Verificatie van de afzender" in _text(found, "nl") and "afzender geverifieerd" in _text(found, "nl")
    assert "Prüfung des Absenders" in _text(found, "de") and "Weitergeleitet von" in _text(found, "de")
    assert "Sender check" in _text(found, "en") and "(staff verified)" in _text(found, "en")


async def test_a_failed_follow_up_never_enters_the_file(registry_on_db):
    registry, publisher, _clock = registry_on_db
    first = await registry.on_message_received(received(message_id="<first@example.org>"))
    before = len(publisher.events)
    forged = received(subject=f"Re: [{first.number}] complément", in_reply_to="<first@example.org>",
                      candidate_case_numbers=(first.number,), sender_verdict=SenderVerdict.FAILED,
                      sender_evidence="mx.ombudsdesk.test: dmarc=fail header.from=example.org")
    outcome = await registry.on_message_received(forged)
    assert (outcome.action, outcome.reason) == ("held", "sender_failed_authentication")
    assert publisher.events[before:] == []  # no MessageAppended, no notice, no change
    _complaint, thread, changes, _parties = await registry.store.complaint_file(first.number)
    assert len(thread) == 1 and [c.change for c in changes] == ["registered"]

    # Nor does a failed new message become a complaint on its own.
    new = await registry.on_message_received(received(email="x@example.net", sender_verdict=SenderVerdict.FAILED,
                                                       sender_evidence="dmarc=fail"))
    assert (new.action, new.reason) == ("held", "sender_failed_authentication")
    held = await registry.store.held_messages()
    assert [h.reason for h in held] == ["sender_failed_authentication"] * 2
    shown = views.held_message(held[0])
    assert shown["sender_verdict"] == "failed" and "dmarc=fail" in shown["sender_evidence"]
    assert shown["suggestions"][0]["number"] == first.number
    table = "\n".join(views.held_table_lines(held, views.TextContext(language="fr")))
    assert "Échec de l'authentification de l'expéditeur (mx.ombudsdesk.test: dmarc=fail" in table
    assert len(publisher.of(ComplaintRegistered)) == 1


async def test_an_unverified_follow_up_is_attached_and_marked(registry_on_db):
    registry, publisher, _clock = registry_on_db
    first = await registry.on_message_received(received(message_id="<first@example.org>"))
    follow_up = received(subject="Re: complément", in_reply_to="<first@example.org>")  # verdict: unverified
    outcome = await registry.on_message_received(follow_up)
    assert outcome.action == "appended" and len(publisher.of(MessageAppended)) == 1
    found = await registry.store.complaint_file(first.number)
    assert [m.sender_verdict for m in found[1]] == ["unverified", "unverified"]
    thread_text = _text(found).split("Fil des messages")[1]
    assert thread_text.count("[expéditeur non vérifié]") == 2
    assert "[sender not verified]" in _text(found, "en")


async def test_a_follow_up_asking_for_no_auto_reply_gets_no_receipt(registry_on_db):
    registry, publisher, _clock = registry_on_db
    await registry.on_message_received(received(message_id="<first@example.org>"))
    await registry.on_message_received(received(in_reply_to="<first@example.org>", subject="Re: suite",
                                                acknowledgment_suppressed="x_auto_response_suppress"))
    assert len(publisher.of(MessageAppended)) == 1 and publisher.of(NoticeRequested) == []
    await registry.on_message_received(received(in_reply_to="<first@example.org>", subject="Re: suite 2"))
    assert [n.notice_kind for n in publisher.of(NoticeRequested)] == ["follow_up_received"]


async def test_a_forward_nobody_proved_is_held_silently_until_staff_register_it(registry_on_db):
    registry, publisher, _clock = registry_on_db
    forward = received(name="Paul Durand", email="paul.durand@example.org",
                       forwarded_by=Party(name="Agent", email="agent@guichet.example.be"),
                       needs_confirmation="staff_forward_not_verified")
    outcome = await registry.on_message_received(forward)
    assert (outcome.action, outcome.reason) == ("held", "staff_forward_not_verified")
    assert publisher.events == []  # nobody is told anything, no number is taken
    [held] = await registry.store.held_messages()
    assert views.held_message(held)["needs_confirmation"] == "staff_forward_not_verified"
    assert views.held_message(held)["forwarded_by"]["email"] == "agent@guichet.example.be"
    for language, words in (("fr", "Transfert d'un agent non vérifié"), ("nl", "Doorsturing door een medewerker"),
                            ("de", "Weiterleitung durch Mitarbeiter"), ("en", "Staff forward not verified")):
        assert words in "\n".join(views.held_table_lines([held], views.TextContext(language=language)))

    registered = await registry.handle(RegisterHeld(held.id, "chef@med.be"))
    [event] = publisher.of(ComplaintRegistered)
    assert event.complaint_number == registered.number == "MED-2026-00001"
    assert event.complainant.email == "paul.durand@example.org"  # the acknowledgment goes to the citizen now
    complaint = await registry.store.complaint(registered.number)
    assert complaint.forwarded_by_email == "agent@guichet.example.be" and complaint.forward_verified is False
    assert "(transfert non vérifié)" in _text(await registry.store.complaint_file(registered.number))

    old_letter = await registry.on_message_received(received(needs_confirmation="letter_date_too_old"))
    assert (old_letter.action, old_letter.reason) == ("held", "letter_date_too_old")


async def test_a_read_receipt_of_our_notice_joins_its_file_as_an_event(registry_on_db):
    registry, publisher, _clock = registry_on_db
    first = await registry.on_message_received(received(message_id="<first@example.org>"))
    await registry.on_notification_sent(NotificationSent(
        notification_key=f"acknowledgment:{first.number}", complaint_number=first.number,
        notice_kind="acknowledgment", recipient=JEANNE, message_id=ACK_ID, subject_line="Accusé de réception"))
    status_before = (await registry.store.complaint(first.number)).status
    before = len(publisher.events)
    # Jeanne's own mail client (the notice's recipient) reports the notice displayed. A receipt carries text and
    # may carry attachments its sender chose; none of it is kept.
    receipt = received(subject="Lu : Accusé de réception", automated=True,
                       automated_reason="read receipt (RFC 8098): displayed", disposition_of=ACK_ID,
                       message_id="<mdn-1@example.org>", at=datetime.now(timezone.utc),
                       attachments=(RECEIPT_ATTACHMENT,)).model_copy(update={"text": RECEIPT_TEXT})
    outcome = await registry.on_message_received(receipt)
    assert (outcome.action, outcome.number) == ("receipt", first.number)
    fresh = publisher.events[before:]
    assert [type(e) for e in fresh] == [ComplaintChanged] and fresh[0].change == "read_receipt"
    complaint, thread, changes, _parties = await registry.store.complaint_file(first.number)
    assert complaint.status == status_before
    assert [m.direction for m in thread] == ["in", "out", "in"]  # in time order: the receipt came last
    entry = thread[-1]
    assert entry.disposition_of == ACK_ID.strip("<>") and entry.automated and entry.sender_email == JEANNE
    assert (entry.subject_line, entry.body, entry.attachments, entry.raw_object) == ("", "", [], None)
    assert {k: changes[-1].details[k] for k in ("disposition_of", "notice_kind", "disposition", "sender")} == {
        "disposition_of": ACK_ID.strip("<>"), "notice_kind": "acknowledgment", "disposition": "displayed",
        "sender": JEANNE}
    assert views.complaint_file(complaint, thread, changes, [])["thread"][-1]["read_receipt_of"] == ACK_ID
    french = _text(await registry.store.complaint_file(first.number))
    assert "accusé de lecture" in french and f"Accusé de lecture de : {ACK_ID}".replace(" :", "\u00a0:") in french
    assert f"Accusé de lecture reçu : Accusé de réception {ACK_ID} \u2014 affiché".replace(" :", "\u00a0:") in french
    assert "Lu :" not in french and "evil.example" not in french  # neither its subject nor its text
    dutch = _text(await registry.store.complaint_file(first.number), "nl")
    assert f"Leesbevestiging ontvangen: Ontvangstbevestiging {ACK_ID} \u2014 weergegeven" in dutch
    assert len(publisher.of(ComplaintRegistered)) == 1 and await registry.store.held_messages() == []

    replay = await registry.on_message_received(receipt)
    assert (replay.action, replay.replay) == ("receipt", True)
    assert len((await registry.store.complaint_file(first.number))[1]) == len(thread)

    # The citizen's own Message-ID is no notice of ours; an unknown one matches nothing: both held, nothing filed.
    for disposition_of in ("<first@example.org>", "<unknown@notices.ombudsdesk.test>"):
        held = await registry.on_message_received(received(automated=True, disposition_of=disposition_of,
                                                           subject="Read: x"))
        assert (held.action, held.reason) == ("held", "automated_unmatched")
    assert len(publisher.of(ComplaintRegistered)) == 1


async def test_a_read_receipt_from_another_address_is_held_and_the_file_is_unchanged(registry_on_db):
    """Jeanne forwarded our acknowledgment (its Message-ID with it) to Eve; Eve's "receipt" names it."""
    registry, publisher, _clock = registry_on_db
    first = await registry.on_message_received(received(message_id="<first@example.org>"))
    await registry.on_notification_sent(NotificationSent(
        notification_key=f"acknowledgment:{first.number}", complaint_number=first.number,
        notice_kind="acknowledgment", recipient=JEANNE, message_id=ACK_ID, subject_line="Accusé de réception"))
    before_file = await registry.store.complaint_file(first.number)
    before_events = len(publisher.events)
    forged = received(email="eve@example.net", name="Eve", subject="Read: Accusé de réception", automated=True,
                      automated_reason="read receipt (RFC 8098): displayed", disposition_of=ACK_ID,
                      in_reply_to=ACK_ID, references=(ACK_ID,), message_id="<mdn-eve@example.net>",
                      sender_verdict=SenderVerdict.VERIFIED, attachments=(RECEIPT_ATTACHMENT,),
                      ).model_copy(update={"text": RECEIPT_TEXT})
    outcome = await registry.on_message_received(forged)
    assert (outcome.action, outcome.reason) == ("held", "receipt_sender_not_recipient")
    after_file = await registry.store.complaint_file(first.number)
    assert [(m.direction, m.message_key) for m in after_file[1]] == [
        (m.direction, m.message_key) for m in before_file[1]]
    assert [c.change for c in after_file[2]] == [c.change for c in before_file[2]]
    assert publisher.events[before_events:] == []  # no change-log event, no notice
    [held] = await registry.store.held_messages()
    assert held.sender_email == "eve@example.net"
    assert [s["number"] for s in held.suggestions] == [first.number]  # staff see which file it names
    assert views.held_message(held)["read_receipt_of"] == ACK_ID
    # Staff read the reason in their language.
    assert label("receipt_sender_not_recipient", "fr", "hold_reason") == (
        "Accusé de lecture envoyé par une autre adresse que celle du destinataire de l'avis")
    # Redelivered: the same hold, nothing new.
    replay = await registry.on_message_received(forged)
    assert (replay.action, replay.replay, replay.reason) == ("held", True, "receipt_sender_not_recipient")
    assert len(await registry.store.held_messages()) == 1


async def test_the_api_shows_who_wrote_and_why_a_message_is_held(registry_on_db):
    from tests.registry.access.helpers import api_client

    registry, _publisher, clock = registry_on_db
    first = await registry.on_message_received(received(
        at=clock.now, sender_verdict=SenderVerdict.UNVERIFIED, provenance=Provenance(peer_ip="198.51.100.7"),
        forwarded_by=Party(name="Agent", email="agent@guichet.example.be"), forward_verified=True))
    await registry.on_message_received(received(at=clock.now, email="x@example.net",
                                                sender_verdict=SenderVerdict.FAILED, sender_evidence="dmarc=fail"))
    async with await api_client(registry) as client:
        body = (await client.get(f"/complaints/{first.number}", params={"reason": "triage"})).json()
        assert body["sender_verdict"] == "unverified" and body["provenance"]["peer_ip"] == "198.51.100.7"
        assert body["forwarded_by"] == {"name": "Agent", "email": "agent@guichet.example.be", "verified": True}
        assert body["thread"][0]["sender_verdict"] == "unverified" and body["thread"][0]["read_receipt_of"] is None
        [held] = (await client.get("/holding-pen")).json()
        assert (held["reason"], held["sender_verdict"], held["sender_evidence"]) == (
            "sender_failed_authentication", "failed", "dmarc=fail")


def test_identity_notes_are_shown_in_the_readers_language_with_their_detail_as_written():
    from services.registry.views import identity_note

    assert identity_note("sender_differs: eve@example.com", "fr") == "l'en-tête Sender diffère de From: eve@example.com"
    assert identity_note("several_from_headers: 2", "nl") == "meerdere From-kopregels: 2"
    assert identity_note("no_from_address", "de") == "keine Adresse in From"
    assert identity_note("a_code_from_a_newer_intake", "en") == "a_code_from_a_newer_intake"
