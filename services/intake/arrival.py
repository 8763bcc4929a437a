"""What reaches intake's one way in (`IntakePipeline.accept`) and what comes out of it, as plain data: how a message
arrived (`Arrival`: its channel, envelope, provenance, whether its raw original is already stored, whether its
channel already understood it) and the outcome. Everything that differs between the channels is said here, so that
the pipeline has one path (docs/intake.md, "One way in"). No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.events import Channel, Event, MessageReceived, Provenance
from services.intake.jetstream_internals import Chunks
from services.intake.message.mime import Attachment


class AcceptStatus(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class AcceptOutcome:
    status: AcceptStatus
    message_key: str
    event: Event | None = None
    reason: str | None = None
    # Whether the raw original the channel had already stored (`Arrival.stored_raw`) now has a name; when not (a
    # duplicate, a scan turned into a letter), the channel discards those chunks.
    kept_stored_raw: bool = False


@dataclass(frozen=True)
class Prepared:
    """A message its channel has already understood (a letter: staff read it and typed its metadata): its key, its
    event and the files stored with it. The pipeline only makes it durable; its raw original (`accept`'s `raw`) is
    the metadata record, kept as `<key><raw_suffix>`."""

    key: str
    event: MessageReceived
    attachments: tuple[Attachment, ...] = ()
    raw_suffix: str = ".json"


@dataclass(frozen=True)
class Arrival:
    """How a message reached intake: its channel, when, the SMTP envelope, and what the channel saw of its origin;
    the raw original's chunks when the channel already stored them (`stored_raw`, not yet named: the SMTP front),
    and the message itself when the channel already understood it (`prepared`: letters)."""

    channel: Channel
    received_at: datetime
    envelope_sender: str | None
    envelope_recipients: tuple[str, ...]
    source: str
    provenance: Provenance = Provenance()
    stored_raw: Chunks | None = None
    prepared: Prepared | None = None

    @classmethod
    def of(
        cls,
        *,
        channel: Channel = Channel.EMAIL,
        received_at: datetime,
        envelope_sender: str | None,
        envelope_recipients: Sequence[str],
        source: str,
        provenance: Provenance = Provenance(),
        stored_raw: Chunks | None = None,
        prepared: Prepared | None = None,
    ) -> Arrival:
        # aiosmtpd takes the same allowed address again at each RCPT: each once.
        return cls(channel, received_at, envelope_sender, tuple(dict.fromkeys(envelope_recipients)), source,
                   provenance, stored_raw, prepared)
