"""Intake's spool: the raw message and its envelope made durable in JetStream at once, understood right after.

SMTP answers 250 as soon as the raw original and its envelope (channel, time of receipt, envelope sender and
recipients) are durable here; from that moment the message cannot be lost, and `SpoolWorker` turns it into its event
(or quarantines it) a few milliseconds later, in this process or in another intake process (`intake_role`). This is
how mail servers and GNU Mailman take mail in (their incoming queue): the sender's connection never waits on the
parser, and a parser that crashes, hangs or is stopped leaves the message in the spool instead of losing it
(docs/intake.md, docs/benchmarks-intake.md).

The raw original is written once (docs/intake.md, "The raw original, once"): its bytes go straight to the raw
originals' bucket as object-store chunks, not yet named (`ObjectStorage.write_chunks`), and the spool entry, one
small JetStream message published in the same breath, carries only the envelope and where those chunks are. The
pipeline later gives the chunks their name (`<message key>.eml`, known once the headers are parsed) instead of
writing the bytes again; a message whose chunks end up unnamed (a duplicate, a scan that became a letter) has them
discarded by the worker. Every size goes this way: a 30 MB mail is as durable at 250 as a 2 KB one, and the
SMTP front never parses. The entry's `Nats-Msg-Id` is the sha256 of the bytes as sent, so that an SMTP retry (the
same bytes again) within the stream's window is recognised at once; the message key, which needs the headers
parsed (`message_key.py`), is left to the worker, which recognises a copy that differs in its bytes (an IMAP copy,
trace headers). Entries of earlier versions carry the raw as their payload: the worker still reads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from pydantic import BaseModel, ConfigDict, ValidationError

from shared import streams
from shared.events import Channel, Provenance
from shared.messaging import DeliveryPolicy
from shared.stream_admin import patiently
from services.intake.jetstream_internals import Chunks
from services.intake.arrival import Arrival
from services.intake.stores import ObjectStorage, key_value_bucket, settle

log = structlog.get_logger(__name__)

ENVELOPE_HEADER = "Ombudsdesk-Spool-Envelope"
# Most envelope recipients kept in a spool entry (aiosmtpd takes each allowed address once per RCPT).
MAX_SPOOL_RECIPIENTS = 100
PUBLISH_TIMEOUT_SECONDS = 5.0


class SpoolEnvelope(BaseModel):
    """What the channel knew about a message besides its bytes; versioned like the events (shared/events.py)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = 1
    spool_id: str  # sha256 of the raw bytes
    channel: Channel = Channel.EMAIL
    received_at: datetime
    envelope_sender: str | None = None
    envelope_recipients: tuple[str, ...] = ()
    source: str = "smtp"
    # What the SMTP session saw (peer, HELO, AUTH login): evidence for the sender verdict, kept with the entry.
    provenance: Provenance = Provenance()
    # Where the raw original's bytes are in the raw originals' bucket (not yet named); None in entries written
    # before it was stored once, whose payload is the raw itself.
    stored_raw: Chunks | None = None

    def arrival(self) -> Arrival:
        return Arrival.of(channel=self.channel, received_at=self.received_at, envelope_sender=self.envelope_sender,
                          envelope_recipients=self.envelope_recipients, source=self.source,
                          provenance=self.provenance, stored_raw=self.stored_raw)


class SpoolEntryInvalid(ValueError):
    """A spool message without a readable envelope (written by something else, or damaged)."""


def envelope_headers(envelope: SpoolEnvelope) -> dict[str, str]:
    return {ENVELOPE_HEADER: envelope.model_dump_json(), "Nats-Msg-Id": f"spool:{envelope.spool_id}"}


def read_envelope(headers: dict[str, str] | None) -> SpoolEnvelope:
    value = (headers or {}).get(ENVELOPE_HEADER)
    if value is None:
        raise SpoolEntryInvalid(f"spool entry without its {ENVELOPE_HEADER} header")
    try:
        return SpoolEnvelope.model_validate_json(value)
    except ValidationError as error:
        raise SpoolEntryInvalid(f"unreadable spool envelope: {error.errors()[0].get('msg', error)}") from None


@dataclass(frozen=True)
class Spooled:
    spool_id: str
    fresh: bool  # False: the same message was already spooled within the stream's duplicate window


async def ensure_spool(js: JetStreamContext, replicas: int, ack_wait_seconds: float) -> None:
    """Create the spool's consumer and the attempts bucket (idempotent, every process at start). The spool stream
    itself is created with every other stream by `shared.stream_admin.ensure_streams`, which runs first and never
    changes an existing one (its replicas and placement are the operator's, `ombudsdesk streams update`)."""
    # The same durable-consumer settings as every event consumer (unlimited deliveries on the server: `SpoolWorker`
    # counts attempts itself and quarantines, so JetStream never drops an entry silently).
    policy = DeliveryPolicy(durable=streams.CONSUMER_INTAKE_SPOOL, ack_wait_seconds=ack_wait_seconds)
    # A cluster that has just created the spool stream may still be electing its leader: ask again (bounded).
    await patiently(lambda: js.add_consumer(streams.STREAM_INTAKE_SPOOL, policy.consumer_config()))
    await SpoolAttempts(lambda: js, replicas).bucket()


