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
# Privacy (issue 16): the register erased or anonymised a file's personal data; every service erases its own copies.
SUBJECT_PERSONAL_DATA_ERASED = "ombudsdesk.registry.privacy.erased"
SUBJECT_NOTIFICATION_SENT = "ombudsdesk.notifier.notification.sent"
SUBJECT_NOTIFICATION_FAILED = "ombudsdesk.notifier.notification.failed"
SUBJECT_DEAD_LETTER = "ombudsdesk.deadletter"
# Core NATS request/reply (the registry asks, a notifier answers): outside every stream's subjects, so that no
# stream stores a request or answers it with a publish acknowledgement (tests/notifier/test_staff_message_preview.py).
SUBJECT_NOTICE_PREVIEW = "ombudsdesk.request.notice.preview"
QUEUE_NOTIFIER_PREVIEW = "notifier-preview"  # one notifier of several answers each request
# The public pages (intake) ask the registry for the number a web-form complaint received (request/reply).
SUBJECT_CASE_LOOKUP = "ombudsdesk.request.case.lookup"
QUEUE_REGISTRY_LOOKUP = "registry-lookup"  # one registry of several answers each request
# The public orientation page (intake) asks the registry who is competent for a problem (request/reply).
SUBJECT_ORIENTATION = "ombudsdesk.request.orientation"
QUEUE_REGISTRY_ORIENTATION = "registry-orientation"  # one registry of several answers each request
# The citizen's personal link (intake's public pages ask the registry, request/reply, issue 17): what the link shows,
# "send me my link again", and the satisfaction survey (its answers stored by the registry before it replies).
SUBJECT_CITIZEN_FILE = "ombudsdesk.request.citizen.file"
SUBJECT_CITIZEN_RESEND = "ombudsdesk.request.citizen.resend"
SUBJECT_SURVEY = "ombudsdesk.request.citizen.survey"
QUEUE_REGISTRY_CITIZEN = "registry-citizen"  # one registry of several answers each request
# Every question intake's public pages ask the registry: intake may send them, the registry answers them (its NATS
# permissions, ombudsdesk/nats_config.py, are made from this list).
PUBLIC_REQUESTS = (SUBJECT_CASE_LOOKUP, SUBJECT_ORIENTATION, SUBJECT_CITIZEN_FILE, SUBJECT_CITIZEN_RESEND, SUBJECT_SURVEY)

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
# Privacy (issue 16): each service erases its own copies of an erased file's personal data.
CONSUMER_INTAKE_PRIVACY = "intake-privacy"
CONSUMER_NOTIFIER_PRIVACY = "notifier-privacy"

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
