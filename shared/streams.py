"""Stream, subject, consumer and bucket names, and the stream definitions: one place for all three services."""

from __future__ import annotations

from dataclasses import dataclass

SUBJECT_ROOT = "ombudsdesk"

SUBJECT_MESSAGE_RECEIVED = "ombudsdesk.intake.message.received"
SUBJECT_DELIVERY_FAILED = "ombudsdesk.intake.delivery.failed"
SUBJECT_COMPLAINT_REGISTERED = "ombudsdesk.registry.complaint.registered"
SUBJECT_MESSAGE_APPENDED = "ombudsdesk.registry.message.appended"
SUBJECT_COMPLAINT_CHANGED = "ombudsdesk.registry.complaint.changed"
SUBJECT_NOTICE_REQUESTED = "ombudsdesk.registry.notice.requested"
SUBJECT_DEADLINE_APPROACHING = "ombudsdesk.registry.deadline.approaching"
SUBJECT_DEADLINE_MISSED = "ombudsdesk.registry.deadline.missed"
SUBJECT_DEADLINES = "ombudsdesk.registry.deadline.*"
SUBJECT_NOTIFICATION_SENT = "ombudsdesk.notifier.notification.sent"
SUBJECT_NOTIFICATION_FAILED = "ombudsdesk.notifier.notification.failed"
SUBJECT_DEAD_LETTER = "ombudsdesk.deadletter"
# Core NATS request/reply (the registry asks, a notifier answers): outside every stream's subjects, so that no
# stream stores a request or answers it with a publish acknowledgement (tests/notifier/test_staff_message_preview.py).
SUBJECT_NOTICE_PREVIEW = "ombudsdesk.request.notice.preview"
QUEUE_NOTIFIER_PREVIEW = "notifier-preview"  # one notifier of several answers each request

STREAM_INTAKE = "OMBUDSDESK_INTAKE"
STREAM_REGISTRY = "OMBUDSDESK_REGISTRY"
STREAM_NOTIFIER = "OMBUDSDESK_NOTIFIER"
STREAM_DEAD_LETTER = "OMBUDSDESK_DEADLETTER"

CONSUMER_REGISTRY_INTAKE = "registry-intake"
CONSUMER_REGISTRY_DELIVERY = "registry-delivery"
CONSUMER_REGISTRY_NOTIFICATION_FAILED = "registry-notification-failed"
CONSUMER_NOTIFIER_REGISTRY = "notifier-registry"
CONSUMER_NOTIFIER_DELIVERY_FAILED = "notifier-delivery-failed"
CONSUMER_NOTIFIER_NOTICES = "notifier-notices"
CONSUMER_NOTIFIER_DEADLINES = "notifier-deadlines"

# Raw originals and attachments live in the JetStream object store, so every service can reach them.
BUCKET_RAW_MESSAGES = "ombudsdesk-raw"
BUCKET_ATTACHMENTS = "ombudsdesk-attachments"

# Intake's own key-value buckets: message keys already taken in (the duplicate check beyond the Nats-Msg-Id
# window), quarantined messages, and the position in each IMAP mailbox.
BUCKET_INTAKE_SEEN = "ombudsdesk-intake-seen"
BUCKET_INTAKE_QUARANTINE = "ombudsdesk-intake-quarantine"
BUCKET_INTAKE_IMAP = "ombudsdesk-intake-imap"

# Intake's spool (issue 3): mail accepted over SMTP waits here, raw and durable, until intake has understood it (the
# incoming queue of an MTA or of GNU Mailman). A work queue: an entry goes once the message's event is published or
# the message is quarantined. Outside `ombudsdesk.intake.>`, which the intake event stream captures.
STREAM_INTAKE_SPOOL = "OMBUDSDESK_INTAKE_SPOOL"
SUBJECT_INTAKE_SPOOL = "ombudsdesk.spool.intake"
CONSUMER_INTAKE_SPOOL = "intake-spool"
# How often each redelivered spool entry was actually started: JetStream's delivery count also counts the entries
# that merely waited in the hands of a process that crashed, so it cannot single out a message that crashes intake.
BUCKET_INTAKE_SPOOL_ATTEMPTS = "ombudsdesk-intake-spool-attempts"

DAY_SECONDS = 24 * 3600

# JetStream drops a second publish with the same Nats-Msg-Id inside this window (an SMTP retry, an IMAP re-fetch).
# A day covers every retry schedule of a sending MTA's first hours; beyond it the consumers' own durable checks apply.
DUPLICATE_WINDOW_SECONDS = DAY_SECONDS


@dataclass(frozen=True)
class StreamDefinition:
    name: str
    subjects: tuple[str, ...]
    description: str
    max_age_seconds: float = 0  # 0: keep forever; the register of record is the database, but events are the audit trail
    duplicate_window_seconds: float = DUPLICATE_WINDOW_SECONDS


STREAMS: tuple[StreamDefinition, ...] = (
    StreamDefinition(STREAM_INTAKE, ("ombudsdesk.intake.>",), "Messages taken in by intake"),
    StreamDefinition(STREAM_REGISTRY, ("ombudsdesk.registry.>",), "Changes to the register of complaints"),
    StreamDefinition(STREAM_NOTIFIER, ("ombudsdesk.notifier.>",), "Notices sent or failed"),
    StreamDefinition(STREAM_DEAD_LETTER, ("ombudsdesk.deadletter.>",), "Events a consumer gave up on, for replay"),
)


def dead_letter_subject(consumer: str) -> str:
    return f"{SUBJECT_DEAD_LETTER}.{consumer}"
