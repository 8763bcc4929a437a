"""Intake's durable state, all in JetStream (intake has no database): raw originals and attachments in the object
store, the set of message keys already taken in, and the quarantine.

The seen-set is the durable duplicate check beyond the stream's `Nats-Msg-Id` window (one day): a key is written
only after the message's event, raw original and attachments were acknowledged by JetStream, so a crash in between
leads to a second publish that the window drops. Attachments are content-addressed (`sha256-<hex>`): the same file
sent twice is stored once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js import api
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import MSG_ROLLUP_SUBJECT
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_DEFAULT_CHUNK_SIZE,
    OBJ_DIGEST_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
)
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    NoKeysError,
    NotFoundError,
    ObjectNotFoundError,
)
from nats.nuid import NUID
from pydantic import BaseModel, ConfigDict

from shared import streams
from shared.events import AttachmentRef, Channel, Provenance
from services.intake.message.mime import Attachment

log = structlog.get_logger(__name__)

# Chunks in flight at once while storing an object: enough to hide the round trips, little memory for 25 MB.
PUT_WINDOW = 8
ACK_TIMEOUT_SECONDS = 5.0
# JetStream's answers to a publish whose Nats-Expected-Last-Subject-Sequence does not hold (as nats-py's KV create).
WRONG_LAST_SEQUENCE = (10071, 10164)

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


async def key_value_bucket(
    js: JetStreamContext, bucket: str, description: str, replicas: int = 1, history: int = 1,
    ttl_seconds: float | None = None,
) -> Any:
    """The key-value bucket, created (file storage: it survives a NATS restart) when it does not exist yet."""
    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(KeyValueConfig(
            bucket=bucket, description=description, history=history, storage=StorageType.FILE, replicas=replicas,
            ttl=ttl_seconds,
        ))


def raw_object_name(message_key: str) -> str:
    return f"{message_key}.eml"


def attachment_ref(attachment: Attachment) -> AttachmentRef:
    """Where `ObjectStorage.put_attachment` stores an attachment: content-addressed, known before it is stored."""
    return AttachmentRef(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        object_name=f"sha256-{attachment.sha256}",
    )


class ObjectStorage:
    """Raw originals and attachments in the buckets every service can read (created by `ensure_streams`)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self._raw: Any = None
        self._attachments: Any = None
        # Unique chunk subjects per put, as nats-py's own put makes them (its generator is private to a connection).
        self._nuid = NUID()

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
        return the acknowledgements still to await (`settle`), so that a caller can publish more before waiting.

        The chunk and metadata publishes are pipelined instead of one round trip each; at most `PUT_WINDOW` chunks
        are unacknowledged at once, so a small object returns at once and a 25 MB one holds little memory. A repeated
        put of the same name (an SMTP retry, the same mail by IMAP, a quarantine replay) must not leave a second
        copy behind (review of issue 3): the metadata is first published on the condition that the name has none
        yet (`Nats-Expected-Last-Subject-Sequence: 0`, as a key-value `create`), which costs nothing; when JetStream
        refuses it, the name existed: see `_replace_meta`.
        """
        js = self.js
        nuid = self._nuid.next().decode()
        stream = OBJ_STREAM_TEMPLATE.format(bucket=bucket)
        chunk_subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=nuid)
        pending: list[asyncio.Future[Any]] = []
        chunks = 0
        view = memoryview(data)
        try:
            for offset in range(0, len(data), OBJ_DEFAULT_CHUNK_SIZE):
                if len(pending) >= PUT_WINDOW:
                    await settle(pending[:1])
                    del pending[0]
                pending.append(await js.publish_async(
                    chunk_subject, bytes(view[offset : offset + OBJ_DEFAULT_CHUNK_SIZE]), stream=stream
                ))
                chunks += 1
            info = api.ObjectInfo(
                name=name,
                bucket=bucket,
                nuid=nuid,
                size=len(data),
                chunks=chunks,
                digest=OBJ_DIGEST_TEMPLATE.format(
                    digest=base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
                ),
                mtime=datetime.now(timezone.utc).isoformat(),
                options=api.ObjectMetaOptions(max_chunk_size=OBJ_DEFAULT_CHUNK_SIZE),
            )
            meta_subject = OBJ_META_PRE_TEMPLATE.format(
                bucket=bucket, obj=base64.urlsafe_b64encode(name.encode()).decode()
            )
            meta = json.dumps(info.as_dict()).encode()
            pending.append(asyncio.ensure_future(self._publish_meta(stream, meta_subject, meta, bucket, nuid)))
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        return pending

    async def _publish_meta(self, stream: str, meta_subject: str, meta: bytes, bucket: str, nuid: str) -> Any:
        """Publish the metadata (acknowledged); when the name already existed, replace its metadata and purge the
        chunks it pointed to, once ours is acknowledged. Only metadata stored before ours is acted on (stream
        sequences), so a concurrent put of the same name is never undone: at worst an old copy stays, never is one
        lost. (A request rather than `publish_async`: nats-py 2.x leaves an asynchronous publish that JetStream
        refuses waiting until its time-out.)"""
        rollup = {api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}
        try:
            return await self.js.publish(meta_subject, meta, timeout=ACK_TIMEOUT_SECONDS, stream=stream,
                                         headers={**rollup, api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE: "0"})
        except APIError as error:
            if error.err_code not in WRONG_LAST_SEQUENCE:
                raise
        previous = await self.js.get_last_msg(stream, meta_subject)
        ack = await self.js.publish(meta_subject, meta, timeout=ACK_TIMEOUT_SECONDS, stream=stream, headers=rollup)
        old_nuid = json.loads(previous.data or b"{}").get("nuid")
        if old_nuid and old_nuid != nuid and (previous.seq or 0) < ack.seq:
            try:
                await self.js.purge_stream(stream, subject=OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=old_nuid))
            except Exception as failure:  # noqa: BLE001 - the object is stored; an old copy left only costs space
                log.warning("intake.object_purge_failed", stream=stream, error=repr(failure))
        return ack

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

    def __init__(self, js: JetStreamContext, replicas: int = 1) -> None:
        self.js = js
        self.replicas = replicas
        self._kv: Any = None

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
                acks.append(await self.js.publish_async(f"$KV.{streams.BUCKET_INTAKE_SEEN}.{message_key}",
                                                        dedup_id.encode(), stream=f"KV_{streams.BUCKET_INTAKE_SEEN}"))
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


class Quarantine:
    def __init__(self, js: JetStreamContext, replicas: int = 1) -> None:
        self.js = js
        self.replicas = replicas
        self._kv: Any = None

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


async def ensure_intake_buckets(js: JetStreamContext, replicas: int = 1) -> None:
    """Create intake's own key-value buckets at start (idempotent)."""
    await SeenMessages(js, replicas)._store()
    await Quarantine(js, replicas)._store()
