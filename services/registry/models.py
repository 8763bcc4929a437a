"""The registry's own database schema (SQLAlchemy 2). Created and evolved ONLY by the Alembic history in
`migrations/`, which runs the same on SQLite and PostgreSQL.

- `number_counters`: one row per year; incremented in the registering transaction, so numbers are gap-free.
- `complaints`: the file of a complaint; `message_key` is unique so a replayed event never registers twice.
- `thread_messages`: every message in and out of a case; `message_id` matches In-Reply-To/References of replies;
  an incoming one keeps its new text apart from the quoted history, and the record of intake's rules that hit.
  Both keep, for an incoming message (a complaint: its first one), what is known of who wrote it (`SenderTrust`:
  the sender verdict and its evidence, the channel's provenance, the forwarding staff member; issue 10).
- `case_parties`: who may write into a case (the complainant, known correspondents).
- `change_log`: who changed what, when and why (published as `ComplaintChanged`).
- `holding_pen`: follow-ups the registry would not attach on its own, with the reason and ranked suggestions.
- `outbox`: every event to publish, written in the same transaction as the change it reports (transactional
  outbox: a crash between commit and publish only delays the event, never loses it).
- `deadline_alerts`: which deadline alerts were raised, so each goes out once across restarts.
- `complaint_notes`: staff's internal notes on a file (never sent, never part of the thread; issue 13).
- `complaint_links`: two files staff linked (each pair once, lower id first).
- `complaint_merges`: a file merged into another: the thread entries and parties the merge moved or added and the
  status the source had, so that undoing it restores exactly that.
- `saved_searches`: a staff member's saved register queries, private or shared.
- `legal_holds`: holds that suspend a file's retention and erasure (issue 16, `privacy/`).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, orm_insert_sentinel, relationship
from sqlalchemy.sql import expression
from sqlalchemy.types import TypeDecorator

# Explicit constraint names: Alembic batch mode (SQLite) and PostgreSQL then agree on them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite has no time-zone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the register; pass an aware one")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime()}


class NumberCounter(Base):
    __tablename__ = "number_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class SenderTrust:
    """Who wrote an incoming message, as far as evidence goes (`shared.events.MessageReceived`, docs/security.md).

    NULL on rows written before it was recorded, and on outgoing messages. `sender_verdict` is verified, failed or
    unverified; `identity_notes` lists anomalies intake saw (several From addresses, a Sender that differs, ...);
    `peer_ip` / `peer_helo` / `authenticated_as` are what the SMTP session itself saw; `forwarded_by_*` the staff
    member who forwarded a citizen's mail, `forward_verified` whether that staff member is proven.
    """

    sender_verdict: Mapped[str | None] = mapped_column(String(16))
    sender_evidence: Mapped[str | None] = mapped_column(Text)
    identity_notes: Mapped[list[Any] | None] = mapped_column(JSON)
    peer_ip: Mapped[str | None] = mapped_column(Text)
    peer_helo: Mapped[str | None] = mapped_column(Text)
    authenticated_as: Mapped[str | None] = mapped_column(Text)
    forwarded_by_name: Mapped[str | None] = mapped_column(Text)
    forwarded_by_email: Mapped[str | None] = mapped_column(Text)
    forward_verified: Mapped[bool | None] = mapped_column(Boolean)


class Complaint(SenderTrust, Base):
    __tablename__ = "complaints"
    __table_args__ = (
        UniqueConstraint("year", "sequence", name="uq_complaints_year_sequence"),
        Index("ix_complaints_status_answer_due", "status", "answer_due"),
        Index("ix_complaints_status_year_sequence", "status", "year", "sequence"),
        Index("ix_complaints_service_year_sequence", "service_concerned", "year", "sequence"),
        # The back office's filters, each in the list's order (migration 0010 says why these).
        Index("ix_complaints_handler_year_sequence", "handler", "year", "sequence"),
        Index("ix_complaints_channel_year_sequence", "channel", "year", "sequence"),
        Index("ix_complaints_theme_year_sequence", "theme", "year", "sequence"),
        Index("ix_complaints_admissibility_year_sequence", "admissibility", "year", "sequence"),
        Index("ix_complaints_data_protection_year_sequence", "data_protection", "year", "sequence"),
        Index("ix_complaints_received_at", "received_at"),
        # PostgreSQL also has trigram indexes for the text search (migration 0002), SQLite an FTS5 trigram table
        # kept by triggers (migration 0004): neither is expressible portably here.
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True, insert_sentinel=True)
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    message_key: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="complaint", index=True)
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    legal_start: Mapped[date] = mapped_column(Date, index=True)
    complainant_name: Mapped[str] = mapped_column(Text, default="")
    complainant_email: Mapped[str | None] = mapped_column(String(320), index=True)
    complainant_postal_address: Mapped[str | None] = mapped_column(Text)
    complainant_language: Mapped[str | None] = mapped_column(Text)
    subject_line: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    raw_object: Mapped[str | None] = mapped_column(Text)
    service_concerned: Mapped[str | None] = mapped_column(String(200), index=True)
    theme: Mapped[str | None] = mapped_column(Text)
    admissibility: Mapped[str] = mapped_column(String(32), default="pending")
    admissibility_reasons: Mapped[list[Any]] = mapped_column(default=list)
    screening_proposal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32), default="received")
    handler: Mapped[str | None] = mapped_column(Text)
    acknowledgment_due: Mapped[date] = mapped_column(Date, index=True)
    answer_due: Mapped[date] = mapped_column(Date, index=True)
    answer_extended: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_since: Mapped[date | None] = mapped_column(Date)
    acknowledged_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None] = mapped_column(index=True)
    closed_at: Mapped[datetime | None] = mapped_column(index=True)  # when it reached its current final status
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_category: Mapped[str | None] = mapped_column(String(64))
    recommendations: Mapped[list[Any]] = mapped_column(default=list)
    linked_number: Mapped[str | None] = mapped_column(String(40))
    redirected_to: Mapped[str | None] = mapped_column(Text)  # directory id of the competent ombudsman
    automated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why no automatic acknowledgment was asked of the notifier though a person wrote it (X-Auto-Response-Suppress...).
    acknowledgment_suppressed: Mapped[str | None] = mapped_column(Text)
    # Facts screening weighs for admissibility, as staff recorded them or a letter's metadata stated them (None:
    # unknown; screening then looks for them in the text): the date of the facts, of the citizen's last step since,
    # and whether the service concerned was contacted first.
    facts_date: Mapped[date | None] = mapped_column(Date)
    last_step_date: Mapped[date | None] = mapped_column(Date)
    first_line_contacted: Mapped[bool | None] = mapped_column(Boolean)
    # A data-protection complaint (screening's `route_to_dpo`, or staff's classification): only a DPO sees it. The
    # default is the database's alone, so that an INSERT naming only older columns still fits (migration tests).
    data_protection: Mapped[bool] = mapped_column(Boolean, server_default=expression.false())
    # The number of the file this one was merged into (status "merged"); None otherwise, and again once undone.
    merged_into: Mapped[str | None] = mapped_column(String(40))
    # Possible duplicates (issue 15, `duplicates.py`): the numbers of the earlier files of the same citizen about the
    # same service within the window, found at registration (None: none found, or registered before 0013).
    possible_duplicates: Mapped[list[Any] | None] = mapped_column(JSON)
    # The citizen's normalised name and postal address, hashed (`duplicates.citizen_key`): what finds those files by
    # an index seek (None: no name or no postal address).
    citizen_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # When the file's identity and free texts were replaced by placeholders (issue 16, `privacy/anonymise.py`:
    # retention or an erasure on request); None while they are kept.
    anonymised_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


def filed_in(complaint: Complaint) -> dict[str, Any]:
    """The keyword that links a new row to its complaint: the id once the complaint is inserted, else the complaint
    itself, which the flush that inserts it resolves (a batch of registrations is inserted in one flush, issue 12)."""
    return {"complaint_id": complaint.id} if complaint.id is not None else {"complaint": complaint}


class ThreadMessage(SenderTrust, Base):
    __tablename__ = "thread_messages"
    # A person's messages by address (the personal-data export, migration 0018): on a prefix, the column is unbounded.
    __table_args__ = (Index("ix_thread_messages_sender_email_prefix",
                            expression.func.substr(expression.text("sender_email"), 1, 320)),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    complaint: Mapped[Complaint] = relationship(lazy="raise")  # only to stage it with a complaint not yet inserted
    direction: Mapped[str] = mapped_column(String(3))  # "in" or "out"
    message_key: Mapped[str] = mapped_column(String(512), unique=True, insert_sentinel=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    sender_name: Mapped[str] = mapped_column(Text, default="")
    sender_email: Mapped[str | None] = mapped_column(Text)
    recipient: Mapped[str | None] = mapped_column(Text)
    subject_line: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")  # the whole text, quoted history included
    # What the sender wrote this time, without quoted history or signature (None: intake did not separate them).
    new_text: Mapped[str | None] = mapped_column(Text)
    # The named rules of intake that hit for this message (`shared.events.RuleHit`: rule, outcome, why), in order.
    rules: Mapped[list[Any] | None] = mapped_column(JSON)
    notice_kind: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    raw_object: Mapped[str | None] = mapped_column(Text)
    automated: Mapped[bool] = mapped_column(Boolean, default=False)
    # A read receipt (RFC 8098 MDN): the Message-ID of our notice it reports on (the entry is no message to answer).
    disposition_of: Mapped[str | None] = mapped_column(Text)
    # Who the entry is with when not the citizen's side: "administration" (the administration concerned, issue 15;
    # `administrations.py`); None: the complainant or a correspondent, as before.
    party: Mapped[str | None] = mapped_column(String(32))
    # An administration's message is never shown to the citizen (no receipt, no References of a citizen's notice)
    # unless staff decide so (True); None: not a party's message that needs the decision.
    citizen_visible: Mapped[bool | None] = mapped_column(Boolean)
    occurred_at: Mapped[datetime]


class CaseParty(Base):
    __tablename__ = "case_parties"
    __table_args__ = (UniqueConstraint("complaint_id", "email", name="uq_case_parties_complaint_email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"))
    complaint: Mapped[Complaint] = relationship(lazy="raise")  # only to stage it with a complaint not yet inserted
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(32))  # complainant, correspondent
    added_by: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime]
    # No column of its own is unique within a batch (a citizen may be a party of two files registered together):
    # this one, filled only by SQLAlchemy, orders the rows of a multi-row INSERT ... RETURNING (migration 0020).
    insert_sentinel: Mapped[int | None] = orm_insert_sentinel(name="insert_sentinel")


class ChangeLogEntry(Base):
    __tablename__ = "change_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    complaint: Mapped[Complaint] = relationship(lazy="raise")  # only to stage it with a complaint not yet inserted
    change_id: Mapped[str] = mapped_column(String(64), unique=True, insert_sentinel=True)
    change: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class HeldMessage(Base):
    __tablename__ = "holding_pen"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_key: Mapped[str] = mapped_column(String(512), unique=True)
    reason: Mapped[str] = mapped_column(String(64))
    suggestions: Mapped[list[Any]] = mapped_column(default=list)
    event: Mapped[str] = mapped_column(Text)  # the MessageReceived JSON, whole, to attach or register it later
    sender_email: Mapped[str | None] = mapped_column(Text, index=True)  # the personal-data export's (0018)
    subject_line: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_number: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]


class OutboxEvent(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_id: Mapped[str] = mapped_column(String(600), unique=True, insert_sentinel=True)
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None] = mapped_column(index=True)


class DeadlineAlertRecord(Base):
    __tablename__ = "deadline_alerts"
    __table_args__ = (UniqueConstraint("complaint_id", "alert_key", name="uq_deadline_alerts_complaint_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"))
    alert_key: Mapped[str] = mapped_column(String(120))  # `deadlines.DeadlineAlert.key`
    raised_at: Mapped[datetime]


class ComplaintNote(Base):
    """An internal note of staff on a file. Kept apart from the thread on purpose: the thread is what went between
    the office and the parties (its Message-IDs match replies, its entries become References of our notices), and
    a note must never take part in any of that."""

    __tablename__ = "complaint_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)  # the same request adds the note once
    author: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ComplaintLink(Base):
    """Two related files (the same facts, the same citizen...); each pair once, `first_id` < `second_id`."""

    __tablename__ = "complaint_links"
    __table_args__ = (UniqueConstraint("first_id", "second_id", name="uq_complaint_links_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"))
    second_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    linked_by: Mapped[str] = mapped_column(Text)
    linked_at: Mapped[datetime]


class ComplaintMerge(Base):
    """A file merged into another: what the merge changed, so that undoing it restores exactly the state before."""

    __tablename__ = "complaint_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    moved_message_ids: Mapped[list[Any]] = mapped_column(default=list)  # thread_messages.id moved to the target
    added_party_ids: Mapped[list[Any]] = mapped_column(default=list)  # case_parties.id the merge gave the target
    previous_status: Mapped[str] = mapped_column(String(32))
    previous_closed_at: Mapped[datetime | None]
    merged_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    merged_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(Text)


class SavedSearch(Base):
    """A register query (the list's query string) a staff member saved, for themselves or shared with everyone."""

    __tablename__ = "saved_searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_account_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(Text)
    query: Mapped[str] = mapped_column(Text)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime]


