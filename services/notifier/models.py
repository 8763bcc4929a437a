"""The notifier's own schema: the outbox of notices (email and letters) and the flags on failed addresses.

The outbox row is written, fully rendered, in the same transaction that records the notice as due; its unique
`notification_key` (complaint and notice kind, or the registry's request key) is what makes a redelivered event a
no-op. The schema itself is created by the Alembic history in `migrations/`, never by `create_all`.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database (same text ordering on SQLite, `timestamp` on PostgreSQL), aware in Python."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class NoticeStatus(StrEnum):
    PENDING = "pending"  # due, waiting for the relay (or for its next retry)
    SENDING = "sending"  # claimed by a relay until `lease_until`
    SENT = "sent"  # the relay accepted it
    FAILED = "failed"  # permanently refused or retries exhausted; staff must write by post
    SUPPRESSED = "suppressed"  # recorded but never to be sent (auto-reply, list, own address, rate limit...)
    QUEUED = "queued"  # a letter waiting in the print queue
    PRINTED = "printed"  # a letter staff printed and posted


# The reason an erasure (`privacy.NotifierPrivacy`) leaves on a file's notices: the marker the relay's outcomes
# respect, so that a notice erased while being sent never takes back a reason, an address or a place in the queue.
ERASED_REASON = "personal data erased"


class NoticeChannel(StrEnum):
    EMAIL = "email"
    LETTER = "letter"


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_key: Mapped[str] = mapped_column(String(400), unique=True)
    complaint_number: Mapped[str] = mapped_column(String(64), index=True)
    notice_kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(320), default="", index=True)
    # What per-recipient limits count (`quota.limit_key`): "verified:victim@gmail.com" for any spelling of the
    # mailbox (sub-address, Gmail dots) and the quota of the sender answered; NULL without an address.
    limit_key: Mapped[str | None] = mapped_column(String(400), nullable=True, index=True)
    recipient_name: Mapped[str] = mapped_column(Text, default="")
    postal_address: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    # The template it was rendered from (`acknowledgment_compliment`...) and the id of the legal-notice version it
    # carried (`legal_notices`), NULL when it printed no legal sentence or was recorded before issue 15.
    template: Mapped[str | None] = mapped_column(String(80), nullable=True)
    legal_notice_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    letter_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    message_id: Mapped[str] = mapped_column(String(300))
    in_reply_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    references: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The NotificationSent / NotificationFailed event reached JetStream (republished until it did).
    outcome_published: Mapped[bool] = mapped_column(Boolean, default=False)
    printed_by: Mapped[str | None] = mapped_column(Text, nullable=True)


class AddressFlag(Base):
    """An address our mail does not reach: further notices to it are not emailed, staff write by post."""

    __tablename__ = "address_flags"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notification_key: Mapped[str | None] = mapped_column(String(400), nullable=True)


class FileAtRisk(Base):
    """A deadline alert still open, kept for the handler's daily digest (cleared when the notice it awaited leaves)."""

    __tablename__ = "files_at_risk"

    complaint_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    deadline_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    due: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))  # approaching | missed
    handler_email: Mapped[str] = mapped_column(String(320), index=True)
    handler_name: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5))
    subject_line: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
