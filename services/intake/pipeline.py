"""The one path every incoming message takes (SMTP, IMAP, scan-to-email, letters): dedupe, keep the raw original,
understand it under a time limit, store its attachments, publish its event — or quarantine it.

`IntakePipeline.accept` returns only once everything is durable in JetStream, and raises on any infrastructure
failure, so that SMTP answers 451 (the sender retries) and IMAP leaves the message unflagged. A message the parser
cannot handle never raises: it is kept raw in the quarantine with the reason and `accept` returns `QUARANTINED`
(SMTP answers 250: we have it, safely). Writes, each idempotent, so a crash anywhere is repaired by the sender's
retry: the raw original, the attachments and the event (`Nats-Msg-Id` = message key) are published together and all
acknowledged before `accept` returns; then the seen-set (written after the answer, see `_mark_seen_soon`). Small
messages are parsed inline, larger ones in a worker process killed at the time limit (parse_processes.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

import structlog
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from pydantic import ValidationError

from shared import streams
from shared.events import Channel, DeliveryFailed, Event, MessageReceived, Party, Provenance
from shared.messaging import describe_error, publish_event
from services.intake.message.authentication import system_txt_lookup
from services.intake.channels.client_rate import SUPPRESSED_REASON as CLIENT_RATE_REASON
from services.intake.message.message_key import content_digest, identify
from services.intake.message.mime import MimeLimits
from services.intake.parse_processes import ParseProcesses, ParseTimedOut
from services.intake.settings import IntakeSettings
from services.intake.stores import (
    ObjectStorage,
    Quarantine,
    QuarantineRecord,
    SeenMessages,
    attachment_ref,
    raw_object_name,
    settle,
)
from services.intake.message.understanding import MAX_ID_CHARS, MAX_RECIPIENTS, ParseContext, Understanding, understand

log = structlog.get_logger(__name__)


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


class ParseTimeout(Exception):
    """The parser did not finish within `parse_timeout_seconds`."""


class ParsersBusy(RuntimeError):
    """Too many parses are stuck past their limit: not this message's fault, so it is not quarantined; `accept`
    raises, the sender retries later (451) and nothing is lost."""


@dataclass(frozen=True)
class Arrival:
    """How a message reached intake: its channel, when, the SMTP envelope, and what the channel saw of its origin."""

    channel: Channel
    received_at: datetime
    envelope_sender: str | None
    envelope_recipients: tuple[str, ...]
    source: str
    provenance: Provenance = Provenance()


def parse_context(
    settings: IntakeSettings, envelope_sender: str | None = None, provenance: Provenance = Provenance()
) -> ParseContext:
    return ParseContext(
        own_domain=settings.message_id_domain,
        case_number_prefix=settings.case_number_prefix,
        case_number_width=settings.case_number_width,
        staff_addresses=frozenset(settings.staff_addresses),
        staff_domains=frozenset(settings.staff_domains),
        limits=MimeLimits(settings.max_mime_depth, settings.max_mime_parts, settings.max_decoded_bytes),
        max_text_chars=settings.max_text_chars,
        envelope_sender=envelope_sender,
        provenance=provenance,
        trusted_authserv_ids=frozenset(settings.authserv_ids),
        staff_logins=frozenset(settings.staff_logins),
        dkim_txt_lookup=system_txt_lookup if settings.verify_dkim_dmarc else None,
    )


# NATS refuses a message bigger than the server's max_payload (1 MB by default); the full text stays in the raw.
DEFAULT_MAX_PAYLOAD = 1024 * 1024


class EventTooLarge(ValueError):
    """Even without its text the event does not fit one NATS message: the message is quarantined with this reason."""


def event_size(event: Event) -> int:
    return len(event.model_dump_json().encode())


SHORTENED_DEFECT = "text shortened to fit the event; the full text is in the raw original"


def fit_to_payload(event: Event, limit: int) -> Event:
    """The event itself if it fits in one NATS message of `limit` bytes, else a `MessageReceived` with its text
    shortened (never anything else: the other fields are bounded by `understand`); `EventTooLarge` if even the
    empty text does not make it fit."""
    size = event_size(event)
    if size <= limit:
        return event
    if not isinstance(event, MessageReceived) or not event.text:
        raise EventTooLarge(f"the event takes {size} bytes, more than the {limit} one NATS message may hold")
    defects = event.defects if SHORTENED_DEFECT in event.defects else (*event.defects, SHORTENED_DEFECT)
    text = event.text
    candidate = event
    while size > limit and text:
        # Proportional cut with a margin; at least a tenth less each round, so the loop ends quickly.
        text = text[: min(len(text) * limit // size - 1024, len(text) * 9 // 10)] if len(text) > 16 else ""
        candidate = event.model_copy(update={"text": text, "defects": defects})
        size = event_size(candidate)
    if size > limit:
        raise EventTooLarge(f"the event takes {size} bytes without its text, more than the {limit} one NATS "
                            "message may hold")
    return candidate


# A message dated this recently cannot have been received before the stream's Nats-Msg-Id window began (it did
# not exist yet), so JetStream alone dedupes it. The margins absorb sender clocks: a Date more than an hour in the
# future, or older than the window minus two hours, goes through the durable seen-set check.
RECENT_PAST = timedelta(seconds=streams.DUPLICATE_WINDOW_SECONDS) - timedelta(hours=2)
RECENT_FUTURE = timedelta(hours=1)


def needs_durable_check(sent: datetime | None, now: datetime) -> bool:
    """Whether a repeat of this message could fall outside JetStream's duplicate window (then ask the seen-set)."""
    return sent is None or not (now - RECENT_PAST <= sent <= now + RECENT_FUTURE)


