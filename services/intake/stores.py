"""Intake's durable state, all in JetStream (intake has no database): raw originals and attachments in the object
store, the set of message keys already taken in, and the quarantine. `IntakeStores` bundles them; it is built once
(wiring.py) and handed to whoever needs them (pipeline, spool, spool worker): nobody reaches for another's stores.

The seen-set is the durable duplicate check beyond the stream's `Nats-Msg-Id` window (one day): a key is written
only after the message's event, raw original and attachments were acknowledged by JetStream, so a crash in between
leads to a second publish that the window drops (all the duplicate checks: pipeline.py). Attachments are
content-addressed (`sha256-<hex>`): the same file sent twice is stored once. An object can be written in two steps,
its bytes first (`write_chunks`, by the SMTP front) and its name later (`start_name`, by the pipeline once it knows
the message key), so that a raw original is stored once (docs/intake.md, "The raw original, once").

What intake removes from JetStream and that may hold personal data — chunks no name points to any more, quarantine
entries and their earlier revisions — it deletes message by message with the server's secure erase (`erase_subject`):
a purge, a key-value delete or a per-subject limit only marks a message removed and leaves its bytes in the block
file until the server compacts it (docs/privacy.md, "Secure erase"). That is why the quarantine's stream is made by
intake rather than by nats-py (which sets `deny_delete`), and why `migrate_quarantine_stream` exists for a
quarantine made before.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext, api
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import (
    APIError,
    BadRequestError,
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    NotFoundError,
    ObjectNotFoundError,
)
from pydantic import BaseModel, ConfigDict

from shared import streams
from shared.events import AttachmentRef, Channel, Provenance, RuleHit
from shared.stream_admin import patiently
from services.intake import jetstream_internals as layout
from services.intake.jetstream_internals import Chunks
from services.intake.message.mime import Attachment

log = structlog.get_logger(__name__)

# Chunks in flight at once while storing an object: enough to hide the round trips, little memory for 25 MB.
PUT_WINDOW = 8
ACK_TIMEOUT_SECONDS = 5.0
# JetStream's answers to a publish whose Nats-Expected-Last-Subject-Sequence does not hold (as nats-py's KV create).
WRONG_LAST_SEQUENCE = (10071, 10164)

# A JetStream context, or (in the service, where the connection exists only once it started) what gives it.
JetStreamSource = JetStreamContext | Callable[[], JetStreamContext]


def js_getter(js: JetStreamSource) -> Callable[[], JetStreamContext]:
    return js if callable(js) else (lambda: js)


async def settle(acks: list[asyncio.Future[Any]], timeout: float = ACK_TIMEOUT_SECONDS) -> None:
    """Wait for JetStream's acknowledgements of pipelined publishes (one timer for all); raise the first failure.
    On any failure or timeout the others are cancelled, so nothing is left waiting."""
    try:
        async with asyncio.timeout(timeout):
            for ack in acks:
                await ack
    finally:
        for ack in acks:
            ack.cancel()


def cancel_all(acks: list[asyncio.Future[Any]]) -> None:
    for ack in acks:
        ack.cancel()


async def key_value_bucket(
    js: JetStreamContext, bucket: str, description: str, replicas: int = 1, history: int = 1,
    ttl_seconds: float | None = None,
) -> Any:
    """The key-value bucket, created (file storage: it survives a NATS restart) when it does not exist yet; tried
    again while JetStream is not ready (a cluster still electing the leaders of the streams just created answers a
    timeout, not an error: `stream_admin.patiently`)."""

    async def found_or_created() -> Any:
        try:
            return await js.key_value(bucket)
        except (BucketNotFoundError, NotFoundError):
            return await js.create_key_value(KeyValueConfig(
                bucket=bucket, description=description, history=history, storage=StorageType.FILE,
                replicas=replicas, ttl=ttl_seconds,
            ))

    return await patiently(found_or_created)


# ------------------------------------------------------------------------------------------------ secure erase


async def erase_message(js: JetStreamContext, stream: str, sequence: int) -> bool:
    """Delete one message with the server's secure erase (nats-py's `delete_msg` sends no `no_erase`: the record —
    subject, headers, payload — is overwritten with random bytes in its block file). False when it was gone already
    (a second erasure, a concurrent one)."""
    try:
        return bool(await js.delete_msg(stream, sequence))
    except NotFoundError:
        return False


async def erase_subject(js: JetStreamContext, stream: str, subject: str, *, before: int | None = None) -> int:
    """Securely erase every message of `subject` in `stream` (only those stored before sequence `before` when
    given); how many. Each one is looked up by subject, then deleted by sequence."""
    erased, sequence = 0, 1
    while True:
        try:
            message = await js.get_msg(stream, seq=sequence, subject=subject, next=True)
        except NotFoundError:
            return erased
        found = message.seq or 0
        if before is not None and found >= before:
            return erased
        sequence = found + 1
        if await erase_message(js, stream, found):
            erased += 1


def raw_object_name(message_key: str, suffix: str = ".eml") -> str:
    """A raw original's name: the message key, `.eml` for a mail, `.json` for a letter's metadata record."""
    return f"{message_key}{suffix}"


def attachment_ref(attachment: Attachment) -> AttachmentRef:
    """Where `ObjectStorage.put_attachment` stores an attachment: content-addressed, known before it is stored."""
    return AttachmentRef(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        object_name=f"sha256-{attachment.sha256}",
    )


def _pieces_in_chunks(pieces: tuple[bytes | bytearray | memoryview, ...], size: int) -> Any:
    """The concatenation of `pieces` in chunks of `size` bytes, without building the whole (a 34 MB mail)."""
    chunk = bytearray()
    for piece in pieces:
        view = memoryview(piece)
        while view:
            room = size - len(chunk)
            chunk += view[:room]
            view = view[room:]
            if len(chunk) == size:
                yield bytes(chunk)
                chunk = bytearray()
    if chunk:
        yield bytes(chunk)


class ObjectStorage:
    """Raw originals and attachments in the buckets every service can read (created by `ensure_streams`)."""

    def __init__(self, js: JetStreamSource) -> None:
        self._js = js_getter(js)
        self._raw: Any = None
        self._attachments: Any = None

    @property
    def js(self) -> JetStreamContext:
        return self._js()

    async def _buckets(self) -> tuple[Any, Any]:
        if self._raw is None:
            self._raw = await self.js.object_store(streams.BUCKET_RAW_MESSAGES)
            self._attachments = await self.js.object_store(streams.BUCKET_ATTACHMENTS)
        return self._raw, self._attachments

    async def put_raw(self, message_key: str, raw: bytes) -> str:
        name = raw_object_name(message_key)
        await self.put(streams.BUCKET_RAW_MESSAGES, name, raw)
        return name

    async def put(self, bucket: str, name: str, data: bytes) -> None:
        """Store an object and return once JetStream acknowledged every part (see `start_put`)."""
        await settle(await self.start_put(bucket, name, data))

    async def start_put(self, bucket: str, name: str, data: bytes) -> list[asyncio.Future[Any]]:
        """Publish an object in the standard JetStream object-store layout (readable by any client's `get`) and
        return the acknowledgements still to await (`settle`), so that a caller can publish more before waiting:
        `write_chunks` then `start_name`."""
        written, pending = await self.write_chunks(bucket, data)
        try:
            pending += self.start_name(bucket, name, written)
        except BaseException:
            cancel_all(pending)
            raise
        return pending

    async def write_chunks(
        self, bucket: str, *pieces: bytes | bytearray | memoryview
    ) -> tuple[Chunks, list[asyncio.Future[Any]]]:
        """Publish the bytes (the concatenation of `pieces`) to a fresh chunk subject of `bucket`, not yet under any
        name; the acknowledgements are returned still to await. Pipelined instead of one round trip each, at most
        `PUT_WINDOW` chunks unacknowledged at once, so a small object returns at once and a 25 MB one holds little
        memory. Chunks no name ever points to are removed with `discard_chunks`."""
        js = self.js
        nuid = layout.new_nuid()
        stream = layout.object_stream(bucket)
        subject = layout.chunk_subject(bucket, nuid)
        digest = hashlib.sha256()
        pending: list[asyncio.Future[Any]] = []
        chunks = size = 0
        try:
            for chunk in _pieces_in_chunks(pieces, layout.CHUNK_SIZE):
                if len(pending) >= PUT_WINDOW:
                    await settle(pending[:1])
                    del pending[0]
                pending.append(await js.publish_async(subject, chunk, stream=stream))
                digest.update(chunk)
                chunks += 1
                size += len(chunk)
        except BaseException:
            cancel_all(pending)
            raise
        return Chunks(nuid, chunks, size, layout.object_digest(digest.digest())), pending

    def start_name(self, bucket: str, name: str, written: Chunks) -> list[asyncio.Future[Any]]:
        """Make `written` the object `name` (its metadata message), acknowledgement still to await.

        A repeated put of the same name (an SMTP retry, the same mail by IMAP, a quarantine replay) must not leave
        a second copy behind (review of issue 3): the metadata is first published on the condition that the name
        has none yet (`Nats-Expected-Last-Subject-Sequence: 0`, as a key-value `create`), which costs nothing; when
        JetStream refuses it, the name existed: see `_publish_meta`."""
        meta = layout.object_meta(bucket, name, written)
        return [asyncio.ensure_future(self._publish_meta(bucket, layout.meta_subject(bucket, name), meta,
                                                         written.nuid))]

    async def _publish_meta(self, bucket: str, meta_subject: str, meta: bytes, nuid: str) -> Any:
        """Publish the metadata (acknowledged); when the name already existed, replace its metadata and purge the
        chunks it pointed to, once ours is acknowledged. Only metadata stored before ours is acted on (stream
        sequences), so a concurrent put of the same name is never undone: at worst an old copy stays, never is one
        lost. (A request rather than `publish_async`: nats-py 2.x leaves an asynchronous publish that JetStream
        refuses waiting until its time-out.)"""
        stream = layout.object_stream(bucket)
        try:
            return await self.js.publish(meta_subject, meta, timeout=ACK_TIMEOUT_SECONDS, stream=stream,
                                         headers=layout.create_only_headers())
        except APIError as error:
            if error.err_code not in WRONG_LAST_SEQUENCE:
                raise
        previous = await self.js.get_last_msg(stream, meta_subject)
        ack = await self.js.publish(meta_subject, meta, timeout=ACK_TIMEOUT_SECONDS, stream=stream,
                                    headers=layout.rollup_headers())
        old_nuid = layout.meta_nuid(previous.data)
        if old_nuid and old_nuid != nuid and (previous.seq or 0) < ack.seq:
            await self.discard_chunks(bucket, old_nuid)
        return ack

    async def read_chunks(self, bucket: str, written: Chunks) -> bytes:
        """The bytes of chunks written by `write_chunks` (named or not), in order, checked against their digest.
        One chunk (every mail under 128 KB) is one direct get: the server answers with the bytes themselves, no
        JSON or base64 (object-store streams allow direct gets, ADR-20); more are read one after the other."""
        js, stream, subject = self.js, layout.object_stream(bucket), layout.chunk_subject(bucket, written.nuid)
        if written.chunks == 1:
            data = bytes((await js.get_last_msg(stream, subject, direct=True)).data or b"")
        else:
            collected = bytearray()
            sequence = 1
            for _ in range(written.chunks):
                message = await js.get_msg(stream, seq=sequence, subject=subject, next=True)
                collected += message.data or b""
                sequence = (message.seq or 0) + 1
            data = bytes(collected)
        if len(data) != written.size or layout.object_digest(hashlib.sha256(data).digest()) != written.digest:
            raise ValueError(f"the stored raw original {written.nuid} does not match its digest")
        return data

    async def discard_chunks(self, bucket: str, nuid: str) -> None:
        """Remove chunks no name points to (any more): an old copy replaced, or a duplicate's bytes. Each chunk is
        deleted by sequence with the server's secure erase, not purged: a purge leaves the bytes (a citizen's mail)
        in the block file, and intake's NATS user may not purge a stream at all (ombudsdesk/nats_config.py)."""
        try:
            await erase_subject(self.js, layout.object_stream(bucket), layout.chunk_subject(bucket, nuid))
        except Exception as failure:  # noqa: BLE001 - the object is stored; chunks left behind only cost space
            log.warning("intake.object_discard_failed", bucket=bucket, error=repr(failure))

    async def get_raw(self, name: str) -> bytes:
        raw_bucket, _ = await self._buckets()
        result = await raw_bucket.get(name)
        return bytes(result.data or b"")

    async def put_attachment(self, attachment: Attachment) -> AttachmentRef:
        _, bucket = await self._buckets()
        ref = attachment_ref(attachment)
        try:
            info = await bucket.get_info(ref.object_name)
            exists = info.size == attachment.size
        except ObjectNotFoundError:
            exists = False
        if not exists:  # content-addressed: the same name and size is the same file, already stored
            await self.put(streams.BUCKET_ATTACHMENTS, ref.object_name, attachment.data)
        return ref

    async def get_attachment(self, object_name: str) -> bytes:
        _, bucket = await self._buckets()
        result = await bucket.get(object_name)
        return bytes(result.data or b"")


