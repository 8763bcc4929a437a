"""Killing and partitioning NATS nodes of a `NatsCluster` on purpose, and measuring how long the cluster takes to come
back: the fault injector of `test_nats_faults.py`.

"Failover" is the time from a kill until every stream answers with a running leader (writes possible again);
"rejoin" the time from a restart until every stream again has all three replicas current.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client

from ombudsdesk.nats_cluster import ClusterNode, NatsCluster
from ombudsdesk.embedded_nats import free_port
from shared import streams

WATCHED_STREAM = streams.STREAM_INTAKE_SPOOL  # the stream every SMTP transaction writes to: its leader is "the" leader


class PartitionableCluster(NatsCluster):
    """A `NatsCluster` whose nodes can be started cut off from the others: the isolated node listens for routes on
    another port (which no peer dials) and dials ports where nothing listens, while its client port stays the same —
    the clients that reach it are on the minority side of a partition."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.isolated: set[str] = set()

    def _write_config(self, node: ClusterNode) -> None:
        if node.name not in self.isolated:
            super()._write_config(node)
            return
        real_route_port = node.route_port
        others = [(other, other.route_port) for other in self.nodes if other is not node]
        try:
            node.route_port = free_port()
            for other, _port in others:
                other.route_port = free_port()  # only in the text written now: restored below
            super()._write_config(node)
        finally:
            node.route_port = real_route_port
            for other, port in others:
                other.route_port = port


async def _quiet(_error: Exception) -> None:
    """This client's connection errors are the faults this test makes: nats-py would log each with a traceback."""


async def _quiet_event() -> None:
    """Disconnections and reconnections are the faults this test makes: nothing to report."""


def _jsz(node: ClusterNode, query: str = "") -> dict[str, object] | None:
    try:
        address = f"http://127.0.0.1:{node.monitor_port}/jsz{query}"
        with urllib.request.urlopen(address, timeout=2) as answer:  # noqa: S310 - the node's loopback monitor
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def meta_leader_seen_by(node: ClusterNode) -> str | None:
    """The meta leader as this node sees it ("" while it has none, during an election); None if it does not answer."""
    info = _jsz(node)
    if info is None:
        return None
    meta = info.get("meta_cluster") or {}
    return str(meta.get("leader") or "") if isinstance(meta, dict) else ""


def stream_leader(cluster: NatsCluster, stream: str = WATCHED_STREAM) -> str | None:
    for node in cluster.nodes:
        if not node.running:
            continue
        info = _jsz(node, "?streams=true")
        for account in (info or {}).get("account_details", []) or []:
            for detail in account.get("stream_detail", []) or []:
                if detail.get("name") == stream and (detail.get("cluster") or {}).get("leader"):
                    return str(detail["cluster"]["leader"])
    return None


@dataclass
class Fault:
    kind: str
    victims: list[str]
    led: list[str]  # what the first victim was leading when killed
    at_seconds: float
    down_seconds: float = 0.0
    failover_seconds: float | None = None
    rejoin_seconds: float | None = None
    note: str = ""


