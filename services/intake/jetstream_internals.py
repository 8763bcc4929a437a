"""What intake knows of nats-py beyond its documented API, in one place: the JetStream object-store layout it writes
by hand (to pipeline the writes, docs/benchmarks-intake.md) and the key-value subject it publishes to directly.

nats-py 2.x documents `ObjectStore.put/get` and `KeyValue.put`, not the subjects and metadata behind them; intake
writes the same layout itself so that a raw original, its attachments and its event go out in one round trip, and so
that the SMTP front can store the raw original once and name it later (docs/intake.md, "The raw original, once").
Every other module goes through the functions below. `check_nats_internals` (run by
`tests/intake/test_library_internals.py`) fails with the library's name and version when an upgrade moves any of it;
the layout itself is also the NATS object-store specification (ADR-20), which readers in every language follow.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from typing import Any

from nats.js import JetStreamContext, api
from nats.js.client import KV_STREAM_TEMPLATE
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, MSG_ROLLUP_SUBJECT
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_DEFAULT_CHUNK_SIZE,
    OBJ_DIGEST_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
)
from nats.nuid import NUID

LIBRARY = "nats-py"
# The versions whose internals were checked by hand; any other runs `check_nats_internals` in the tests.
CHECKED_VERSIONS = ("2.16.0",)
CHUNK_SIZE = OBJ_DEFAULT_CHUNK_SIZE


def rollup_headers() -> dict[str, str]:
    """The headers of an object's metadata message (a fresh dict each time: nats-py's `publish` adds its own to the
    dict it is given)."""
    return {api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}


def kv_purge_headers() -> dict[str, str]:
    """What nats-py's `KeyValue.purge` publishes: a purge marker that rolls up (removes) every earlier revision of
    the key (intake's erasure falls back to it on a quarantine stream still created with `deny_delete`)."""
    return {KV_OP: KV_PURGE, api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}


def is_kv_marker(headers: dict[str, str] | None) -> bool:
    """A key-value delete or purge marker (no value), as nats-py's `KeyValue.get` tells them from values."""
    return (headers or {}).get(KV_OP) in (KV_DEL, KV_PURGE)


def create_only_headers() -> dict[str, str]:
    """Publish the object's metadata only if its name has none yet (as a key-value `create`)."""
    return {**rollup_headers(), api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE: "0"}

_nuid = NUID()


def new_nuid() -> str:
    """A fresh chunk-subject token, as nats-py's own `put` makes them (its generator is private to a connection)."""
    return _nuid.next().decode()


def object_stream(bucket: str) -> str:
    return OBJ_STREAM_TEMPLATE.format(bucket=bucket)


def chunk_subject(bucket: str, nuid: str) -> str:
    return OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=nuid)


def meta_subject(bucket: str, name: str) -> str:
    return OBJ_META_PRE_TEMPLATE.format(bucket=bucket, obj=base64.urlsafe_b64encode(name.encode()).decode())


def object_digest(sha256: bytes) -> str:
    return OBJ_DIGEST_TEMPLATE.format(digest=base64.urlsafe_b64encode(sha256).decode())


@dataclass(frozen=True)
class Chunks:
    """An object's bytes written to its chunk subject, not yet named: what a metadata message points to."""

    nuid: str
    chunks: int
    size: int
    digest: str  # OBJ_DIGEST_TEMPLATE of the sha256


def object_meta(bucket: str, name: str, written: Chunks) -> bytes:
    """The metadata message that makes `written` the object `name` of `bucket` for any client's `get`."""
    info = api.ObjectInfo(
        name=name,
        bucket=bucket,
        nuid=written.nuid,
        size=written.size,
        chunks=written.chunks,
        digest=written.digest,
        mtime=datetime.now(timezone.utc).isoformat(),
        options=api.ObjectMetaOptions(max_chunk_size=CHUNK_SIZE),
    )
    return json.dumps(info.as_dict()).encode()


def meta_nuid(meta: bytes | None) -> str | None:
    """The chunk token an existing metadata message points to."""
    return json.loads(meta or b"{}").get("nuid")


def kv_subject(bucket: str, key: str) -> str:
    """The subject a key-value `put` writes to (ADR-8), so that many keys can be published without a request each."""
    return f"$KV.{bucket}.{key}"