class SeenMessages:
    """Keys of messages whose event is durable: the duplicate check that outlives the `Nats-Msg-Id` window."""

    def __init__(self, js: JetStreamSource, replicas: int = 1) -> None:
        self._js = js_getter(js)
        self.replicas = replicas
        self._kv: Any = None

    @property
    def js(self) -> JetStreamContext:
        return self._js()

    async def _store(self) -> Any:
        if self._kv is None:
            self._kv = await key_value_bucket(self.js, streams.BUCKET_INTAKE_SEEN, "Message keys intake has published",
                                              self.replicas)
        return self._kv

    async def contains(self, message_key: str) -> bool:
        kv = await self._store()
        try:
            entry = await kv.get(message_key)
        except (KeyNotFoundError, KeyDeletedError):
            return False
        return entry is not None and entry.value is not None

    async def mark(self, message_key: str, dedup_id: str) -> None:
        await self.mark_many([(message_key, dedup_id)])

    async def mark_many(self, entries: list[tuple[str, str]]) -> None:
        """Write several keys at once: the same writes as the bucket's `put` (subject `$KV.<bucket>.<key>`),
        published back to back and acknowledged together instead of one request each."""
        await self._store()
        acks = []
        try:
            for message_key, dedup_id in entries:
                acks.append(await self.js.publish_async(layout.kv_subject(streams.BUCKET_INTAKE_SEEN, message_key),
                                                        dedup_id.encode(),
                                                        stream=layout.kv_stream(streams.BUCKET_INTAKE_SEEN)))
        except BaseException:
            for ack in acks:
                ack.cancel()
            raise
        await settle(acks)


