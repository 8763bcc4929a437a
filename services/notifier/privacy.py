"""The notifier's part of an erasure (issue 16): on `PersonalDataErased` it blanks, in its outbox, everything personal
of the file's notices — the rendered texts (subject, plain text, HTML, the letter's PDF), the recipient's address,
name and postal address, the threading headers that quote the citizen's Message-IDs — and its deadline records'
subject lines; a notice not yet sent is withdrawn (`suppressed`), never sent blank.

What stays, and why: each notice's row with its key, complaint number, kind, channel, status and dates. The key is
what makes a redelivered `ComplaintRegistered` a duplicate (without it an erased citizen would be written to
again); the rest is the fact that a notice went out, which statistics and the deadlines need, and is not personal.
The quota key (`limit_key`, the recipient's mailbox) is cleared too: it is the address itself, and the only thing
lost is that the erased notices no longer count in a rate-limit window (at most a day), a price paid once per
erasure. A bounced address's flag recorded for one of these notices goes with them.

On SQLite, `secure_delete` (set for every connection by `shared.database`) zeroes the bytes the update frees, and a
`wal_checkpoint(TRUNCATE)` afterwards moves the new pages into the database file and empties the write-ahead log,
so the old texts are neither in the file's free space nor in `-wal`. On PostgreSQL the tables' statistics are sampled
again (`pg_stats` holds sampled values); the old row versions stay in the table's files until the operator's
`ANALYZE` + `VACUUM FULL` that follows `ombudsdesk privacy erase` (docs/privacy.md: a plain VACUUM is not enough).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from faststream.nats import NatsBroker
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.models import ERASED_REASON, AddressFlag, FileAtRisk, Notice, NoticeStatus
from shared import streams
from shared.database import refresh_statistics
from shared.events import PersonalDataErased
from shared.messaging import durable_subscriber
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)

# Statuses of a notice still to go out: withdrawn by an erasure rather than sent with blank fields.
_NOT_YET_SENT = (NoticeStatus.PENDING.value, NoticeStatus.QUEUED.value)


@dataclass(frozen=True)
class NotifierErasure:
    notices: int
    withdrawn: int
    address_flags: int
    deadline_records: int


class NotifierPrivacy:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def erase(self, event: PersonalDataErased) -> NotifierErasure:
        number = event.complaint_number
        of_file = Notice.complaint_number == number
        async with self.engine.begin() as connection:
            if event.scope == "messages":
                # A correspondent's or a held message's erasure: only the notices that went to that person; the
                # file's other notices are its complainant's (and one not yet sent still has to go out).
                wanted = set(event.recipient_hashes)
                rows = (await connection.execute(select(Notice.notification_key, Notice.recipient).where(
                    of_file))).all() if number and wanted else []
                theirs = [key for key, recipient in rows
                          if recipient and PersonalDataErased.address_hash(recipient) in wanted]
                of_file = Notice.notification_key.in_(theirs)
            keys = (await connection.execute(select(Notice.notification_key).where(of_file))).scalars().all()
            withdrawn = (await connection.execute(select(func.count()).select_from(Notice).where(
                of_file, Notice.status.in_(_NOT_YET_SENT)))).scalar_one()
            # One statement withdraws and blanks: on PostgreSQL a relay's outcome committed between two would
            # leave a blank notice back in the queue (`Outbox._settled` reads the marker this sets).
            blanked = (await connection.execute(update(Notice).where(of_file).values(
                status=case((Notice.status.in_(_NOT_YET_SENT), NoticeStatus.SUPPRESSED.value), else_=Notice.status),
                recipient="", recipient_name="", postal_address="", subject="", body_text="", body_html="",
                letter_pdf=None, limit_key=None, in_reply_to=None, references="", status_reason=ERASED_REASON,
                printed_by=None))).rowcount
            flags = 0
            if keys:
                flags = (await connection.execute(
                    delete(AddressFlag).where(AddressFlag.notification_key.in_(keys)))).rowcount
            risks = 0
            if event.scope == "file":  # the file's subject is its complainant's
                risks = (await connection.execute(update(FileAtRisk).where(
                    FileAtRisk.complaint_number == number).values(subject_line=""))).rowcount
        if self.engine.dialect.name == "sqlite":
            await checkpoint_sqlite(self.engine)
        else:
            await refresh_statistics(self.engine, [Notice.__tablename__, AddressFlag.__tablename__,
                                                   FileAtRisk.__tablename__])
        report = NotifierErasure(blanked or 0, withdrawn or 0, flags or 0, risks or 0)
        log.info("privacy.notifier_erased", complaint_number=number, erasure_id=event.erasure_id,
                 notices=report.notices, withdrawn=report.withdrawn, address_flags=report.address_flags,
                 deadline_records=report.deadline_records)
        return report


class CheckpointBusy(RuntimeError):
    """A reader kept the write-ahead log from being emptied: the erasure's delivery is retried (it is idempotent)."""


async def checkpoint_sqlite(engine: AsyncEngine) -> None:
    """Fold the write-ahead log into the database file and truncate it, outside any transaction (SQLite refuses a
    checkpoint inside one, and every SQLAlchemy transaction of `shared.database` begins IMMEDIATE): the driver's
    connection itself. Raises `CheckpointBusy` when a reader still needed the old pages."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        cursor = await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _log_frames, _checkpointed = await cursor.fetchone()
        await cursor.close()
    if busy:
        raise CheckpointBusy("the notifier's write-ahead log is still in use; erasure retried")


def subscribe_privacy(broker: NatsBroker, settings: CommonSettings, privacy: NotifierPrivacy) -> None:
    """Declare the notifier's durable consumer of `PersonalDataErased` (no I/O: it starts with the broker)."""

    @durable_subscriber(broker, settings, subject=streams.SUBJECT_PERSONAL_DATA_ERASED,
                        durable=streams.CONSUMER_NOTIFIER_PRIVACY)
    async def personal_data_erased(event: PersonalDataErased) -> None:
        """Blank the erased file's notices in the outbox (texts, recipient, address); withdraw unsent ones."""
        with structlog.contextvars.bound_contextvars(complaint_number=event.complaint_number):
            await privacy.erase(event)