@dataclass
class NatsFaultInjector:
    """Kills nodes at seeded random moments while `keep_going()` is true, each fault once the previous one healed."""

    cluster: NatsCluster
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    election_seen: str = ""
    _client: Client | None = None

    async def __aenter__(self) -> NatsFaultInjector:
        self._client = await nats.connect(self.cluster.urls.split(","), connect_timeout=3, reconnect_time_wait=0.5,
                                          max_reconnect_attempts=-1, error_cb=_quiet, disconnected_cb=_quiet_event,
                                          reconnected_cb=_quiet_event)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._client is not None:
            await self._client.close()

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 1)

    async def _streams_state(self) -> tuple[bool, bool]:
        """(every stream has a running leader, every stream has all its replicas current)."""
        assert self._client is not None
        # A short time-out: while the meta leader is dead the request goes unanswered, and the time-out is the
        # resolution of the failover figure.
        js = self._client.jetstream(timeout=1)
        running = {node.name for node in self.cluster.nodes if node.running}
        current = True
        try:
            # Every stream: the events', the spool, and the buckets (key-value and object stores are streams too).
            infos = await js.streams_info()
        except Exception:  # noqa: BLE001 - no meta leader, no quorum, the client reconnecting: not yet
            return False, False
        for info in infos:
            cluster = info.cluster
            if cluster is None or not cluster.leader or cluster.leader not in running:
                return False, False
            replicas = cluster.replicas or []
            if len(replicas) < 2 or any(not peer.current or peer.offline for peer in replicas):
                current = False
        return True, current

    async def _wait(self, want_current: bool, timeout: float) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            led, current = await self._streams_state()
            if (current if want_current else led) and self.cluster.meta_leader():
                return round(time.monotonic() - started, 2)
            await asyncio.sleep(0.1)
        return None

    async def _restart(self, *nodes: ClusterNode) -> None:
        await asyncio.gather(*(asyncio.to_thread(self.cluster.start_node, node) for node in nodes))

    def _leaders(self) -> tuple[str | None, str | None]:
        return self.cluster.meta_leader(), stream_leader(self.cluster)

    def _led_by(self, name: str) -> list[str]:
        meta, stream = self._leaders()
        return [role for role, leader in (("meta leader", meta), (f"{WATCHED_STREAM} leader", stream))
                if leader == name]

    async def kill_one(self, kind: str) -> Fault:
        """`follower`, `meta leader`, `stream leader` or `any`: SIGKILL, wait for failover, restart, wait for rejoin."""
        meta, stream = self._leaders()
        by_name = {node.name: node for node in self.cluster.nodes}
        if kind == "meta leader" and meta:
            victim = by_name[meta]
        elif kind == "stream leader" and stream:
            victim = by_name[stream]
        elif kind == "follower":
            followers = [node for node in self.cluster.nodes if node.name not in (meta, stream)]
            victim = self.rng.choice(followers or self.cluster.nodes)
        else:
            victim = self.rng.choice(self.cluster.nodes)
        fault = Fault(kind, [victim.name], self._led_by(victim.name), self._now())
        down = self.rng.uniform(1.0, 4.0)
        killed = time.monotonic()
        await asyncio.to_thread(self.cluster.kill_node, victim)
        fault.failover_seconds = await self._wait(want_current=False, timeout=30)
        await asyncio.sleep(max(0.0, down - (time.monotonic() - killed)))
        fault.down_seconds = round(time.monotonic() - killed, 2)
        restarted = time.monotonic()
        await self._restart(victim)
        fault.rejoin_seconds = await self._wait(want_current=True, timeout=90)
        if fault.rejoin_seconds is not None:
            fault.rejoin_seconds = round(time.monotonic() - restarted, 2)
        self.faults.append(fault)
        return fault

    async def kill_during_election(self) -> Fault:
        """Kill the meta leader, then a second node right after (0.2-1 s, sooner if a survivor already campaigns),
        before the survivors have elected a new leader: the election cannot complete, the cluster has no quorum for
        a moment; restart both promptly. `note` says what the survivors reported at the second kill."""
        meta = self.cluster.wait_for_meta_leader(30)
        first = self.cluster.node(meta)
        fault = Fault("during election", [first.name], self._led_by(first.name), self._now())
        killed = time.monotonic()
        await asyncio.to_thread(self.cluster.kill_node, first)
        survivors = [node for node in self.cluster.nodes if node.running]
        wait = self.rng.uniform(0.2, 1.0)
        seen: list[str | None] = []
        while time.monotonic() - killed < wait:
            seen = [meta_leader_seen_by(node) for node in survivors]
            if "" in seen:  # a survivor lost its leader and campaigns: the election runs
                break
            await asyncio.sleep(0.02)
        if "" in seen:
            self.election_seen = "election running (a survivor reported no leader)"
        elif any(view and view != meta for view in seen):
            self.election_seen = "new leader already elected"
        else:
            self.election_seen = "no leader elected yet (the survivors still named the dead one)"
        second = self.rng.choice(survivors)
        await asyncio.to_thread(self.cluster.kill_node, second)
        fault.victims.append(second.name)
        fault.note = f"second kill {time.monotonic() - killed:.2f}s after the first; {self.election_seen}"
        await asyncio.sleep(self.rng.uniform(1.0, 2.0))
        fault.down_seconds = round(time.monotonic() - killed, 2)
        restarted = time.monotonic()
        await self._restart(first, second)
        fault.failover_seconds = fault.rejoin_seconds = None
        rejoin = await self._wait(want_current=True, timeout=90)
        if rejoin is not None:
            fault.rejoin_seconds = round(time.monotonic() - restarted, 2)
            fault.failover_seconds = round(time.monotonic() - killed, 2)  # no quorum until the restart: kill → back
        self.faults.append(fault)
        return fault

    async def partition(self, cluster: PartitionableCluster, kind: str, seconds: float) -> Fault:
        """Cut one node off (restarted with its routes pointing nowhere, clients still admitted), then heal it."""
        meta, stream = self._leaders()
        by_name = {node.name: node for node in cluster.nodes}
        victim = by_name[stream] if kind == "stream leader" and stream else self.rng.choice(cluster.nodes)
        fault = Fault(f"partition of the {kind}", [victim.name], self._led_by(victim.name), self._now())
        cut = time.monotonic()
        await asyncio.to_thread(cluster.kill_node, victim)
        cluster.isolated.add(victim.name)
        await asyncio.to_thread(cluster._launch, victim)  # its client port opens only with routes: do not await it
        fault.failover_seconds = await self._wait(want_current=False, timeout=30)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - cut)))
        isolated_view = meta_leader_seen_by(victim)
        fault.note = f"the isolated node saw meta leader {isolated_view!r} before healing"
        fault.down_seconds = round(time.monotonic() - cut, 2)
        await asyncio.to_thread(cluster.kill_node, victim)
        cluster.isolated.discard(victim.name)
        healed = time.monotonic()
        await self._restart(victim)
        rejoin = await self._wait(want_current=True, timeout=90)
        fault.rejoin_seconds = round(time.monotonic() - healed, 2) if rejoin is not None else None
        self.faults.append(fault)
        return fault

    def figures(self) -> list[dict[str, object]]:
        return [fault.__dict__ for fault in self.faults]