class QuarantineRecord(BaseModel):
    """A message the parser could not handle, kept raw with the reason until someone replays it."""

    model_config = ConfigDict(frozen=True)

    message_key: str
    reason: str
    raw_object: str
    size: int
    channel: Channel
    received_at: datetime
    envelope_sender: str | None = None
    envelope_recipients: tuple[str, ...] = ()
    source: str = ""
    quarantined_at: datetime
    attempts: int = 1
    provenance: Provenance = Provenance()
    # The named rules of understanding that hit, when the parse got that far (the event was then refused).
    rules: tuple[RuleHit, ...] = ()


# The quarantine stream keeps this many revisions of an entry: the server never drops one by its per-subject limit
# (which would leave its bytes behind); `Quarantine.put` erases the earlier ones itself once the new one is stored.
QUARANTINE_HISTORY = 64
QUARANTINE_DESCRIPTION = "Messages intake could not parse"
# Where `migrate_quarantine_stream` keeps the entries while the quarantine's stream is made again (a bucket of its own).
QUARANTINE_MIGRATION_BUCKET = f"{streams.BUCKET_INTAKE_QUARANTINE}-migrating"
# What intake's start logs, and the operator runs, while the quarantine cannot be erased for good.
MIGRATE_COMMAND = "ombudsdesk intake quarantine migrate-stream"


