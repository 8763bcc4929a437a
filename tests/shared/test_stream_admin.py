"""Streams from settings, never silently changed (issue 14), against real nats-server processes: one server, and a
three-node JetStream cluster (`ombudsdesk.nats_cluster`).

An existing stream whose managed fields differ from the settings is reported by `ensure_streams` (a warning naming
the stream and each field, and the returned list) and left exactly as it is; `update_streams` applies what JetStream
can change in place, keeps what ombudsdesk does not manage, and says what it cannot do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

from ombudsdesk.nats_cluster import NatsCluster
from shared import streams
from shared.settings import CommonSettings, SettingsError, load_settings
from shared.stream_admin import desired_streams, ensure_streams, stream_statuses, update_streams

TWO_DAYS = 2 * 24 * 3600.0
ALL_MANAGED = {desired.name for desired in desired_streams()}
CREATED_HERE = {desired.name for desired in desired_streams() if desired.kind != "key-value"}


def settings(**values: object) -> CommonSettings:
    """Settings as an operator's environment gives them, without reading this machine's environment."""
    return CommonSettings.model_validate(values)


async def patiently(call: Callable[[], Awaitable[object]], seconds: float = 30.0) -> None:
    """A call into a cluster that has just formed: its servers may still be meeting, a new stream electing its
    leader (the services' own start is as patient, `shared.stream_admin`)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await call()
            return
        except (nats.errors.Error, TimeoutError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
async def js(nats_server) -> AsyncIterator[JetStreamContext]:
    connection = await nats.connect(nats_server.url)
    try:
        yield connection.jetstream()
    finally:
        await connection.close()


async def stream_names(js: JetStreamContext) -> set[str]:
    return {info.config.name for info in await js.streams_info()}


def test_stream_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("OMBUDSDESK_STREAM_REPLICAS", "3")
    monkeypatch.setenv("OMBUDSDESK_STREAM_MAX_AGE_DAYS", "400")
    monkeypatch.setenv("OMBUDSDESK_STREAM_PLACEMENT_TAGS", "site:liege, ssd")
    monkeypatch.setenv("OMBUDSDESK_STREAM_MAX_BYTES", "5000000000")
    read = load_settings(CommonSettings)
    assert (read.stream_replicas, read.stream_max_age_days, read.stream_max_bytes) == (3, 400, 5_000_000_000)
    assert read.stream_placement_tags == ("site:liege", "ssd")
    monkeypatch.setenv("OMBUDSDESK_STREAM_REPLICAS", "0")
    with pytest.raises(SettingsError, match="OMBUDSDESK_STREAM_REPLICAS"):
        load_settings(CommonSettings)


def test_the_spool_and_the_dead_letters_are_never_aged_nor_limited_whatever_the_settings():
    layout = {desired.name: desired for desired in desired_streams(settings(stream_max_age_days=30,
                                                                            stream_max_bytes=10**9))}
    for name in (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER):
        assert layout[name].wanted["max_age"] == 30 * 24 * 3600
        assert layout[name].wanted["max_bytes"] == 10**9
        assert layout[name].wanted["discard"] == "new"  # a full event stream refuses; it never drops the oldest
    for name in (streams.STREAM_INTAKE_SPOOL, streams.STREAM_DEAD_LETTER):
        assert layout[name].wanted["max_age"] == 0
        assert layout[name].wanted["max_bytes"] == -1
    assert layout[streams.STREAM_INTAKE_SPOOL].wanted["retention"] == "workqueue"


async def test_a_differing_stream_is_reported_and_left_alone_until_update_streams(js):
    # An operator's stream: aged after two days, with a message limit of their own (a field we do not manage).
    await js.add_stream(StreamConfig(name=streams.STREAM_REGISTRY, subjects=["ombudsdesk.registry.>"],
                                     storage=StorageType.FILE, max_age=TWO_DAYS, max_msgs=100_000,
                                     duplicate_window=streams.DUPLICATE_WINDOW_SECONDS))
    await js.publish("ombudsdesk.registry.complaint.registered", b"{}")

    with capture_logs() as logs:
        found = await ensure_streams(js, settings())
    assert [(d.stream, d.field, d.current, d.wanted) for d in found] == [
        (streams.STREAM_REGISTRY, "max_age", TWO_DAYS, 0.0)]
    [warning] = [entry for entry in logs if entry["event"] == "streams.configuration_differs"]
    assert warning["stream"] == streams.STREAM_REGISTRY and warning["fields"] == ["max_age"]
    assert "2 days" in warning["differences"] and "OMBUDSDESK_STREAM_MAX_AGE_DAYS" in warning["differences"]
    assert warning["log_level"] == "warning"
    # Unchanged: still aged, the message still there; everything missing was created.
    info = await js.stream_info(streams.STREAM_REGISTRY)
    assert info.config.max_age == TWO_DAYS and info.state.messages == 1
    assert CREATED_HERE <= await stream_names(js)
    assert await ensure_streams(js, settings()) == found  # every start says it again, changes nothing

    outcomes = await update_streams(js, settings())
    assert [(o.stream, [d.field for d in o.applied], o.error) for o in outcomes] == [
        (streams.STREAM_REGISTRY, ["max_age"], None)]
    info = await js.stream_info(streams.STREAM_REGISTRY)
    assert info.config.max_age == 0
    assert info.config.max_msgs == 100_000  # the operator's own limit is kept
    assert info.state.messages == 1  # an update never loses what the stream holds
    assert await ensure_streams(js, settings()) == []


async def test_limits_from_settings_are_applied_by_update_and_a_stream_kept_without_them_is_reported(js):
    await ensure_streams(js, settings())
    limited = settings(stream_max_age_days=365, stream_max_bytes=50_000_000)
    found = await ensure_streams(js, limited)
    assert {(d.stream, d.field) for d in found} == {
        (name, field) for name in (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER)
        for field in ("max_age", "max_bytes", "discard")}
    info = await js.stream_info(streams.STREAM_INTAKE)
    assert (info.config.max_age, info.config.max_bytes) == (0, -1)

    await update_streams(js, limited)
    info = await js.stream_info(streams.STREAM_NOTIFIER)
    assert (info.config.max_age, info.config.max_bytes, info.config.discard) == (365 * 24 * 3600, 50_000_000, "new")
    assert (await js.stream_info(streams.STREAM_DEAD_LETTER)).config.max_age == 0
    assert await ensure_streams(js, limited) == []


async def test_what_jetstream_cannot_change_in_place_is_reported_as_such_and_not_attempted(js):
    # A spool created as an ordinary stream (limits retention) instead of a work queue.
    await js.add_stream(StreamConfig(name=streams.STREAM_INTAKE_SPOOL, subjects=[streams.SUBJECT_INTAKE_SPOOL],
                                     retention=RetentionPolicy.LIMITS, storage=StorageType.FILE,
                                     duplicate_window=streams.DUPLICATE_WINDOW_SECONDS))
    [difference] = await ensure_streams(js, settings())
    assert (difference.field, difference.current, difference.wanted) == ("retention", "limits", "workqueue")
    assert not difference.changeable and "recreated" in difference.describe()
    [outcome] = await update_streams(js, settings())
    assert outcome.applied == [] and outcome.error is None
    assert [d.field for d in outcome.unchangeable] == ["retention"]
    assert (await js.stream_info(streams.STREAM_INTAKE_SPOOL)).config.retention == RetentionPolicy.LIMITS


async def test_more_replicas_than_one_server_has_is_refused_with_the_servers_reason(js):
    await ensure_streams(js, settings())
    outcomes = await update_streams(js, settings(stream_replicas=3))
    assert {outcome.stream for outcome in outcomes} == CREATED_HERE
    assert all(outcome.error and "replicas" in outcome.error and not outcome.applied for outcome in outcomes)
    assert (await js.stream_info(streams.STREAM_INTAKE)).config.num_replicas == 1


@pytest.mark.slow
def test_on_a_three_node_cluster_streams_get_three_replicas_and_an_r1_stream_is_reported_then_updated(tmp_path: Path):
    # Every node carries the tag `site:lab`: placement on it works, placement on a tag no node has is refused.
    with NatsCluster(tmp_path / "cluster", extra_config='server_tags: ["site:lab"]') as cluster:

        async def scenario() -> None:
            client = await nats.connect(cluster.urls.split(","), connect_timeout=2)
            try:
                js = client.jetstream(timeout=15)
                # The notifier's stream as an earlier, single-replica start left it.
                await patiently(lambda: js.add_stream(StreamConfig(
                    name=streams.STREAM_NOTIFIER, subjects=["ombudsdesk.notifier.>"], storage=StorageType.FILE,
                    num_replicas=1, duplicate_window=streams.DUPLICATE_WINDOW_SECONDS)))
                await patiently(lambda: js.publish("ombudsdesk.notifier.notification.sent", b"{}"))
                clustered = settings(stream_replicas=3, stream_placement_tags="site:lab")

                found = await ensure_streams(js, clustered)
                assert [(d.stream, d.field, d.current, d.wanted) for d in found] == [
                    (streams.STREAM_NOTIFIER, "num_replicas", 1, 3),
                    (streams.STREAM_NOTIFIER, "placement_tags", (), ("site:lab",))]
                for name in CREATED_HERE - {streams.STREAM_NOTIFIER}:
                    info = await js.stream_info(name)
                    assert info.config.num_replicas == 3, name
                    assert sorted([info.cluster.leader, *(p.name for p in info.cluster.replicas or [])]) == [
                        "nats-1", "nats-2", "nats-3"], name
                assert (await js.stream_info(streams.STREAM_NOTIFIER)).config.num_replicas == 1

                statuses = {status.desired.name: status for status in await stream_statuses(js, clustered)}
                assert statuses.keys() == ALL_MANAGED
                assert [d.field for d in statuses[streams.STREAM_NOTIFIER].differences] == [
                    "num_replicas", "placement_tags"]

                [outcome] = await update_streams(js, clustered)
                assert (outcome.stream, outcome.error) == (streams.STREAM_NOTIFIER, None)
                info = await js.stream_info(streams.STREAM_NOTIFIER)
                assert info.config.num_replicas == 3 and info.state.messages == 1
                assert info.config.placement is not None and info.config.placement.tags == ["site:lab"]
                assert await ensure_streams(js, clustered) == []
                for _ in range(100):  # the two new replicas catch up from the leader
                    info = await js.stream_info(streams.STREAM_NOTIFIER)
                    if len(info.cluster.replicas or []) == 2 and all(p.current for p in info.cluster.replicas):
                        break
                    await asyncio.sleep(0.2)
                assert len(info.cluster.replicas or []) == 2

                # Back down to one replica is allowed too; a tag no server has is refused, and only that stream
                # keeps its configuration.
                outcomes = await update_streams(js, settings(stream_replicas=1, stream_placement_tags="site:lab"),
                                                only=[streams.STREAM_REGISTRY])
                assert [(o.stream, o.error) for o in outcomes] == [(streams.STREAM_REGISTRY, None)]
                assert (await js.stream_info(streams.STREAM_REGISTRY)).config.num_replicas == 1
                outcomes = await update_streams(js, settings(stream_replicas=3, stream_placement_tags="site:mars"))
                assert outcomes and all(outcome.error for outcome in outcomes)
                assert (await js.stream_info(streams.STREAM_INTAKE)).config.placement.tags == ["site:lab"]
            finally:
                await client.close()

        asyncio.run(scenario())


def ombudsdesk(nats_url: str, *arguments: str, stdin: str = "") -> Result:
    """`ombudsdesk streams ...` as staff type it (the top-level command, in this process: an interpreter's start
    importing every service takes seconds on a busy machine)."""
    from ombudsdesk.cli import app

    environment = {"OMBUDSDESK_NATS_URL": nats_url, "OMBUDSDESK_STREAM_MAX_AGE_DAYS": "400"}
    return CliRunner().invoke(app, ["streams", *arguments], input=stdin, env=environment)


def test_streams_status_shows_each_stream_and_its_differences_and_update_asks_before_applying(nats_server):
    async def prepare() -> None:
        connection = await nats.connect(nats_server.url)
        try:
            await ensure_streams(connection.jetstream(), settings())  # kept forever, as a first start made them
            await connection.jetstream().publish("ombudsdesk.registry.complaint.registered", b"{}")
        finally:
            await connection.close()

    async def max_age(name: str) -> float:
        connection = await nats.connect(nats_server.url)
        try:
            return (await connection.jetstream().stream_info(name)).config.max_age
        finally:
            await connection.close()

    asyncio.run(prepare())
    status = ombudsdesk(nats_server.url, "status")
    assert status.exit_code == 0, status.output
    registry = status.stdout.split(streams.STREAM_REGISTRY, 1)[1].split("\nOMBUDSDESK_", 1)[0]
    assert "subjects: ombudsdesk.registry.>" in registry and "replicas: 1" in registry and "messages: 1" in registry
    assert "max_age: forever (settings: 400 days, OMBUDSDESK_STREAM_MAX_AGE_DAYS)" in registry
    assert "3 stream(s) differ from the settings" in status.stdout
    assert "not created yet (intake creates it at its start)" in status.stdout  # the key-value buckets

    refused = ombudsdesk(nats_server.url, "update", stdin="n\n")
    assert refused.exit_code == 1 and "Nothing changed." in refused.stdout
    assert f"{streams.STREAM_NOTIFIER}: max_age forever -> 400 days" in refused.stdout
    assert asyncio.run(max_age(streams.STREAM_NOTIFIER)) == 0

    applied = ombudsdesk(nats_server.url, "update", "--yes")
    assert applied.exit_code == 0, applied.output
    assert f"{streams.STREAM_INTAKE}: applied max_age" in applied.stdout
    assert asyncio.run(max_age(streams.STREAM_NOTIFIER)) == 400 * 24 * 3600
    assert asyncio.run(max_age(streams.STREAM_DEAD_LETTER)) == 0
    again = ombudsdesk(nats_server.url, "status")
    assert "Every existing stream matches the settings." in again.stdout
