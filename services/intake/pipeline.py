"""The one way in for every message, whatever its channel (SMTP through the spool, IMAP, the letters folder,
scan-to-email): `IntakePipeline.accept(raw, arrival)`. What differs per channel is data, the `Arrival`: channel,
time, envelope, provenance, whether the raw original is already stored (the SMTP front wrote it, `stored_raw`) and
whether the channel already understood the message (a letter, read by staff: `prepared`). The pipeline dedupes,
keeps the raw original (once), understands the message under a time limit, stores its attachments and publishes
its event — or quarantines it.

`accept` returns only once everything is durable in JetStream, and raises on any infrastructure failure, so that
the spool entry is retried (SMTP's 250 was already given for a durable spool entry), IMAP leaves the message
unflagged and the letters folder leaves its files. A message the parser cannot handle never raises: it is kept raw
in the quarantine with the reason and `accept` returns `QUARANTINED`. Writes, each idempotent, so a crash anywhere
is repaired by a retry: the raw original's name, the attachments and the event (`Nats-Msg-Id` = message key) are
published together and all acknowledged before `accept` returns; then the seen-set (written after, see
`_mark_seen_soon`). Small messages are parsed inline, larger ones in a worker process killed at the time limit
(parse_processes.py).

Duplicate checks, from the door inwards, and why each exists (also docs/intake.md, "Duplicates"):

1. the spool's `Nats-Msg-Id` (`spool:<sha256 of the bytes as sent>`, spool.py): an SMTP retry of the very same bytes
   after a lost 250 is answered at once and never parsed or stored again (its fresh chunks are discarded);
2. the message key (message_key.py): the same message in other bytes (relayed by a second MX with one more
   Received line, fetched again over IMAP) has one key; a letter's key is its scan's sha256;
3. the event stream's `Nats-Msg-Id` window (a day, `streams.DUPLICATE_WINDOW_SECONDS`): a second event for one key
   is dropped by JetStream, so a retry after a crash between the event and the answer publishes nothing twice;
4. the durable seen-set (stores.SeenMessages), asked only when a repeat could fall outside that window
   (`needs_durable_check`: no Date, an old one, or one far in the future, and always for letters);
5. the registry's unique message key: the last word, should a repeat pass all of the above (a seen-set write lost
   in a crash, after the window).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from datetime import datetime, timedelta, timezone

import structlog
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from pydantic import ValidationError

from shared import streams
from shared.events import DeliveryFailed, Event, MessageReceived, Party, Provenance, RuleHit
from shared import observability
from shared.messaging import describe_error, publish_event
from services.intake.message.authentication import system_txt_lookup
from services.intake.channels.client_rate import SUPPRESSED_REASON as CLIENT_RATE_REASON
from services.intake.message.message_key import content_digest, identify
from services.intake.arrival import AcceptOutcome, AcceptStatus, Arrival
from services.intake.message.mime import Attachment, MimeLimits
from services.intake.parse_processes import ParseProcesses, ParseTimedOut
from services.intake.settings import IntakeSettings
from services.intake.stores import (
    IntakeStores,
    QuarantineRecord,
    attachment_ref,
    cancel_all,
    raw_object_name,
    settle,
)
from services.intake.message.understanding import MAX_ID_CHARS, MAX_RECIPIENTS, ParseContext, Understanding, understand

log = structlog.get_logger(__name__)


class ParseTimeout(Exception):
    """The parser did not finish within `parse_timeout_seconds`."""


class ParsersBusy(RuntimeError):
    """Too many parses are stuck past their limit: not this message's fault, so it is not quarantined; `accept`
    raises, the sender retries later (451) and nothing is lost."""


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
        stores: IntakeStores | None = None,
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
        # Injected (wiring.py builds one set per process); a pipeline built alone (the CLI, tests) makes its own.
        self.stores = stores or IntakeStores(lambda: broker.connection.jetstream(timeout=5), settings.stream_replicas)
        self.objects = self.stores.objects
        self.seen = self.stores.seen
        self.quarantine = self.stores.quarantine
        self.counters = {status.value: 0 for status in AcceptStatus}
        self._marks_waiting: list[tuple[str, str]] = []
        self._marking: asyncio.Future[None] | None = None

    @property
    def js(self) -> JetStreamContext:
        return self.stores.js_context()

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

    async def accept(self, raw: bytes, arrival: Arrival | None = None, **details: Any) -> AcceptOutcome:
        """Take one message in (module docstring). `arrival` says how it came; `details` are its fields, for
        callers that have no `Arrival` at hand (`Arrival.of`)."""
        arrival = arrival or Arrival.of(**details)
        if arrival.prepared is not None:
            key, sent = arrival.prepared.key, None  # a letter has no Date: always the durable check
        else:
            identity = identify(raw)
            key, sent = identity.key, identity.date
        with structlog.contextvars.bound_contextvars(message_key=key, source=arrival.source):
            outcome = await self._accept(raw, key, arrival, needs_durable_check(sent, self.clock()))
            self.counters[outcome.status.value] += 1
            observability.mail_taken_in(arrival.source, outcome.status.value)
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
        raw_object = raw_object_name(key, arrival.prepared.raw_suffix if arrival.prepared else ".eml")
        parsing = asyncio.ensure_future(self._read(raw, key, arrival, raw_object)) if durable_check else None
        if parsing is not None:
            try:
                already_seen = await self.seen.contains(key)
            except BaseException:
                parsing.cancel()
                raise
            if already_seen:
                parsing.cancel()
                return AcceptOutcome(AcceptStatus.DUPLICATE, key)
        event: Event | None = None
        try:
            event, attachments = await (parsing if parsing is not None else self._read(raw, key, arrival, raw_object))
            # Inside the quarantining `try`: an event NATS would refuse must not make the sender retry for ever.
            event = fit_to_payload(event, max_payload)
        except ParsersBusy:
            raise
        except Exception as error:  # noqa: BLE001 - any parser failure quarantines; infrastructure errors are below
            reason = describe_failure(error)
            # What understanding decided before the event was refused, for `intake quarantine show`.
            rules = getattr(error, "rules", None) or getattr(event, "rules", ())
            await settle(await self._start_raw(raw_object, raw, arrival))
            await self._quarantine_message(key, reason, raw, raw_object, arrival, rules)
            return AcceptOutcome(AcceptStatus.QUARANTINED, key, reason=reason,
                                 kept_stored_raw=arrival.stored_raw is not None)
        # Raw original, attachments and event go out together and the answer waits for every acknowledgement:
        # one write and one round trip instead of one after the other. Should any fail, the whole message is
        # retried: the raw and attachments are stored again (idempotent) and JetStream drops the event's repeat
        # (`Nats-Msg-Id`). The raw's publishes are queued first and the event's right after, in the same turn of
        # the event loop, so that the connection writes them at once.
        raw_acks = await self._start_raw(raw_object, raw, arrival)
        try:
            if attachments:
                fresh, *_ = await asyncio.gather(
                    publish_event(self.broker, event),
                    *(self.objects.put_attachment(attachment) for attachment in attachments),
                )
            else:
                fresh = await publish_event(self.broker, event)
        except BaseException:
            cancel_all(raw_acks)
            raise
        await settle(raw_acks)
        self._mark_seen_soon(key, event.dedup_id())
        return AcceptOutcome(AcceptStatus.PROCESSED if fresh else AcceptStatus.DUPLICATE, key, event=event,
                             kept_stored_raw=arrival.stored_raw is not None)

    async def _start_raw(self, name: str, raw: bytes, arrival: Arrival) -> list[asyncio.Future[Any]]:
        """Keep the raw original as `name`: only its name when the channel already stored its bytes (the raw is
        written once), else the whole object. Acknowledgements still to await."""
        if arrival.stored_raw is not None:
            return self.objects.start_name(streams.BUCKET_RAW_MESSAGES, name, arrival.stored_raw)
        return await self.objects.start_put(streams.BUCKET_RAW_MESSAGES, name, raw)

    async def _read(
        self, raw: bytes, key: str, arrival: Arrival, raw_object: str
    ) -> tuple[Event, tuple[Attachment, ...]]:
        """The message's event and the files to store with it: as its channel prepared it, or understood here."""
        if arrival.prepared is not None:
            return arrival.prepared.event, arrival.prepared.attachments
        understanding = await self._understand(raw, arrival)
        try:
            event = self._event(understanding, key, arrival, raw_object)
        except ValueError as error:
            error.rules = understanding.rules  # type: ignore[attr-defined] - kept with the quarantined message
            raise
        if not isinstance(event, MessageReceived):
            return event, ()
        attachments = tuple(understanding.attachments)
        return event.model_copy(update={"attachments": tuple(attachment_ref(item) for item in attachments)}), \
            attachments

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
                # Issue 11 (understanding's rule chain and new text): the named rules that hit, what is new.
                rules=understanding.rules,
                new_text=understanding.new_text,
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
        rules: tuple[RuleHit, ...] = (),
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
            rules=tuple(rules),
            quarantined_at=self.clock(),
            attempts=(previous.attempts + 1) if previous else 1,
        )
        await self.quarantine.put(record)
        log.warning("intake.quarantined", reason=reason)

    async def quarantine_unprocessable(self, raw: bytes, arrival: Arrival, *, reason: str) -> None:
        """Keep a message the spool worker gave up on (see spool_worker.py), raw and with the reason, for a replay."""
        try:
            key = identify(raw).key
        except Exception:  # noqa: BLE001 - this message may be the very one that breaks the parsers
            key = "raw-" + content_digest(raw)  # as `identify` names a message without a usable Message-ID
        raw_object = raw_object_name(key)
        await settle(await self._start_raw(raw_object, raw, arrival))
        await self._quarantine_message(key, reason, raw, raw_object, arrival)
        self.counters[AcceptStatus.QUARANTINED.value] += 1
        observability.mail_taken_in(arrival.source, AcceptStatus.QUARANTINED.value)

    async def replay(self, key: str) -> AcceptOutcome:
        """Run a quarantined message through the pipeline again (after a fix); the normal event comes out once."""
        record = await self.quarantine.get(key)
        if record is None:
            raise KeyError(f"no quarantined message {key}")
        raw = await self.objects.get_raw(record.raw_object)
        outcome = await self.accept(raw, Arrival.of(
            channel=record.channel,
            received_at=record.received_at,
            envelope_sender=record.envelope_sender,
            envelope_recipients=record.envelope_recipients,
            source=record.source,
            provenance=record.provenance,
        ))
        if outcome.status is not AcceptStatus.QUARANTINED:
            await self.quarantine.remove(key)
        return outcome