def _bounded(value: str | None) -> str | None:
    """An id or address from a bounce, or None when it is longer than any real one (RFC 5322 2.1.1)."""
    return value if value is None or len(value) <= MAX_ID_CHARS else None


def describe_failure(error: BaseException) -> str:
    """The quarantine reason (also logged): the error's type and first line, a pydantic error without its input."""
    if isinstance(error, ValidationError):
        return describe_error(error)[:300]
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# Parses running at once in their worker processes; and killed workers not yet reaped beyond which intake answers
# 451 (a process the system cannot reap at once, e.g. stuck in uninterruptible I/O).
PARSE_WORKERS = 4
MAX_STUCK_PARSES = 64


class IntakePipeline:
    def __init__(
        self,
        broker: NatsBroker,
        settings: IntakeSettings,
        *,
        understand_message: Callable[[bytes, ParseContext], Understanding] = understand,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.understand_message = understand_message
        self.clock = clock
        # Parsing a large message is CPU work done in a worker process (parse_processes.py), so the event loop (SMTP
        # sessions, NATS) stays responsive; at most `PARSE_WORKERS` at once. A parse that overruns its time limit
        # is killed with its process, so a hostile mail holds neither a place nor a CPU past its limit (issue 10:
        # a thread could only be abandoned, still running and holding the GIL).
        self._parsers = ParseProcesses(PARSE_WORKERS)
        self._js: JetStreamContext | None = None
        self._objects: ObjectStorage | None = None
        self._seen: SeenMessages | None = None
        self._quarantine: Quarantine | None = None
        self.counters = {status.value: 0 for status in AcceptStatus}
        self._marks_waiting: list[tuple[str, str]] = []
        self._marking: asyncio.Future[None] | None = None

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            self._js = self.broker.connection.jetstream(timeout=5)
        return self._js

    @property
    def objects(self) -> ObjectStorage:
        if self._objects is None:
            self._objects = ObjectStorage(self.js)
        return self._objects

    @property
    def seen(self) -> SeenMessages:
        if self._seen is None:
            self._seen = SeenMessages(self.js, self.settings.stream_replicas)
        return self._seen

    @property
    def quarantine(self) -> Quarantine:
        if self._quarantine is None:
            self._quarantine = Quarantine(self.js, self.settings.stream_replicas)
        return self._quarantine

    def max_payload(self) -> int:
        server_limit = getattr(self.broker.connection, "max_payload", 0) or DEFAULT_MAX_PAYLOAD
        return int(server_limit * 0.9)

    @property
    def stuck_parses(self) -> int:
        """Killed parse processes not yet reaped (normally 0: a killed process ends at once)."""
        return self._parsers.stuck

    @stuck_parses.setter
    def stuck_parses(self, value: int) -> None:
        self._parsers.stuck = value

    def close(self) -> None:
        """Stop the parse worker processes (a parse still running in one is killed)."""
        self._parsers.close()

    async def accept(
        self,
        raw: bytes,
        *,
        channel: Channel = Channel.EMAIL,
        received_at: datetime,
        envelope_sender: str | None,
        envelope_recipients: Sequence[str],
        source: str,
        provenance: Provenance = Provenance(),
    ) -> AcceptOutcome:
        identity = identify(raw)
        key = identity.key
        arrival = Arrival(channel, received_at, envelope_sender, tuple(dict.fromkeys(envelope_recipients)), source,
                          provenance)
        with structlog.contextvars.bound_contextvars(message_key=key, source=source):
            outcome = await self._accept(raw, key, arrival, needs_durable_check(identity.date, self.clock()))
            self.counters[outcome.status.value] += 1
            message_id = getattr(outcome.event, "message_id", None)
            log.info("intake.accepted", status=outcome.status.value, reason=outcome.reason, size=len(raw),
                     message_id=message_id)
            return outcome

    async def _accept(
        self,
        raw: bytes,
        key: str,
        arrival: Arrival,
        durable_check: bool,
    ) -> AcceptOutcome:
        # The durable duplicate check and the parse run side by side: a duplicate merely wastes a parse. A fresh
        # message needs no check (see `needs_durable_check`) and is parsed straight away, without a task.
        max_payload = self.max_payload()
        parsing = asyncio.ensure_future(self._understand(raw, arrival)) if durable_check else None
        if parsing is not None:
            try:
                already_seen = await self.seen.contains(key)
            except BaseException:
                parsing.cancel()
                raise
            if already_seen:
                parsing.cancel()
                return AcceptOutcome(AcceptStatus.DUPLICATE, key)
        try:
            understanding = await (parsing if parsing is not None else self._understand(raw, arrival))
            event = self._event(understanding, key, arrival, raw_object_name(key))
            attachments = understanding.attachments if isinstance(event, MessageReceived) else ()
            if isinstance(event, MessageReceived):
                event = event.model_copy(update={"attachments": tuple(attachment_ref(item) for item in attachments)})
            # Inside the quarantining `try`: an event NATS would refuse must not make the sender retry for ever.
            event = fit_to_payload(event, max_payload)
        except ParsersBusy:
            raise
        except Exception as error:  # noqa: BLE001 - any parser failure quarantines; infrastructure errors are below
            reason = describe_failure(error)
            raw_object = await self.objects.put_raw(key, raw)
            await self._quarantine_message(key, reason, raw, raw_object, arrival)
            return AcceptOutcome(AcceptStatus.QUARANTINED, key, reason=reason)
        # Raw original, attachments and event go out together and the answer waits for every acknowledgement:
        # one write and one round trip instead of one after the other. Should any fail, the sender retries the
        # whole message: the raw and attachments are stored again (idempotent) and JetStream drops the event's
        # repeat (`Nats-Msg-Id`). The raw's publishes are queued first and the event's right after, in the same
        # turn of the event loop, so that the connection writes them at once.
        raw_acks = await self.objects.start_put(streams.BUCKET_RAW_MESSAGES, raw_object_name(key), raw)
        try:
            if attachments:
                fresh, *_ = await asyncio.gather(
                    publish_event(self.broker, event),
                    *(self.objects.put_attachment(attachment) for attachment in attachments),
                )
            else:
                fresh = await publish_event(self.broker, event)
        except BaseException:
            for ack in raw_acks:
                ack.cancel()
            raise
        await settle(raw_acks)
        self._mark_seen_soon(key, event.dedup_id())
        return AcceptOutcome(AcceptStatus.PROCESSED if fresh else AcceptStatus.DUPLICATE, key, event=event)

    def _mark_seen_soon(self, key: str, dedup_id: str) -> None:
        """Record the key in the seen-set without holding up the answer to the sender.

        The event is already durable; the seen-set only matters beyond the `Nats-Msg-Id` window (a day), and the
        registry refuses a second complaint for one message key anyway. Losing this write in a crash at this very
        instant can therefore not lose or double a complaint, and it saves a round trip per message. The keys
        that arrive while a batch is being written go out together in the next one.
        """
        self._marks_waiting.append((key, dedup_id))
        if self._marking is None or self._marking.done():
            self._marking = asyncio.ensure_future(self._write_marks())

    async def _write_marks(self) -> None:
        while self._marks_waiting:
            batch, self._marks_waiting = self._marks_waiting, []
            try:
                await self.seen.mark_many(batch)
            except Exception as error:  # noqa: BLE001 - see _mark_seen_soon: logged, never fatal
                log.warning("intake.seen_mark_failed", error=repr(error), keys=len(batch))

    async def drain(self) -> None:
        """Wait for the background seen-set writes (called before the broker disconnects)."""
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)

    async def _understand(self, raw: bytes, arrival: Arrival) -> Understanding:
        context = parse_context(self.settings, arrival.envelope_sender, arrival.provenance)
        if len(raw) <= self.settings.parse_in_thread_above_bytes and context.dkim_txt_lookup is None:
            # A small message parses in well under a millisecond and its work is bounded by its size and the MIME
            # limits: a hand-off to a worker process would cost more than it protects (docs/benchmarks-intake.md).
            # Intake's own DKIM check waits on DNS and RSA whatever the size: always in a worker, under the limit.
            return self.understand_message(raw, context)
        if self.stuck_parses >= MAX_STUCK_PARSES:
            raise ParsersBusy(f"{self.stuck_parses} parse processes killed past their time limit are not gone yet")
        limit = self.settings.parse_timeout_seconds
        try:
            return await self._parsers.parse(self.understand_message, raw, context, limit)
        except ParseTimedOut:
            raise ParseTimeout(f"parsing took longer than {limit:g} s") from None
        except RecursionError:
            raise RecursionError("message structure nested too deeply for the parser") from None

    def _event(
        self,
        understanding: Understanding,
        key: str,
        arrival: Arrival,
        raw_object: str,
    ) -> Event:
        if understanding.bounce is not None:
            bounce = understanding.bounce
            return DeliveryFailed(
                message_key=key,
                original_message_id=_bounded(bounce.original_message_id),
                failed_recipient=_bounded(bounce.failed_recipient),
                status=_bounded(bounce.status),
                diagnostic=bounce.diagnostic[:MAX_ID_CHARS] if bounce.diagnostic else bounce.diagnostic,
            )
        sender = understanding.sender
        forwarded_by = understanding.forwarded_by
        try:
            return MessageReceived(
                message_key=key,
                channel=arrival.channel,
                received_at=arrival.received_at,
                raw_object=raw_object,
                sender=Party(name=sender.name, email=sender.email, language=understanding.language),
                forwarded_by=Party(name=forwarded_by.name, email=forwarded_by.email) if forwarded_by else None,
                # aiosmtpd takes the same allowed address again at each RCPT: each once, and a bounded number.
                recipients=arrival.envelope_recipients[:MAX_RECIPIENTS] or understanding.recipients,
                subject_line=understanding.subject,
                text=understanding.text,
                language=understanding.language,
                language_confidence=understanding.language_confidence,
                message_id=understanding.message_id,
                in_reply_to=understanding.in_reply_to,
                references=understanding.references,
                our_references=understanding.our_references,
                candidate_case_numbers=understanding.case_numbers,
                automated=understanding.automated_reason is not None,
                automated_reason=understanding.automated_reason,
                defects=understanding.defects,
                sent_at=understanding.sent_at,
                source=arrival.source,
                sender_verdict=understanding.sender_verdict,
                sender_evidence=understanding.sender_evidence,
                identity_notes=understanding.identity_notes,
                forward_verified=understanding.forward_verified,
                provenance=arrival.provenance,
                needs_confirmation=understanding.needs_confirmation,
                acknowledgment_suppressed=understanding.acknowledgment_suppressed or (
                    CLIENT_RATE_REASON if arrival.provenance.client_over_rate_limit else None),
                disposition_of=understanding.disposition_of,
                disposition=understanding.disposition,
            )
        except ValidationError as error:
            raise ValueError(f"cannot build the event: {error.errors()[0].get('msg', error)}") from None

    async def _quarantine_message(
        self,
        key: str,
        reason: str,
        raw: bytes,
        raw_object: str,
        arrival: Arrival,
    ) -> None:
        previous = await self.quarantine.get(key)
        record = QuarantineRecord(
            message_key=key,
            reason=reason,
            raw_object=raw_object,
            size=len(raw),
            channel=arrival.channel,
            received_at=arrival.received_at,
            envelope_sender=arrival.envelope_sender,
            envelope_recipients=arrival.envelope_recipients,
            source=arrival.source,
            provenance=arrival.provenance,
            quarantined_at=self.clock(),
            attempts=(previous.attempts + 1) if previous else 1,
        )
        await self.quarantine.put(record)
        log.warning("intake.quarantined", reason=reason)

    async def quarantine_unprocessable(
        self,
        raw: bytes,
        *,
        reason: str,
        channel: Channel,
        received_at: datetime,
        envelope_sender: str | None,
        envelope_recipients: Sequence[str],
        source: str,
        provenance: Provenance = Provenance(),
    ) -> None:
        """Keep a message the spool worker gave up on (see spool_worker.py), raw and with the reason, for a replay."""
        try:
            key = identify(raw).key
        except Exception:  # noqa: BLE001 - this message may be the very one that breaks the parsers
            key = "raw-" + content_digest(raw)  # as `identify` names a message without a usable Message-ID
        raw_object = await self.objects.put_raw(key, raw)
        arrival = Arrival(channel, received_at, envelope_sender, tuple(envelope_recipients), source, provenance)
        await self._quarantine_message(key, reason, raw, raw_object, arrival)
        self.counters[AcceptStatus.QUARANTINED.value] += 1

    async def replay(self, key: str) -> AcceptOutcome:
        """Run a quarantined message through the pipeline again (after a fix); the normal event comes out once."""
        record = await self.quarantine.get(key)
        if record is None:
            raise KeyError(f"no quarantined message {key}")
        raw = await self.objects.get_raw(record.raw_object)
        outcome = await self.accept(
            raw,
            channel=record.channel,
            received_at=record.received_at,
            envelope_sender=record.envelope_sender,
            envelope_recipients=record.envelope_recipients,
            source=record.source,
            provenance=record.provenance,
        )
        if outcome.status is not AcceptStatus.QUARANTINED:
            await self.quarantine.remove(key)
        return outcome
