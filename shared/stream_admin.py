"""The JetStream streams and buckets of ombudsdesk as the settings want them, and the two ways to reach that state.

`desired_streams(settings)` is the whole layout, pure: the three event streams, the dead-letter stream, intake's
spool (a work queue), the two object-store buckets every service reads, and intake's key-value buckets, each with
the fields ombudsdesk manages (replicas, placement, limits, subjects...) as the settings say
(`OMBUDSDESK_STREAM_REPLICAS`, `_MAX_AGE_DAYS`, `_PLACEMENT_TAGS`, `_MAX_BYTES`).

`ensure_streams(js, settings)` runs in every service at every start: it creates what is missing and, for a stream
that exists with other values, logs a warning naming the stream and each differing field and returns the list —
it never changes an existing stream. An operator who raised the replicas with `nats stream edit`, or a cluster whose
streams were created with one replica, is told, not silently reset (issue 14). `update_streams(js, settings)`, run by
`ombudsdesk streams update`, applies the differences JetStream can apply in place: replicas up or down (on a
cluster), placement (JetStream moves the stream), max age, max bytes and the discard policy, subjects, the duplicate
window. It cannot change a stream's storage type (file/memory) or its retention policy (the spool is a work queue):
those are reported as `changeable=False` and need the stream recreated by hand.

Intake's key-value buckets are created by intake (`services.intake.stores`, with their own history and TTL); here
they are only compared and updated (replicas, placement), so that a cluster's quarantine is replicated like the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import structlog
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    ObjectStoreConfig,
    Placement,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError
from nats.js.client import KV_STREAM_TEMPLATE
from nats.js.object_store import OBJ_STREAM_TEMPLATE

from shared import streams
from shared.streams import DAY_SECONDS
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)

Kind = Literal["events", "dead letters", "spool", "object store", "key-value"]

# The fields ombudsdesk manages, in the order they are reported. Any other field of a stream (max_msgs, compression,
# metadata...) is the operator's and is kept as it is by `update_streams`.
FIELDS = ("subjects", "num_replicas", "placement_tags", "max_age", "max_bytes", "discard", "duplicate_window",
          "retention", "storage")
# What JetStream cannot change on an existing stream: it must be recreated (and its messages moved) by hand.
UNCHANGEABLE = frozenset({"retention", "storage"})
# The settings behind each field, named in warnings so that an operator knows which variable to look at.
SETTING_OF = {
    "num_replicas": "OMBUDSDESK_STREAM_REPLICAS",
    "placement_tags": "OMBUDSDESK_STREAM_PLACEMENT_TAGS",
    "max_age": "OMBUDSDESK_STREAM_MAX_AGE_DAYS",
    "max_bytes": "OMBUDSDESK_STREAM_MAX_BYTES",
    "discard": "OMBUDSDESK_STREAM_MAX_BYTES",
}
# How long a start waits for JetStream to answer (a cluster electing its leaders after a restart) before giving up.
START_PATIENCE_SECONDS = 30.0

# JetStream's answers while a new cluster's servers are still making themselves known to its meta leader ("no
# suitable peers for placement", "insufficient resources"): a replicated stream created at that moment is refused.
PEERS_NOT_READY = frozenset({10005, 10023})

# How long `update_streams` waits for a stream's new replicas to catch up before its next change.
SETTLE_PATIENCE_SECONDS = 60.0

INTAKE_KEY_VALUE_BUCKETS = (streams.BUCKET_INTAKE_SEEN, streams.BUCKET_INTAKE_QUARANTINE, streams.BUCKET_INTAKE_IMAP,
                            streams.BUCKET_INTAKE_SPOOL_ATTEMPTS)


@dataclass(frozen=True)
class DesiredStream:
    """One stream as the settings want it. `wanted` holds the managed fields (normalised, see `managed_values`);
    `config` is what `ensure_streams` creates it with, None when its owner creates it (intake's key-value buckets)."""

    name: str
    kind: Kind
    wanted: dict[str, Any]
    config: StreamConfig | None = None
    bucket: str | None = None  # the bucket's name, for an object store or a key-value bucket


@dataclass(frozen=True)
class StreamDifference:
    """One managed field of an existing stream that is not what the settings say."""

    stream: str
    field: str
    current: Any
    wanted: Any

    @property
    def changeable(self) -> bool:
        return self.field not in UNCHANGEABLE

    def describe(self) -> str:
        setting = SETTING_OF.get(self.field)
        return (f"{self.field}: {show(self.field, self.current)} (settings: {show(self.field, self.wanted)}"
                + (f", {setting}" if setting else "") + ")"
                + ("" if self.changeable else " — cannot be changed in place, the stream must be recreated"))


@dataclass
class UpdateOutcome:
    """What `update_streams` did to one stream: the differences it applied, or why it could not."""

    stream: str
    applied: list[StreamDifference] = field(default_factory=list)
    unchangeable: list[StreamDifference] = field(default_factory=list)
    error: str | None = None


# ------------------------------------------------------------------------------------------------ the layout (pure)


def _tags(settings: CommonSettings) -> tuple[str, ...]:
    return tuple(sorted(settings.stream_placement_tags))


def _placement(tags: Sequence[str]) -> Placement | None:
    return Placement(tags=list(tags)) if tags else None


def desired_streams(settings: CommonSettings | None = None) -> list[DesiredStream]:
    """Every stream and bucket of ombudsdesk as `settings` want it (None: the defaults, one server, nothing aged)."""
    settings = settings if settings is not None else CommonSettings.model_construct()
    replicas, tags = settings.stream_replicas, _tags(settings)
    max_age = float(settings.stream_max_age_days * DAY_SECONDS)
    max_bytes = settings.stream_max_bytes or -1
    layout: list[DesiredStream] = []
    for definition in streams.STREAMS:
        dead_letters = definition.name == streams.STREAM_DEAD_LETTER
        # Dead letters wait for a person's replay: never aged, never refused for size (a refused dead letter would
        # leave its event unacknowledged and retried for ever).
        stream_age = float(definition.max_age_seconds) if dead_letters else max_age
        stream_bytes = -1 if dead_letters else max_bytes
        # A full stream refuses new events (`discard: new`) instead of deleting the oldest, which may not have
        # been consumed yet; without a byte limit the policy does not matter and is not compared.
        discard = DiscardPolicy.NEW if stream_bytes > 0 else None
        config = StreamConfig(
            name=definition.name, description=definition.description, subjects=list(definition.subjects),
            retention=RetentionPolicy.LIMITS, storage=StorageType.FILE,
            duplicate_window=definition.duplicate_window_seconds, max_age=stream_age, max_bytes=stream_bytes,
            discard=discard, num_replicas=replicas, placement=_placement(tags),
        )
        layout.append(DesiredStream(definition.name, "dead letters" if dead_letters else "events",
                                    managed_values(config, with_discard=discard is not None), config))
    spool = StreamConfig(
        name=streams.STREAM_INTAKE_SPOOL,
        description="Mail accepted by intake and not yet understood (work queue)",
        subjects=[streams.SUBJECT_INTAKE_SPOOL],
        # A work queue: an entry leaves once intake has published its event or quarantined it. Never aged, never
        # limited: an entry that expired would be a complaint lost after SMTP's 250.
        retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE,
        duplicate_window=streams.DUPLICATE_WINDOW_SECONDS, max_age=0, max_bytes=-1,
        num_replicas=replicas, placement=_placement(tags),
    )
    layout.append(DesiredStream(spool.name or "", "spool", managed_values(spool), spool))
    # Buckets: only replicas and placement are ours; their other settings are the bucket API's or intake's own.
    bucket_fields = {"num_replicas": replicas, "placement_tags": tags}
    for bucket in (streams.BUCKET_RAW_MESSAGES, streams.BUCKET_ATTACHMENTS):
        layout.append(DesiredStream(OBJ_STREAM_TEMPLATE.format(bucket=bucket), "object store", dict(bucket_fields),
                                    bucket=bucket))
    for bucket in INTAKE_KEY_VALUE_BUCKETS:
        layout.append(DesiredStream(KV_STREAM_TEMPLATE.format(bucket=bucket), "key-value", dict(bucket_fields),
                                    bucket=bucket))
    return layout


def _enum_value(value: Any, default: str) -> str:
    return str(getattr(value, "value", value)) if value is not None else default


def managed_values(config: StreamConfig, *, with_discard: bool = False) -> dict[str, Any]:
    """The managed fields of a stream configuration, in comparable form: seconds as floats, "no limit" as -1,
    subjects and tags sorted, enums as their JSON values."""
    values: dict[str, Any] = {
        "subjects": tuple(sorted(config.subjects or ())),
        "num_replicas": config.num_replicas or 1,
        "placement_tags": tuple(sorted((config.placement.tags or ()) if config.placement else ())),
        "max_age": float(config.max_age or 0),
        "max_bytes": config.max_bytes if config.max_bytes and config.max_bytes > 0 else -1,
        "duplicate_window": float(config.duplicate_window or 0),
        "retention": _enum_value(config.retention, "limits"),
        "storage": _enum_value(config.storage, "file"),
    }
    if with_discard:
        values["discard"] = _enum_value(config.discard, "old")
    return values


def differences(desired: DesiredStream, current: StreamConfig) -> list[StreamDifference]:
    """The managed fields of `current` that are not what `desired` wants, in `FIELDS` order."""
    have = managed_values(current, with_discard=True)
    return [StreamDifference(desired.name, name, have[name], desired.wanted[name])
            for name in FIELDS if name in desired.wanted and have[name] != desired.wanted[name]]


def updated_config(current: StreamConfig, changes: Sequence[StreamDifference]) -> StreamConfig:
    """`current` with the changeable differences applied; every field ombudsdesk does not manage is kept."""
    values: dict[str, Any] = {}
    for change in changes:
        if not change.changeable:
            continue
        if change.field == "subjects":
            values["subjects"] = list(change.wanted)
        elif change.field == "placement_tags":
            # Keep a cluster the operator pinned the stream to; only the tags are ours.
            cluster = current.placement.cluster if current.placement else None
            values["placement"] = Placement(cluster=cluster, tags=list(change.wanted)) if change.wanted or cluster \
                else None
        elif change.field == "discard":
            values["discard"] = DiscardPolicy(change.wanted)
        else:
            values[change.field] = change.wanted
    return current.evolve(**values)


def update_steps(found: Sequence[StreamDifference]) -> list[list[StreamDifference]]:
    """The changeable differences in the updates JetStream accepts: it refuses to move a stream (new placement) and
    scale it in one update, so the placement goes in a second update, after everything else."""
    changeable = [difference for difference in found if difference.changeable]
    first = [difference for difference in changeable if difference.field != "placement_tags"]
    then = [difference for difference in changeable if difference.field == "placement_tags"]
    return [step for step in (first, then) if step]


def show(name: str, value: Any) -> str:
    """A managed value as an operator reads it."""
    if name in ("max_age", "duplicate_window"):
        if not value:
            return "forever" if name == "max_age" else "none"
        days = value / DAY_SECONDS
        return f"{days:g} days" if days >= 1 else f"{value:g} s"
    if name == "max_bytes":
        return "no limit" if value is None or value < 0 else f"{value} bytes"
    if name in ("subjects", "placement_tags"):
        return ",".join(value) if value else "(none)"
    return str(value)


# ------------------------------------------------------------------------------------------------ against JetStream

ResultT = TypeVar("ResultT")


async def patiently(call: Callable[[], Awaitable[ResultT]], patience: float = START_PATIENCE_SECONDS) -> ResultT:
    """`call()`, tried again while JetStream says it is not ready (a cluster electing its leaders or still meeting
    its servers, a server that just started), for up to `patience` seconds; any other error at once."""
    deadline = asyncio.get_running_loop().time() + patience
    delay = 0.2
    while True:
        try:
            return await call()
        except (ServiceUnavailableError, NatsTimeoutError, NoRespondersError, TimeoutError, BadRequestError) as error:
            if isinstance(error, BadRequestError) and error.err_code not in PEERS_NOT_READY:
                raise
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.info("streams.jetstream_not_ready", error=type(error).__name__, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _info(js: JetStreamContext, name: str) -> StreamInfo | None:
    try:
        return await js.stream_info(name)
    except NotFoundError:
        return None


async def _settled(js: JetStreamContext, name: str, patience: float = SETTLE_PATIENCE_SECONDS) -> StreamInfo | None:
    """The stream's info once every replica it is configured with is there and current (at once on one server), or
    the last info seen after `patience` seconds."""
    deadline = asyncio.get_running_loop().time() + patience
    info = await _info(js, name)
    while info is not None and info.cluster is not None and asyncio.get_running_loop().time() < deadline:
        peers = info.cluster.replicas or []
        if len(peers) + 1 >= (info.config.num_replicas or 1) and all(peer.current for peer in peers) \
                and info.cluster.leader:
            break
        await asyncio.sleep(0.25)
        info = await _info(js, name)
    return info


async def _create(js: JetStreamContext, desired: DesiredStream) -> bool:
    """Create the stream; False when another process had just created it the same way (JetStream accepts an
    identical creation and says it did not create anything)."""
    if desired.kind == "object store":
        await js.create_object_store(desired.bucket, config=ObjectStoreConfig(
            storage=StorageType.FILE, replicas=desired.wanted["num_replicas"],
            placement=_placement(desired.wanted["placement_tags"])))
        return True
    if desired.config is None:
        return False
    info = await js.add_stream(desired.config)
    return info.did_create is not False


async def _ensure_one(js: JetStreamContext, desired: DesiredStream) -> list[StreamDifference]:
    info = await _info(js, desired.name)
    if info is None:
        if desired.kind == "key-value":
            return []  # intake creates its buckets with their own history and TTL
        try:
            if await _create(js, desired):
                log.info("streams.created", stream=desired.name, replicas=desired.wanted["num_replicas"])
            return []
        except BadRequestError:
            # Another process created it between our look and our add (with other values, or the add would have
            # succeeded): compare with what is there now.
            info = await _info(js, desired.name)
            if info is None:
                raise
    return differences(desired, info.config)


async def ensure_streams(js: JetStreamContext, settings: CommonSettings | None = None) -> list[StreamDifference]:
    """Create every stream and bucket that is missing; report, never change, one that exists with other values.

    Safe to run from every process at every start (two at once: JetStream accepts an identical creation twice).
    Returns the differences found (also logged as one warning per stream, naming its fields). `settings` None:
    the defaults (one replica, nothing aged), as the single-server tests use.
    """
    found: list[StreamDifference] = []
    for desired in desired_streams(settings):
        differing = await patiently(lambda desired=desired: _ensure_one(js, desired))
        if differing:
            log.warning("streams.configuration_differs", stream=desired.name,
                        fields=[difference.field for difference in differing],
                        differences="; ".join(difference.describe() for difference in differing),
                        action="left as it is; `ombudsdesk streams status` shows it, `ombudsdesk streams update` "
                               "applies the settings")
        found.extend(differing)
    return found


@dataclass(frozen=True)
class StreamStatus:
    """One stream as `ombudsdesk streams status` prints it; `info` None when it does not exist (yet)."""

    desired: DesiredStream
    info: StreamInfo | None
    differences: list[StreamDifference]


async def stream_statuses(js: JetStreamContext, settings: CommonSettings) -> list[StreamStatus]:
    """Every managed stream, as it is, with its differences from the settings. Changes nothing."""
    statuses: list[StreamStatus] = []
    for desired in desired_streams(settings):
        info = await _info(js, desired.name)
        statuses.append(StreamStatus(desired, info, differences(desired, info.config) if info else []))
    return statuses


async def update_streams(js: JetStreamContext, settings: CommonSettings,
                         only: Sequence[str] | None = None) -> list[UpdateOutcome]:
    """Apply the settings to every existing stream that differs (or to the streams named in `only`).

    Each stream gets its changeable differences in as few updates as JetStream accepts (`update_steps`), every
    other field kept as it is. When JetStream refuses a step (more replicas than servers, placement tags no server
    has) the stream keeps what that step would have changed; the outcome holds the server's reason and the other
    streams are still updated. Missing streams are created (as `ensure_streams` would).
    """
    outcomes: list[UpdateOutcome] = []
    for desired in desired_streams(settings):
        if only is not None and desired.name not in only:
            continue
        info = await _info(js, desired.name)
        if info is None:
            await _ensure_one(js, desired)
            continue
        differing = differences(desired, info.config)
        if not differing:
            continue
        outcome = UpdateOutcome(desired.name, unchangeable=[d for d in differing if not d.changeable])
        for step in update_steps(differing):
            try:
                info = await js.update_stream(updated_config(info.config, step))
            except APIError as error:
                outcome.error = error.description or str(error)
                log.error("streams.update_refused", stream=desired.name, error=outcome.error,
                          fields=[d.field for d in step])
                break
            outcome.applied.extend(step)
            log.warning("streams.updated", stream=desired.name,
                        changes="; ".join(f"{d.field}: {show(d.field, d.current)} -> {show(d.field, d.wanted)}"
                                          for d in step))
            # JetStream takes one reconfiguration at a time: the next step waits until the new replicas are in.
            info = await _settled(js, desired.name) or info
        outcomes.append(outcome)
    return outcomes