async def quarantine_bucket(js: JetStreamContext, replicas: int = 1) -> tuple[Any, bool]:
    """The quarantine bucket, its stream created by intake when it does not exist yet (`layout.erasable_kv_stream`:
    as nats-py would make it, but without `deny_delete` and with `QUARANTINE_HISTORY` revisions), and whether its
    entries can be erased by sequence (False: a stream made by nats-py before, see `migrate_quarantine_stream`)."""
    bucket = streams.BUCKET_INTAKE_QUARANTINE
    stream = layout.kv_stream(bucket)

    async def found_or_created() -> tuple[Any, bool]:
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            try:
                info = await js.add_stream(layout.erasable_kv_stream(bucket, QUARANTINE_DESCRIPTION, replicas,
                                                                     QUARANTINE_HISTORY))
            except BadRequestError as refused:
                try:
                    info = await js.stream_info(stream)  # another process created it meanwhile
                except NotFoundError:
                    raise refused from None  # a cluster not ready yet: `patiently` tries again
        return await js.key_value(bucket), not info.config.deny_delete

    kv, erasable = await patiently(found_or_created)
    if not erasable:
        log.warning("intake.quarantine_not_erasable", stream=stream,
                    action=f"entries can only be purged (their bytes stay on disk until compaction): run "
                           f"`{MIGRATE_COMMAND}` once (docs/privacy.md)")
    return kv, erasable


