"""Intake's durable state, all in JetStream (intake has no database): raw originals and attachments in the object
store, the set of message keys already taken in, and the quarantine. `IntakeStores` bundles them; it is built once
(wiring.py) and handed to whoever needs them (pipeline, spool, spool worker): nobody reaches for another's stores.

The seen-set is the durable duplicate check beyond the stream's `Nats-Msg-Id` window (one day): a key is written
only after the message's event, raw original and attachments were acknowledged by JetStream, so a crash in between
leads to a second publish that the window drops (all the duplicate checks: pipeline.py). Attachments are
content-addressed (`sha256-<hex>`): the same file sent twice is stored once. An object can be written in two steps,
its bytes first (`write_chunks`, by the SMTP front) and its name later (`start_name`, by the pipeline once it knows
the message key), so that a raw original is stored once (docs/intake.md, "The raw original, once").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    NoKeysError,
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
        """Remove chunks no name points to (any more): an old copy replaced, or a duplicate's bytes."""
        try:
            await self.js.purge_stream(layout.object_stream(bucket), subject=layout.chunk_subject(bucket, nuid))
        except Exception as failure:  # noqa: BLE001 - the object is stored; chunks left behind only cost space
            log.warning("intake.object_purge_failed", bucket=bucket, error=repr(failure))

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


class Quarantine:
    def __init__(self, js: JetStreamSource, replicas: int = 1) -> None:
        self._js = js_getter(js)
        self.replicas = replicas
        self._kv: Any = None

    @property
    def js(self) -> JetStreamContext:
        return self._js()

    async def _store(self) -> Any:
        if self._kv is None:
            self._kv = await key_value_bucket(self.js, streams.BUCKET_INTAKE_QUARANTINE,
                                              "Messages intake could not parse", self.replicas)
        return self._kv

    async def put(self, record: QuarantineRecord) -> None:
        kv = await self._store()
        await kv.put(record.message_key, record.model_dump_json().encode())

    async def get(self, message_key: str) -> QuarantineRecord | None:
        kv = await self._store()
        try:
            entry = await kv.get(message_key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if entry is None or not entry.value:
            return None
        return QuarantineRecord.model_validate(json.loads(entry.value))

    async def remove(self, message_key: str) -> None:
        kv = await self._store()
        await kv.delete(message_key)

    async def keys(self) -> list[str]:
        kv = await self._store()
        try:
            return sorted(await kv.keys())
        except NoKeysError:
            return []

    async def records(self) -> list[QuarantineRecord]:
        found = [await self.get(key) for key in await self.keys()]
        return sorted((record for record in found if record), key=lambda record: record.quarantined_at)

    async def count(self) -> int:
        return len(await self.keys())


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