# An attempts record outlives its entry only if the worker died between the ack and the record's removal.
ATTEMPTS_TTL_SECONDS = 7 * 24 * 3600


class SpoolAttempts:
    """How often each redelivered spool entry was started (key: its stream sequence), kept in JetStream so that a
    restarted or another process knows. Only entries actually started count: see spool_worker.py."""

    def __init__(self, js: Any, replicas: int = 1) -> None:
        self._js = js
        self.replicas = replicas
        self._kv: Any = None

    async def bucket(self) -> Any:
        if self._kv is None:
            self._kv = await key_value_bucket(self._js(), streams.BUCKET_INTAKE_SPOOL_ATTEMPTS,
                                              "Starts of redelivered intake spool entries", self.replicas,
                                              ttl_seconds=ATTEMPTS_TTL_SECONDS)
        return self._kv

    async def started(self, sequence: int) -> int:
        """Record one more start of the entry; how many starts are recorded now, this one included."""
        kv = await self.bucket()
        try:
            earlier = int((await kv.get(str(sequence))).value or b"0")
        except (KeyNotFoundError, KeyDeletedError):
            earlier = 0
        await kv.put(str(sequence), str(earlier + 1).encode())
        return earlier + 1

    async def undo_start(self, sequence: int) -> None:
        """The start just recorded ended in a graceful stop, not a crash: it does not count."""
        kv = await self.bucket()
        try:
            starts = int((await kv.get(str(sequence))).value or b"0")
            if starts > 1:
                await kv.put(str(sequence), str(starts - 1).encode())
            else:
                await kv.purge(str(sequence))
        except (KeyNotFoundError, KeyDeletedError):
            return
        except Exception as error:  # noqa: BLE001 - at worst a stop counts as one start
            log.warning("intake.spool_attempts_undo_failed", error=repr(error))

    async def forget(self, sequence: int) -> None:
        """The entry is done (acknowledged, quarantined, or handed back on a graceful stop)."""
        try:
            await (await self.bucket()).purge(str(sequence))
        except Exception as error:  # noqa: BLE001 - a stale record only costs a key, and expires
            log.warning("intake.spool_attempts_forget_failed", error=repr(error))


class Spool:
    """Writes spool entries; `put` returns once JetStream acknowledged the raw's chunks and the entry (raises
    otherwise: 451)."""

    def __init__(self, js: Any, objects: ObjectStorage) -> None:
        # A callable: the connection exists only once the service started (nothing does I/O at import or build).
        self._js = js
        self.objects = objects
        self.counters = {"spooled": 0, "duplicate": 0}

    async def put(self, *pieces: bytes | bytearray, arrival: Arrival, spool_id: str | None = None) -> Spooled:
        """Store the raw original (the concatenation of `pieces`, e.g. our Received line and the data as sent)
        and its entry. `spool_id`: the identity of the bytes as the client sent them (default: of all the pieces),
        so that an SMTP retry is recognised although intake's own Received line (with its time) differs."""
        if spool_id is None:
            digest = hashlib.sha256()
            for piece in pieces:
                digest.update(piece)
            spool_id = digest.hexdigest()
        written, acks = await self.objects.write_chunks(streams.BUCKET_RAW_MESSAGES, *pieces)
        envelope = SpoolEnvelope(
            spool_id=spool_id,
            channel=arrival.channel,
            received_at=arrival.received_at,
            envelope_sender=arrival.envelope_sender,
            envelope_recipients=arrival.envelope_recipients[:MAX_SPOOL_RECIPIENTS],
            source=arrival.source,
            provenance=arrival.provenance,
            stored_raw=written,
        )
        # The chunks acknowledged before the entry is published, never both at once: the two streams have their own
        # leaders, and a leader change (issue 14's faults) can lose the chunks' publish yet keep the entry's. The
        # sender's retry would then be a duplicate entry whose good chunks are discarded below, and the first entry
        # would name chunks that do not exist: a complaint answered 250 and never registered.
        await settle(acks, PUBLISH_TIMEOUT_SECONDS)
        js: JetStreamContext = self._js()
        entry = await js.publish_async(streams.SUBJECT_INTAKE_SPOOL, b"", stream=streams.STREAM_INTAKE_SPOOL,
                                       headers=envelope_headers(envelope))
        await settle([entry], PUBLISH_TIMEOUT_SECONDS)
        fresh = not entry.result().duplicate
        if not fresh:  # the entry of the first copy names its own chunks: these would never be named
            await self.objects.discard_chunks(streams.BUCKET_RAW_MESSAGES, written.nuid)
        self.counters["spooled" if fresh else "duplicate"] += 1
        return Spooled(envelope.spool_id, fresh)


async def spool_backlog(js: JetStreamContext) -> int:
    """Entries not yet understood: waiting, plus being worked on (delivered, not yet acknowledged)."""
    info = await js.consumer_info(streams.STREAM_INTAKE_SPOOL, streams.CONSUMER_INTAKE_SPOOL)
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
