"""The three-node cluster harness (`ombudsdesk.nats_cluster`): real nats-server processes forming one JetStream
cluster, a replicated stream that keeps taking writes while one node is killed, and a meta leader elected again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from ombudsdesk.nats_cluster import NatsCluster
from shared.stream_admin import patiently

pytestmark = pytest.mark.slow


def test_a_replicated_stream_survives_the_death_of_its_leader(tmp_path: Path) -> None:
    with NatsCluster(tmp_path / "cluster") as cluster:
        assert cluster.meta_leader() in {node.name for node in cluster.nodes}

        async def publish(count: int) -> tuple[int, str, list[str]]:
            client = await nats.connect(cluster.urls.split(","), connect_timeout=2, reconnect_time_wait=0.2)
            try:
                js = client.jetstream(timeout=10)
                # As the services do (`stream_admin.patiently`): just after the election the leader may not have
                # every server's statistics yet and refuses an R3 placement ("peer offline") for a moment.
                await patiently(lambda: js.add_stream(StreamConfig(name="PROBE", subjects=["probe.>"],
                                                                   num_replicas=3)))
                for index in range(count):
                    await js.publish("probe.x", str(index).encode())
                info = await js.stream_info("PROBE")
                replicas = [peer.name for peer in info.cluster.replicas or []]
                return info.state.messages, info.cluster.leader, replicas
            finally:
                await client.close()

        messages, leader, replicas = asyncio.run(publish(20))
        assert messages == 20
        assert sorted([leader, *replicas]) == ["nats-1", "nats-2", "nats-3"]

        cluster.kill_node(cluster.node(leader))
        assert not cluster.node(leader).running
        new_meta_leader = cluster.wait_for_meta_leader(timeout=30)
        assert cluster.node(new_meta_leader).running

        async def publish_more() -> tuple[int, str]:
            client = await nats.connect([node.url for node in cluster.nodes if node.running], connect_timeout=2)
            try:
                js = client.jetstream(timeout=10)
                for attempt in range(100):  # the stream's own election takes a few seconds after the kill
                    try:
                        await js.publish("probe.x", b"after")
                        break
                    except (TimeoutError, nats.errors.Error):
                        await asyncio.sleep(0.2)
                else:
                    raise AssertionError("the stream took no write after its leader died")
                info = await js.stream_info("PROBE")
                return info.state.messages, info.cluster.leader
            finally:
                await client.close()

        messages, new_leader = asyncio.run(publish_more())
        assert messages == 21
        assert new_leader != leader

        cluster.start_node(cluster.node(leader))
        assert cluster.node(leader).running