def kv_stream(bucket: str) -> str:
    return KV_STREAM_TEMPLATE.format(bucket=bucket)


def kv_prefix(bucket: str) -> str:
    """What precedes the key in the subject of a key-value entry."""
    return kv_subject(bucket, "")


def erasable_kv_stream(bucket: str, description: str, replicas: int, history: int) -> api.StreamConfig:
    """The stream nats-py's `create_key_value(KeyValueConfig(bucket, description, history, storage=FILE, replicas))`
    creates (nats-py 2.16, `JetStreamContext.create_key_value`), but without `deny_delete`: its messages can then be
    deleted by sequence with the server's secure erase (JetStream refuses to lift `deny_delete` once set, so the
    stream must be made so from the start). The bucket stays a bucket for every client (`js.key_value(bucket)`
    only needs `max_msgs_per_subject` >= 1); tests/intake/test_secure_erase.py compares it with what nats-py makes."""
    return api.StreamConfig(
        name=kv_stream(bucket),
        description=description,
        subjects=[f"{kv_prefix(bucket)}>"],
        allow_direct=None,  # nats-py passes `KeyValueConfig.direct`, None unless asked
        allow_rollup_hdrs=True,
        allow_msg_ttl=True,
        deny_delete=False,
        discard=api.DiscardPolicy.NEW,
        duplicate_window=2 * 60,
        max_age=None,
        max_bytes=None,
        max_consumers=-1,
        max_msg_size=None,
        max_msgs=-1,
        max_msgs_per_subject=history,
        num_replicas=replicas,
        storage=api.StorageType.FILE,
    )


class NatsInternalsChanged(RuntimeError):
    """nats-py no longer offers what intake relies on; the message names the version and what moved."""


def check_nats_internals() -> None:
    """Raise `NatsInternalsChanged` (naming nats-py's version and each difference) when the layout or the calls
    above are not what intake was written against. Pure: no server needed."""
    problems: list[str] = []
    expected = {
        "object stream": (object_stream("b"), "OBJ_b"),
        "chunk subject": (chunk_subject("b", "n"), "$O.b.C.n"),
        "meta subject": (meta_subject("b", "x.eml"), "$O.b.M." + base64.urlsafe_b64encode(b"x.eml").decode()),
        "digest": (object_digest(hashlib.sha256(b"").digest()),
                   "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(b"").digest()).decode()),
        "rollup header": (rollup_headers(), {"Nats-Rollup": "sub"}),
        "expected-sequence header": (api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE, "Nats-Expected-Last-Subject-Sequence"),
        "chunk size": (CHUNK_SIZE, 128 * 1024),
        "key-value stream": (kv_stream("b"), "KV_b"),
        "key-value marker header": (is_kv_marker({"KV-Operation": "PURGE"}), True),
    }
    for what, (found, wanted) in expected.items():
        if found != wanted:
            problems.append(f"{what} is {found!r}, intake writes {wanted!r}")
    info_fields = set(inspect.signature(api.ObjectInfo).parameters)
    missing = {"name", "bucket", "nuid", "size", "chunks", "digest", "mtime", "options"} - info_fields
    if missing:
        problems.append(f"api.ObjectInfo lacks {sorted(missing)}")
    for method, arguments in {"publish_async": {"subject", "payload", "stream", "headers"},
                              "publish": {"subject", "payload", "timeout", "stream", "headers"},
                              "get_msg": {"stream_name", "seq", "subject", "next", "direct"},
                              "get_last_msg": {"stream_name", "subject", "direct"}}.items():
        function: Any = getattr(JetStreamContext, method, None)
        if function is None:
            problems.append(f"JetStreamContext.{method} is gone")
            continue
        absent = arguments - set(inspect.signature(function).parameters)
        if absent:
            problems.append(f"JetStreamContext.{method} no longer takes {sorted(absent)}")
    if not new_nuid() or len(new_nuid()) != 22:
        problems.append("nats.nuid.NUID no longer makes 22-character tokens")
    if problems:
        raise NatsInternalsChanged(
            f"{LIBRARY} {version(LIBRARY)} (intake was checked against {', '.join(CHECKED_VERSIONS)}) changed what "
            f"services/intake/jetstream_internals.py relies on: {'; '.join(problems)}")
