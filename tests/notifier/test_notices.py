"""Notices requested by the registry and deadline warnings, through real NATS and a real SMTP server."""

from __future__ import annotations

from datetime import date

from shared import streams
from shared.events import DeadLettered, DeadlineApproaching, DeadlineMissed, NoticeRequested, Party
from services.notifier.wiring import NotifierService
from tests.notifier.support import SmtpSink, consumer_settled, eventually, publish, publish_duplicate, read_stream, wait_until

CITIZEN = Party(name="Jan Janssens", email="jan@example.be", language="nl")


def request(key: str, kind: str, context: dict, recipient: Party = CITIZEN, number: str = "MED-2026-00007"):
    return NoticeRequested(request_key=key, complaint_number=number, notice_kind=kind, recipient=recipient,
                           context=context, reply_to_message_id="<jan-2@example.be>")


async def test_requested_notices_in_the_citizens_language(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    await publish(
        nats_server.url,
        request("r1", "inadmissible", {"reasons": ["De klacht betreft een rechterlijke beslissing."]}),
        request("r2", "redirected", {"competent_name": "Ombudsman voor Energie",
                                     "competent_contact": "Koning Albert II-laan 8, 1000 Brussel"}),
        request("r3", "extension", {"new_due": "2027-03-01", "reason": "Wij wachten op het antwoord van de dienst."}),
        request("r4", "final_answer", {"answer_text": "De dienst heeft uw dossier herzien."}),
    )
    await publish_duplicate(nats_server.url, request("r4", "final_answer", {"answer_text": "Herhaald."}))
    await wait_until(lambda: len(smtp_sink.messages) >= 4, what="four notices")
    subjects = sorted(mail["Subject"] for mail in smtp_sink.messages)
    assert subjects == sorted([
        "[MED-2026-00007] Uw klacht kan niet worden behandeld",
        "[MED-2026-00007] Uw klacht hoort bij een andere ombudsdienst",
        "[MED-2026-00007] Verlenging van de antwoordtermijn voor uw klacht",
        "[MED-2026-00007] Antwoord op uw klacht",
    ])
    bodies = "\n".join(mail.get_body(("plain",)).get_content() for mail in smtp_sink.messages)
    assert "rechterlijke beslissing" in bodies and "Koning Albert II-laan 8" in bodies and "1 maart 2027" in bodies
    assert all(mail["In-Reply-To"] == "<jan-2@example.be>" for mail in smtp_sink.messages)
    await eventually(lambda: _settled(nats_server.url, "notifier-notices"), what="requests acknowledged")
    assert len(smtp_sink.messages) == 4


async def test_the_registrys_own_context_vocabulary_is_understood(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    """The registry sends its directory entry, `answer`, `answer_due` and `explanation` (see docs/notifier.md)."""
    citizen = Party(name="Jeanne", email="jeanne@example.org", language="fr")
    await publish(
        nats_server.url,
        request("x1", "redirected", {"ombudsman": {"id": "energie", "name": "Service de médiation de l'énergie",
                                                   "address": "Bd du Roi Albert II 8, 1000 Bruxelles",
                                                   "email": "plaintes@mediateurenergie.be"},
                                     "explanation": None}, recipient=citizen),
        request("x2", "extension", {"previous_due": "2027-01-08", "answer_due": "2027-02-22",
                                    "explanation": "Nous attendons le dossier de l'administration."},
                recipient=citizen),
        request("x3", "final_answer", {"answer": "L'administration a révisé sa décision.", "explanation": None},
                recipient=citizen),
        request("x4", "inadmissible", {"reasons": ["Faits de plus d'un an"], "explanation": "Délai dépassé."},
                recipient=citizen),
    )
    await wait_until(lambda: len(smtp_sink.messages) >= 4, what="four notices")
    bodies = {mail["Subject"].split("] ", 1)[1]: mail.get_body(("plain",)).get_content() for mail in smtp_sink.messages}
    redirected = bodies["Votre réclamation relève d'un autre service de médiation"]
    assert "Service de médiation de l'énergie" in redirected and "plaintes@mediateurenergie.be" in redirected
    extension = bodies["Prolongation du délai de réponse à votre réclamation"]
    assert "22 février 2027" in extension and "Nous attendons le dossier" in extension
    assert "L'administration a révisé sa décision." in bodies["Réponse à votre réclamation"]
    inadmissible = bodies["Votre réclamation ne peut pas être examinée"]
    assert "- Faits de plus d'un an" in inadmissible and "Délai dépassé." in inadmissible


async def _settled(nats_url: str, consumer: str) -> bool:
    return await consumer_settled(nats_url, streams.STREAM_REGISTRY, consumer)


async def test_follow_up_notices_are_rate_limited_per_address_and_day(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    await publish(
        nats_server.url,
        *[request(f"f{index}", "follow_up_received", {"received_on": "2026-11-24"}) for index in range(3)],
        request("g1", "follow_up_received", {}, recipient=Party(name="Other", email="other@example.be")),
    )
    await eventually(lambda: _settled(nats_server.url, "notifier-notices"), what="follow-ups handled")
    await wait_until(lambda: len(smtp_sink.messages) >= 2, what="one follow-up per address")
    statuses = sorted(notice.status for notice in await running_notifier.outbox.notices())
    assert statuses.count("suppressed") == 2
    assert sorted(mail["To"].addresses[0].addr_spec for mail in smtp_sink.messages) == [
        "jan@example.be", "other@example.be"
    ]


async def test_a_request_missing_its_context_is_dead_lettered_not_sent_blank(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    await publish(nats_server.url, request("bad", "extension", {"reason": "no date given"}))
    [raw] = await read_stream(nats_server.url, streams.dead_letter_subject("notifier-notices"), 1)
    assert "answer_due" in DeadLettered.model_validate_json(raw).error
    assert smtp_sink.messages == [] and await running_notifier.outbox.notices() == []


async def test_deadline_warnings_go_to_the_handler_and_the_supervisor_once(
    running_notifier: NotifierService, nats_server, smtp_sink: SmtpSink
):
    handler = Party(name="Luc Peeters", email="luc.peeters@ombudsdesk.localhost", language="nl")
    approaching = DeadlineApproaching(complaint_number="MED-2026-00009", deadline_kind="answer",
                                      due=date(2027, 1, 8), handler=handler, lead_days=3)
    missed = DeadlineMissed(complaint_number="MED-2026-00010", deadline_kind="acknowledgment",
                            due=date(2026, 12, 1), handler=None)
    await publish(nats_server.url, approaching, missed)
    await publish_duplicate(nats_server.url, approaching)
    await wait_until(lambda: len(smtp_sink.messages) >= 3, what="three warnings")
    await eventually(lambda: _settled(nats_server.url, "notifier-deadlines"), what="alerts acknowledged")
    assert {mail["Auto-Submitted"] for mail in smtp_sink.messages} == {"auto-generated"}  # not replies (RFC 3834)
    received = sorted((mail["To"].addresses[0].addr_spec, mail["Subject"]) for mail in smtp_sink.messages)
    assert received == [
        ("luc.peeters@ombudsdesk.localhost", "[MED-2026-00009] Termijn loopt af: het antwoord aan de burger op 8 januari 2027"),
        ("supervision@ombudsdesk.localhost", "[MED-2026-00009] Échéance proche : la réponse au citoyen le 8 janvier 2027"),
        ("supervision@ombudsdesk.localhost", "[MED-2026-00010] Délai dépassé : l'accusé de réception (échéance 1 décembre 2026)"),
    ]