# --- administrations concerned (issue 15) ------------------------------------------------------------------------
class Administration(Base):
    """An entry of the directory of services and administrations the office writes to (`administrations.py`):
    where its correspondence goes, in which language, and the days it is given to answer a request."""

    __tablename__ = "administrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stable identifier: the screening configuration's service id when there is one (e.g. "fps-finance"), so that
    # a file's `service_concerned` finds its entry.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(Text)
    emails: Mapped[list[Any]] = mapped_column(default=list)  # lower-case addresses, the first one written to
    postal_address: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    contact_person: Mapped[str] = mapped_column(Text, default="")
    answer_days: Mapped[int] = mapped_column(Integer, default=30)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PositionRequest(Base):
    """A request for the administration's position on a file: its own deadline, its reminder, its answer."""

    __tablename__ = "position_requests"
    __table_args__ = (Index("ix_position_requests_open", "answered_at", "due"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    administration_id: Mapped[int] = mapped_column(ForeignKey("administrations.id"), index=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)  # the same request is made once
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    recipient_email: Mapped[str | None] = mapped_column(Text)  # None: a printed letter
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime]
    requested_on: Mapped[date] = mapped_column(Date)
    due: Mapped[date] = mapped_column(Date)
    remind_on: Mapped[date | None] = mapped_column(Date)  # None: no reminder (the deadline is too short)
    reminded_at: Mapped[datetime | None]  # the reminder went out (once)
    missed_at: Mapped[datetime | None]  # the "no answer" warning went out (once)
    answered_at: Mapped[datetime | None]
    answer_message_key: Mapped[str | None] = mapped_column(String(512))


# --- recommendations followed up (issue 15) -------------------------------------------------------------------------
class Recommendation(Base):
    """A recommendation of the office to an administration (`recommendations.py`): drawn from a file, or general
    (`complaint_id` None); its follow-up status, the date it is to be reviewed, and the stored key of the reminder.

    `addressee` is the administration's name as written (kept when the directory entry changes or for a body not in
    the directory); `administration_id` the directory entry (`administrations`) when it was chosen from there.
    `history` lists every change of status or review date: who, when, from, to, why (a general recommendation has
    no file whose change log would hold them)."""

    __tablename__ = "recommendations"
    __table_args__ = (
        # The watcher's sweep: open recommendations whose review date has come (`recommendation_store.due_reviews`).
        Index("ix_recommendations_status_review_date", "status", "review_date"),
        # The list page's filters and the annual indicators (issued in a year).
        Index("ix_recommendations_addressee", "addressee"),
        Index("ix_recommendations_issued_on", "issued_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_key: Mapped[str] = mapped_column(String(120), unique=True)  # the same request adds it once
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    administration_id: Mapped[int | None] = mapped_column(ForeignKey("administrations.id"), index=True)
    addressee: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text)
    issued_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # `recommendations.FollowUp`
    status_reason: Mapped[str | None] = mapped_column(Text)  # why refused (required then), or the last change's why
    review_date: Mapped[date | None] = mapped_column(Date)
    # The review date whose reminder went out (the stored key: at most one reminder per review date).
    reminded_for: Mapped[date | None] = mapped_column(Date)
    history: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- requests for information to the citizen (issue 15) -----------------------------------------------------------
class InformationRequest(Base):
    """A request for information to the citizen (`information_requests.py`): what was asked, by when, whether the
    reminder went out, and how it ended (`resolution` NULL while it waits). The answer clock's pause itself is the
    complaint's (`paused_since`, `paused_days`); the change ids point to the change-log entries of each step."""

    __tablename__ = "information_requests"
    __table_args__ = (
        # The watcher's sweep: open requests (resolution NULL) by the day they were made, read in id order.
        Index("ix_information_requests_resolution_requested_on", "resolution", "requested_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    request_key: Mapped[str] = mapped_column(String(200), unique=True)  # the same staff request is made once
    missing: Mapped[list[Any]] = mapped_column(default=list)  # `information_requests.MissingItem` codes
    text: Mapped[str] = mapped_column(Text, default="")  # what staff wrote to the citizen, as sent
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime]
    requested_on: Mapped[date] = mapped_column(Date)  # the local day: the reminder and the closing count from it
    reply_by: Mapped[date] = mapped_column(Date)  # the date told to the citizen
    # Whether this request started the pause (False: the file was already waiting for the citizen).
    paused: Mapped[bool] = mapped_column(Boolean, default=True)
    reminder_sent_at: Mapped[datetime | None]  # the stored key of the reminder: set once, with its notice
    answered_at: Mapped[datetime | None]
    answer_message_key: Mapped[str | None] = mapped_column(String(512))  # the citizen's message that answered
    closed_at: Mapped[datetime | None]  # closed for lack of answer, or ended otherwise (see `resolution`)
    resolution: Mapped[str | None] = mapped_column(String(32))  # `information_requests.Resolution`
    request_change_id: Mapped[str | None] = mapped_column(String(64))
    reminder_change_id: Mapped[str | None] = mapped_column(String(64))
    end_change_id: Mapped[str | None] = mapped_column(String(64))


# --- the citizen's personal link and the satisfaction survey (issue 17) ----------------------------------------------
class CitizenLink(Base):
    """A personal link to a file (`citizen_access.py`): the token's selector and the SHA-256 of its verifier, never
    the token; who issued it (the registry at registration, staff, or the citizen's "send me my link again") and
    whether staff revoked it."""

    __tablename__ = "citizen_links"
    __table_args__ = (Index("ix_citizen_links_complaint_issued", "complaint_id", "issued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"))
    complaint: Mapped[Complaint] = relationship(lazy="raise")  # only to stage it with a complaint not yet inserted
    selector: Mapped[str] = mapped_column(String(16), unique=True, insert_sentinel=True)
    verifier_hash: Mapped[str] = mapped_column(String(64))
    issued_by: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(Text)


class SurveyInvitation(Base):
    """The survey link sent when a file was closed (`survey.py`): one per file, answerable once. Only whether it was
    answered is kept here, not when: the answers (`survey_answers`) carry no file, no date, no order."""

    __tablename__ = "survey_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), unique=True)
    selector: Mapped[str] = mapped_column(String(16), unique=True)
    verifier_hash: Mapped[str] = mapped_column(String(64))
    invited_at: Mapped[datetime]
    expires_on: Mapped[date] = mapped_column(Date)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)


class SurveyScores:
    """What a citizen answered (columns of both survey answer tables): the scores 1-5 (NULL: skipped) and the free
    comment."""

    clarity: Mapped[int | None] = mapped_column(Integer)
    delay: Mapped[int | None] = mapped_column(Integer)
    respect: Mapped[int | None] = mapped_column(Integer)
    overall: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)


class SurveyAnswer(SurveyScores, Base):
    """One citizen's answers, pseudonymised: a random id (no order of arrival), the year only, the scores and the
    comment. Nothing links it to a file or a person: it arrives here from `survey_answers_waiting` in a shuffled batch
    written by another transaction than the one that closed its invitation (`public/survey.py`)."""

    __tablename__ = "survey_answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)


class SurveyAnswerWaiting(SurveyScores, Base):
    """An answer just given, stored in the transaction that closes its invitation (so it is stored once), until the
    survey's sweep moves it, with others, into `survey_answers` (`public/survey.py`). `waiting_since`: the day it was
    given, for the longest wait; the row is deleted when it moves."""

    __tablename__ = "survey_answers_waiting"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    waiting_since: Mapped[date] = mapped_column(Date)


# --- privacy: legal holds (issue 16) -------------------------------------------------------------------------------
class LegalHold(Base):
    """A hold on a file (litigation, an inspection, a court's request): while one is not released, the file is
    neither anonymised by retention nor erased on request (`privacy/`). Kept after release, as the record of why the
    file outlived its schedule."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime]
    released_by: Mapped[str | None] = mapped_column(Text)
    released_at: Mapped[datetime | None]
    release_reason: Mapped[str | None] = mapped_column(Text)


# The access tables (staff accounts, sessions, tokens; the audit trail) are declared beside their stores in
# services/registry/access/; imported here so that `Base.metadata` always describes the whole schema, whoever imports
# this module first (Alembic's comparison, the migration test).
from services.registry.access import accounts as _accounts  # noqa: E402,F401
from services.registry.access import audit_models as _audit_models  # noqa: E402,F401
from services.registry.annual_report import introductions as _introductions  # noqa: E402,F401
