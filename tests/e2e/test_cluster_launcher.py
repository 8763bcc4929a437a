"""`ombudsdesk run --cluster` as an operator meets it (issue 14): three NATS servers as one JetStream cluster, two
instances of each service against PostgreSQL. Complaints sent to either intake are each registered once, with
gap-free numbers, and acknowledged once, even the same mail sent to both intakes; streams have three replicas;
Ctrl-C stops every process cleanly. Without PostgreSQL it refuses to start and says which variable to set."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import asyncpg
import nats
import pytest

from ombudsdesk.cluster_launcher import instance_ports
from ombudsdesk.embedded_nats import free_port, port_is_free
from shared import streams
from tests.e2e.stack import complaint_mail, send_mail
from tests.e2e.test_local_stack import wait_for_line

ROOT = Path(__file__).resolve().parents[2]


def test_each_instance_gets_its_own_ports_and_a_disabled_endpoint_stays_disabled():
    first = {"OMBUDSDESK_SMTP_PORT": 2525, "OMBUDSDESK_INTAKE_HEALTH_PORT": 2580,
             "OMBUDSDESK_REGISTRY_API_PORT": 8470, "OMBUDSDESK_NOTIFIER_HEALTH_PORT": 2581}
    one, two = instance_ports(first, 2, reserved={1025, 14222})
    assert one == first
    assert two["OMBUDSDESK_SMTP_PORT"] == 2526 and two["OMBUDSDESK_REGISTRY_API_PORT"] == 8471
    # 2581 is the first notifier's: the second intake's health moves on, and the second notifier's after it.
    every = [*one.values(), *two.values()]
    assert len(every) == len(set(every))
    assert {two["OMBUDSDESK_INTAKE_HEALTH_PORT"], two["OMBUDSDESK_NOTIFIER_HEALTH_PORT"]} == {2582, 2583}
    [_, second] = instance_ports({**first, "OMBUDSDESK_INTAKE_HEALTH_PORT": 0}, 2, reserved={2526})
    assert second["OMBUDSDESK_INTAKE_HEALTH_PORT"] == 0 and second["OMBUDSDESK_SMTP_PORT"] == 2527


def free_pair() -> int:
    """A free port whose next one is free too (the second instance's)."""
    for _ in range(200):
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port
    raise AssertionError("no two neighbouring free ports")


def cluster_environment(tmp_path: Path, **databases: str) -> tuple[dict[str, str], dict[str, int]]:
    ports = {"smtp": free_pair(), "intake_health": free_pair(), "api": free_pair(), "notifier_health": free_pair(),
             "public_web": free_pair()}
    environment = {
        **os.environ,
        "OMBUDSDESK_VAR_DIR": str(tmp_path / "var"),
        "OMBUDSDESK_CLUSTER_NATS_PORTS": ",".join(str(free_port()) for _ in range(3)),
        "OMBUDSDESK_MAILCATCHER_PORT": str(free_port()),
        "OMBUDSDESK_SMTP_PORT": str(ports["smtp"]),
        "OMBUDSDESK_INTAKE_HEALTH_PORT": str(ports["intake_health"]),
        "OMBUDSDESK_REGISTRY_API_PORT": str(ports["api"]),
        "OMBUDSDESK_NOTIFIER_HEALTH_PORT": str(ports["notifier_health"]),
        "OMBUDSDESK_PUBLIC_WEB_PORT": str(ports["public_web"]),
        "PYTHONUNBUFFERED": "1",
        **databases,
    }
    for inherited in ("OMBUDSDESK_NATS_URL", "OMBUDSDESK_STREAM_REPLICAS", "OMBUDSDESK_REGISTRY_DATABASE_URL",
                      "OMBUDSDESK_NOTIFIER_DATABASE_URL"):
        if inherited not in databases:
            environment.pop(inherited, None)
    return environment, ports


def acknowledgments(outbox: Path) -> Counter[str]:
    """How many acknowledgments answer each complaint (by the Message-ID their In-Reply-To names)."""
    answered: Counter[str] = Counter()
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if mail["In-Reply-To"]:
            answered[str(mail["In-Reply-To"]).strip()] += 1
    return answered


def registered(database_url: str) -> list[tuple[str, int]]:
    async def query() -> list[tuple[str, int]]:
        connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            rows = await connection.fetch("SELECT number, sequence FROM complaints ORDER BY sequence")
            return [(row["number"], row["sequence"]) for row in rows]
        finally:
            await connection.close()

    return asyncio.run(query())


def stream_replicas(nats_urls: str) -> dict[str, int]:
    async def query() -> dict[str, int]:
        client = await nats.connect(nats_urls.split(","), connect_timeout=2)
        try:
            js = client.jetstream(timeout=10)
            return {name: (await js.stream_info(name)).config.num_replicas
                    for name in (streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER,
                                 streams.STREAM_DEAD_LETTER, streams.STREAM_INTAKE_SPOOL)}
        finally:
            await client.close()

    return asyncio.run(query())


@pytest.mark.slow
def test_run_cluster_registers_each_complaint_once_with_gap_free_numbers_and_stops_cleanly(
        tmp_path: Path, postgres_database_factory: Callable[[], str]):
    registry_url, notifier_url = postgres_database_factory(), postgres_database_factory()
    environment, ports = cluster_environment(tmp_path, OMBUDSDESK_REGISTRY_DATABASE_URL=registry_url,
                                             OMBUDSDESK_NOTIFIER_DATABASE_URL=notifier_url)
    nats_urls = ",".join(f"nats://127.0.0.1:{port}" for port in environment["OMBUDSDESK_CLUSTER_NATS_PORTS"].split(","))
    intakes = [ports["smtp"], ports["smtp"] + 1]
    launcher = subprocess.Popen([sys.executable, "-m", "ombudsdesk", "run", "--cluster"], env=environment,
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    output = ""
    try:
        output = "".join(wait_for_line(launcher, "Stop with Ctrl-C", timeout=240))
        banner = output[output.index("ombudsdesk is running as a cluster"):]
        for port in environment["OMBUDSDESK_CLUSTER_NATS_PORTS"].split(","):
            assert f"nats://127.0.0.1:{port}" in banner
        for port in intakes:
            assert f"intake SMTP 127.0.0.1:{port}" in banner
        assert f"http://127.0.0.1:{ports['api'] + 1}/backoffice/" in banner
        for port in (ports["public_web"], ports["public_web"] + 1):  # each instance serves the public form
            assert f"public complaint form http://127.0.0.1:{port}/" in banner
        assert "/backoffice/welcome/" in banner  # a first start: the administrator's one-time link

        mails = [complaint_mail(f"Citoyen {index} <citoyen.{index}@example.org>", f"Plainte {index}",
                                "Bonjour, ma facture d'eau est fausse.", message_id=f"<cluster.{index}@example.org>")
                 for index in range(6)]
        for index, mail in enumerate(mails):
            send_mail(intakes[index % 2], mail)
        send_mail(intakes[1], mails[0])  # the same mail again, to the other intake: still one complaint
        expected = {str(mail["Message-ID"]) for mail in mails}

        deadline = time.monotonic() + 120
        while set(acknowledgments(tmp_path / "var" / "outbox")) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # a duplicate acknowledgment would come right behind the first
        answered = acknowledgments(tmp_path / "var" / "outbox")
        assert answered == Counter({message_id: 1 for message_id in expected})

        numbers = registered(registry_url)
        assert [sequence for _number, sequence in numbers] == [1, 2, 3, 4, 5, 6]
        assert len({number for number, _sequence in numbers}) == 6
        assert stream_replicas(nats_urls) == {name: 3 for name in (
            streams.STREAM_INTAKE, streams.STREAM_REGISTRY, streams.STREAM_NOTIFIER, streams.STREAM_DEAD_LETTER,
            streams.STREAM_INTAKE_SPOOL)}
    finally:
        os.killpg(launcher.pid, signal.SIGINT)
        rest, _ = launcher.communicate(timeout=120)
        output += rest
    assert launcher.returncode == 0, output[-5000:]
    assert "Traceback" not in output, output[-5000:]
    assert output.count("service.stopped") == 6, output[-5000:]
    assert "streams.configuration_differs" not in output


@pytest.mark.slow
def test_run_cluster_without_postgresql_says_which_setting_is_missing(tmp_path: Path):
    environment, _ports = cluster_environment(
        tmp_path, OMBUDSDESK_REGISTRY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    result = subprocess.run([sys.executable, "-m", "ombudsdesk", "run", "--cluster"], env=environment, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "OMBUDSDESK_REGISTRY_DATABASE_URL is sqlite, not PostgreSQL" in result.stderr
    assert "OMBUDSDESK_NOTIFIER_DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var" / "cluster").exists()  # refused before anything started
