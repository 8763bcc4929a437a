"""A checked complaint form into its durable `MessageReceived(channel=web_form)`, through intake's one way in
(`IntakePipeline.accept` with a `Prepared` message, as a scanned letter): the pipeline stores the raw original (the
form as submitted, JSON, `<key>.json`) and the attachments, publishes the event with `Nats-Msg-Id` = the key, and
only then does the page answer — a confirmation means the complaint is in JetStream.

Trust: nobody proved the email address (`unverified`; the acknowledgment mail confirms it reached its owner), and
the peer address is recorded as the provenance. A form whose honeypot field was filled (a script, or a browser's
over-eager autofill) is kept too, but asks staff to confirm it (`needs_confirmation`): the registry holds it, nobody
is answered, and nothing is lost if a person did send it.
"""

from __future__ import annotations

import json
from datetime import datetime

import structlog

from services.intake.arrival import AcceptOutcome, Arrival, Prepared
from services.intake.channels.acceptor import MessageAcceptor
from services.intake.message.mime import Attachment
from services.intake.stores import attachment_ref, raw_object_name
from services.intake.web.form import ComplaintForm
from shared.events import Channel, MessageReceived, Party, Provenance, SenderVerdict

log = structlog.get_logger(__name__)

SOURCE = "web_form"
HONEYPOT_REASON = "web_form_honeypot"


def form_event(key: str, form: ComplaintForm, text: str, *, language: str, received_at: datetime,
               attachments: list[Attachment], peer_ip: str | None, honeypot: bool) -> MessageReceived:
    values = form.values
    return MessageReceived(
        message_key=key,
        channel=Channel.WEB_FORM,
        received_at=received_at,
        raw_object=raw_object_name(key, ".json"),
        sender=Party(name=values["name"], email=values["email"], postal_address=values["postal_address"] or None,
                     language=language),
        recipients=(),
        subject_line=values["subject"],
        text=text,
        new_text=text,
        language=language,
        language_confidence=1.0,  # chosen by the citizen on the form
        attachments=tuple(attachment_ref(attachment) for attachment in attachments),
        facts_date=form.facts_date,
        last_step_date=form.first_line_date,
        first_line_contacted=form.first_line_contacted,
        source=SOURCE,
        sender_verdict=SenderVerdict.UNVERIFIED,
        sender_evidence="web form: the address was typed, not proven",
        provenance=Provenance(peer_ip=peer_ip),
        needs_confirmation=HONEYPOT_REASON if honeypot else None,
    )


async def submit(intake: MessageAcceptor, key: str, form: ComplaintForm, text: str, *, language: str,
                 received_at: datetime, attachments: list[Attachment], peer_ip: str | None,
                 honeypot: bool) -> AcceptOutcome:
    """Make the submission durable; returns once its event is in JetStream, raises on infrastructure failure."""
    event = form_event(key, form, text, language=language, received_at=received_at, attachments=attachments,
                       peer_ip=peer_ip, honeypot=honeypot)
    record = {"form": form.values, "language": language, "files": [a.filename for a in attachments],
              "peer_ip": peer_ip, "honeypot_filled": honeypot, "received_at": received_at.isoformat()}
    arrival = Arrival.of(channel=Channel.WEB_FORM, received_at=received_at, envelope_sender=None,
                         envelope_recipients=(), source=SOURCE, provenance=event.provenance,
                         prepared=Prepared(key, event, tuple(attachments), raw_suffix=".json"))
    outcome = await intake.accept(json.dumps(record, ensure_ascii=False, indent=2).encode(), arrival=arrival)
    log.info("intake.web_form_accepted", status=outcome.status.value, message_key=key,
             attachments=len(attachments), honeypot=honeypot)
    return outcome