# The most subjects one STREAM.INFO answer lists (nats-server's JSMaxSubjectDetails); past it the server pages, which
# nats-py does not read.
SERVER_SUBJECT_DETAILS = 100_000


class Quarantine:
    """Messages the parser could not handle, in a key-value bucket. Its entries (envelope, source, the SMTP peer:
    personal data) leave it by secure erase only (`erase`), every revision, so no removed entry stays on disk."""

    def __init__(self, js: JetStreamSource, replicas: int = 1) -> None:
        self._js = js_getter(js)
        self.replicas = replicas
        self._kv: Any = None
        self.erasable = False

    @property
    def js(self) -> JetStreamContext:
        return self._js()

    async def _store(self) -> Any:
        if self._kv is None:
            self._kv, self.erasable = await quarantine_bucket(self.js, self.replicas)
        return self._kv

    async def _writable_store(self) -> Any:
        """The bucket, before a write or an erasure: a stream seen with `deny_delete` is looked at again, since it
        may have been migrated meanwhile (`migrate_quarantine_stream`, run by hand while intake runs)."""
        kv = await self._store()
        if not self.erasable:
            info = await self.js.stream_info(layout.kv_stream(streams.BUCKET_INTAKE_QUARANTINE))
            self.erasable = not info.config.deny_delete
        return kv

    async def put(self, record: QuarantineRecord) -> None:
        kv = await self._writable_store()
        revision = await kv.put(record.message_key, record.model_dump_json().encode())
        if not self.erasable:
            return
        # The earlier revisions (the same message quarantined before) go by secure erase, not by a history limit.
        try:
            await erase_subject(self.js, layout.kv_stream(streams.BUCKET_INTAKE_QUARANTINE),
                                layout.kv_subject(streams.BUCKET_INTAKE_QUARANTINE, record.message_key),
                                before=revision)
        except Exception as failure:  # noqa: BLE001 - the new revision is stored; `erase` takes every revision later
            log.warning("intake.quarantine_revision_erase_failed", error=repr(failure))

    async def get(self, message_key: str) -> QuarantineRecord | None:
        kv = await self._store()
        try:
            entry = await kv.get(message_key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if entry is None or not entry.value:
            return None
        return QuarantineRecord.model_validate(json.loads(entry.value))

    async def erase(self, message_key: str) -> bytes | None:
        """Remove the entry of `message_key` for good: every message of its key (each revision, any marker) is
        deleted by sequence with the server's secure erase. Returns the entry's value (None: there was none).
        On a stream still made with `deny_delete` the entry can only be purged (its bytes stay until the server
        compacts the block; logged at start with the command that fixes it)."""
        await self._writable_store()
        stream = layout.kv_stream(streams.BUCKET_INTAKE_QUARANTINE)
        subject = layout.kv_subject(streams.BUCKET_INTAKE_QUARANTINE, message_key)
        latest = await self._latest(message_key)
        if latest is None:
            return None
        value = latest[1]
        if self.erasable:
            await erase_subject(self.js, stream, subject)
        elif value is not None:
            await self.js.publish(subject, b"", stream=stream, headers=layout.kv_purge_headers())
        return value

    async def revision(self, message_key: str) -> int | None:
        """The stream sequence of the entry's latest revision (None: no entry, or only a removal marker)."""
        await self._store()
        latest = await self._latest(message_key)
        return None if latest is None or latest[1] is None else latest[0]

    async def _latest(self, message_key: str) -> tuple[int, bytes | None] | None:
        """The stream sequence and value of the key's last message (value None: a removal marker); None: none."""
        try:
            last = await self.js.get_last_msg(layout.kv_stream(streams.BUCKET_INTAKE_QUARANTINE),
                                              layout.kv_subject(streams.BUCKET_INTAKE_QUARANTINE, message_key))
        except NotFoundError:
            return None
        return last.seq or 0, None if layout.is_kv_marker(last.headers) or not last.data else bytes(last.data)

    async def remove(self, message_key: str) -> None:
        """The entry leaves the quarantine (a replay that passed): erased, as any copy of a citizen's message."""
        await self.erase(message_key)

    async def keys(self) -> list[str]:
        """Every entry's key, asked of the server with request and reply.

        Not nats-py's `KeyValue.keys()`: its watcher decides "no keys" from a consumer info that the server may
        answer before the messages it has already pushed reach the client, and then returns an empty list while the
        bucket holds entries (seen once in CI). An erasable stream holds messages only under live keys (an entry
        leaves by secure erase, every revision), so the stream's subjects are the keys: one request. An old stream
        (`deny_delete`) keeps purge markers: its messages are walked (`_live_entries`), as when the list may have
        been cut at the server's page size."""
        await self._store()
        if self.erasable:
            prefix = layout.kv_prefix(streams.BUCKET_INTAKE_QUARANTINE)
            state = (await self.js.stream_info(layout.kv_stream(streams.BUCKET_INTAKE_QUARANTINE),
                                               subjects_filter=f"{prefix}>")).state
            subjects = state.subjects or {}
            if len(subjects) < SERVER_SUBJECT_DETAILS:
                return sorted(subject.removeprefix(prefix) for subject in subjects)
        return sorted(await _live_entries(self.js, streams.BUCKET_INTAKE_QUARANTINE))

    async def records(self) -> list[QuarantineRecord]:
        found = [await self.get(key) for key in await self.keys()]
        return sorted((record for record in found if record), key=lambda record: record.quarantined_at)

    async def count(self) -> int:
        return len(await self.keys())


@dataclass(frozen=True)
class QuarantineMigration:
    """What `migrate_quarantine_stream` did: `outcome` is "created" (there was no quarantine), "migrated" (made
    again without `deny_delete`, `entries` copied), "resumed" (an interrupted migration finished) or "unchanged"
    (erasable already)."""

    outcome: str
    entries: int = 0


class QuarantineMigrationFailed(RuntimeError):
    """The copy of the entries does not match the quarantine: nothing was removed, the command may be run again."""


async def _live_entries(js: JetStreamContext, bucket: str) -> dict[str, bytes]:
    """Every key of a key-value stream with its latest value (keys whose latest message is a marker left out)."""
    stream, prefix = layout.kv_stream(bucket), layout.kv_prefix(bucket)
    entries: dict[str, bytes] = {}
    sequence = 1
    while True:
        try:
            message = await js.get_msg(stream, seq=sequence, subject=f"{prefix}>", next=True)
        except NotFoundError:
            return entries
        sequence = (message.seq or 0) + 1
        key = (message.subject or "").removeprefix(prefix)
        if layout.is_kv_marker(message.headers) or not message.data:
            entries.pop(key, None)
        else:
            entries[key] = bytes(message.data)


async def _stream_config(js: JetStreamContext, stream: str) -> StreamConfig | None:
    try:
        return (await js.stream_info(stream)).config
    except NotFoundError:
        return None


def _recreated(config: StreamConfig, **changes: Any) -> StreamConfig:
    """`config` for a new stream: the changes applied, the server's own metadata (`_nats.*`) left to the server."""
    metadata = {key: value for key, value in (config.metadata or {}).items() if not key.startswith("_nats.")}
    return config.evolve(metadata=metadata or None, **changes)


async def migrate_quarantine_stream(js: JetStreamContext, replicas: int = 1) -> QuarantineMigration:
    """Make the quarantine's stream erasable by sequence (`ombudsdesk intake quarantine migrate-stream`).

    nats-py made it with `deny_delete`, which JetStream refuses to lift ("stream configuration update can not
    cancel deny message deletes", error 10052), and a key-value bucket's stream name is fixed (`KV_<bucket>`): so
    the entries are copied into a bucket of their own (`QUARANTINE_MIGRATION_BUCKET`) and checked, the old stream
    is deleted (its block files with it: also the bytes of entries purged before), the stream is made again with its
    configuration but without `deny_delete` (and with `QUARANTINE_HISTORY` revisions), the entries are copied back
    (an entry written meanwhile wins) and the copy is securely erased and deleted. Every step can be repeated: a run
    interrupted anywhere is finished by the next one. Needs the right to delete the stream (the `admin` user).
    Run it while intake is stopped: a quarantine write in the moment without stream fails (the spool retries it)."""
    bucket, backup = streams.BUCKET_INTAKE_QUARANTINE, QUARANTINE_MIGRATION_BUCKET
    stream, backup_stream = layout.kv_stream(bucket), layout.kv_stream(backup)
    config = await _stream_config(js, stream)
    copy = await _stream_config(js, backup_stream)
    if copy is None:
        if config is None:
            await quarantine_bucket(js, replicas)
            return QuarantineMigration("created")
        if not config.deny_delete:
            return QuarantineMigration("unchanged")
    outcome = "resumed"
    if config is not None and config.deny_delete:
        outcome = "migrated"
        entries = await _live_entries(js, bucket)
        if copy is None:
            # One revision per key: copying again after an interruption replaces, never adds.
            copy = _recreated(config, name=backup_stream, subjects=[f"{layout.kv_prefix(backup)}>"],
                              description="Quarantine entries while its stream is made again", deny_delete=False,
                              max_msgs_per_subject=1, max_age=0)
            await js.add_stream(copy)
        for key in (await _live_entries(js, backup)).keys() - entries.keys():
            # Copied by an interrupted run, gone from the quarantine since (replayed, erased): not to come back.
            await erase_subject(js, backup_stream, layout.kv_subject(backup, key))
        for key, value in entries.items():
            await js.publish(layout.kv_subject(backup, key), value, stream=backup_stream, timeout=ACK_TIMEOUT_SECONDS)
        if await _live_entries(js, backup) != entries:
            raise QuarantineMigrationFailed(f"the copy in {backup_stream} differs from {stream}: nothing was removed")
        await js.delete_stream(stream)
        # The stream's own configuration (replicas, placement, limits an operator set), but for what makes it
        # erasable.
        config = _recreated(config, deny_delete=False,
                            max_msgs_per_subject=max(QUARANTINE_HISTORY, config.max_msgs_per_subject or 1))
        await js.add_stream(config)
    elif config is None:
        # Interrupted between the deletion and the new stream: made as for a new deployment, as widely
        # replicated and placed as the copy.
        await js.add_stream(layout.erasable_kv_stream(bucket, QUARANTINE_DESCRIPTION, copy.num_replicas or replicas,
                                                      QUARANTINE_HISTORY).evolve(placement=copy.placement))
    entries = await _live_entries(js, backup)
    for key, value in entries.items():
        try:
            await js.publish(layout.kv_subject(bucket, key), value, stream=stream, timeout=ACK_TIMEOUT_SECONDS,
                             headers={api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE: "0"})
        except APIError as error:
            if error.err_code not in WRONG_LAST_SEQUENCE:
                raise  # the copy stays: the next run finishes
    await erase_subject(js, backup_stream, f"{layout.kv_prefix(backup)}>")
    await js.delete_stream(backup_stream)
    log.info("intake.quarantine_migrated", outcome=outcome, entries=len(entries))
    return QuarantineMigration(outcome, len(entries))


class IntakeStores:
    """Intake's stores over one JetStream context, built once per process (wiring.py) and handed to the pipeline,
    the spool and its worker; the connection is asked for only when a store is first used."""

    def __init__(self, js: JetStreamSource, replicas: int = 1) -> None:
        self._given = js_getter(js)
        self._js: JetStreamContext | None = None
        self.replicas = replicas
        self.objects = ObjectStorage(self.js_context)
        self.seen = SeenMessages(self.js_context, replicas)
        self.quarantine = Quarantine(self.js_context, replicas)

    def js_context(self) -> JetStreamContext:
        if self._js is None:
            self._js = self._given()
        return self._js


async def ensure_intake_buckets(js: JetStreamContext, replicas: int = 1) -> None:
    """Create intake's own key-value buckets at start (idempotent)."""
    await SeenMessages(js, replicas)._store()
    await Quarantine(js, replicas)._store()
