"""End-to-end benchmark: complaints per second from SMTP to acknowledgment, on the layout `make run` starts.

    .venv/bin/python bench/e2e/bench_e2e.py [--backend sqlite] [--backend postgres] [--layout single]
        [--layout cluster] [--messages 2000] [--clients 4] [--paced-rate 50] [--paced-seconds 20]
        [--memory-messages 0] [--profile FOLDER]

What a new user would measure: the stack started exactly as `make run` starts it (`python -m ombudsdesk run`: embedded
NATS from the wheel, the mail catcher, the three services as child processes; SQLite files, or PostgreSQL databases
with `--backend postgres`), `--clients` SMTP connections sending `--messages` ordinary ~1.3 KB complaints, each from
its own citizen (so that no per-recipient acknowledgment limit applies), and each counted when its acknowledgment
file appears in `var/outbox/` (the file's modification time; the acknowledgment's In-Reply-To names the complaint).

`--layout cluster` (PostgreSQL only) starts `python -m ombudsdesk run --cluster` instead: three NATS servers as one
JetStream cluster, every stream with three replicas, two instances of each service; the SMTP connections are spread
over the two intakes, and the bare JetStream loop publishes into a three-replica stream of a three-node cluster.

- **burst**: everything sent as fast as the connections go; complaints/s = messages / (last acknowledgment − first
  send); latency per complaint = acknowledgment file time − the moment its SMTP DATA was answered.
- **paced**: `--paced-rate` mails per second for `--paced-seconds`; latency percentiles (goal: p99 < 500 ms at 50/s).
- **raw limits measured in the same run**, so that the figures mean something on whatever machine runs this: a bare
  aiosmtpd sink (mails/s over the same connections), a bare JetStream publish loop (one stream, publish and wait for
  each acknowledgment, and the same pipelined), a bare insert loop (one row per transaction, committed, on the
  backend).
- **memory**: the RSS of each process at the end (with `--memory-messages N`, after N more complaints, to show that
  nothing grows per complaint).

Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ombudsdesk.embedded_nats import EmbeddedNats, free_port, is_listening, port_is_free  # noqa: E402
from ombudsdesk.nats_cluster import NatsCluster  # noqa: E402

COMPLAINTS = "plaintes@ombudsdesk.localhost"
BODY = ("Madame, Monsieur,\n\nJe vous écris au sujet de la facture d'eau reçue le 3 novembre, dont le montant ne "
        "correspond pas à ma consommation réelle. J'ai appelé le service clientèle à deux reprises sans réponse.\n"
        ) * 5 + "\nJe vous remercie de votre aide.\nJeanne Dupont\n"
POSTGRES_ADMIN_URL = os.environ.get("OMBUDSDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.default)


def complaint(run: str, index: int) -> tuple[str, bytes]:
    """One ordinary complaint from its own citizen; (its Message-ID, its bytes)."""
    message_id = f"<{run}.{index}@bench.example.org>"
    mail = EmailMessage()
    mail["From"] = f"Citoyen {index} <citoyen.{run}.{index}@example.org>"
    mail["To"] = COMPLAINTS
    mail["Subject"] = f"Plainte : facture d'eau contestée ({index})"
    mail["Message-ID"] = message_id
    mail["Date"] = formatdate(localtime=True)
    mail.set_content(BODY)
    return message_id, mail.as_bytes(policy=SMTP_POLICY)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


# ---------------------------------------------------------------------------------------------------- the stack


def free_pair() -> int:
    """A free port whose next one is free too (the second instance's, `--layout cluster`)."""
    while True:
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port


class Stack:
    """`python -m ombudsdesk run` (or `run --cluster`) in a folder of its own, on free ports."""

    def __init__(self, folder: Path, backend: str, layout: str = "single") -> None:
        self.folder = folder
        self.layout = layout
        self.var_dir = folder / "var"
        self.outbox = self.var_dir / "outbox"
        first = free_pair() if layout == "cluster" else free_port()
        # The second instance of each service takes each port + 1 (ombudsdesk.cluster_launcher.instance_ports).
        self.smtp_ports = [first, first + 1] if layout == "cluster" else [first]
        self.environment = {
            **os.environ,
            "OMBUDSDESK_VAR_DIR": str(self.var_dir),
            "OMBUDSDESK_EMBEDDED_NATS_PORT": str(free_port()),
            "OMBUDSDESK_CLUSTER_NATS_PORTS": ",".join(str(free_port()) for _ in range(3)),
            "OMBUDSDESK_MAILCATCHER_PORT": str(free_port()),
            "OMBUDSDESK_SMTP_PORT": str(first),
            "OMBUDSDESK_INTAKE_HEALTH_PORT": str(free_pair()),
            "OMBUDSDESK_REGISTRY_API_PORT": str(free_pair()),
            "OMBUDSDESK_NOTIFIER_HEALTH_PORT": str(free_pair()),
            "OMBUDSDESK_LOG_LEVEL": "WARNING",
        }
        self.environment.pop("OMBUDSDESK_NATS_URL", None)
        self.environment.pop("OMBUDSDESK_STREAM_REPLICAS", None)
        self.databases: list[str] = []
        if backend == "postgres":
            for service in ("REGISTRY", "NOTIFIER"):
                name = f"ombudsdesk_bench_{uuid.uuid4().hex[:10]}"
                postgres_admin(f'CREATE DATABASE "{name}"')
                self.databases.append(name)
                self.environment[f"OMBUDSDESK_{service}_DATABASE_URL"] = postgres_url(name)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["run", "--cluster"] if self.layout == "cluster" else ["run"]
        self.process = subprocess.Popen([sys.executable, "-m", "ombudsdesk", *command], cwd=self.folder,
                                        env=self.environment, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 240
        while not all(is_listening(port, "127.0.0.1") for port in self.smtp_ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the stack did not start (see its output above)")
            time.sleep(0.2)

    def acknowledged(self) -> dict[str, float]:
        """Message-ID of the complaint each acknowledgment answers -> the time its file was written."""
        answered: dict[str, float] = {}
        for entry in os.scandir(self.outbox) if self.outbox.exists() else ():
            if not entry.name.endswith(".eml"):
                continue
            with open(entry.path, "rb") as handle:
                headers = HEADER_PARSER.parse(handle)
            if str(headers.get("Auto-Submitted", "")) == "auto-replied" and headers.get("In-Reply-To"):
                answered[str(headers["In-Reply-To"]).strip()] = entry.stat().st_mtime
        return answered

    def wait_for(self, message_ids: set[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            count = sum(1 for entry in os.scandir(self.outbox) if entry.name.endswith(".eml")) \
                if self.outbox.exists() else 0
            if count >= len(message_ids) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        answered = self.acknowledged()
        missing = message_ids - answered.keys()
        while missing and time.monotonic() < deadline:
            time.sleep(0.2)
            answered = self.acknowledged()
            missing = message_ids - answered.keys()
        return {message_id: answered[message_id] for message_id in message_ids if message_id in answered}

    def processes(self) -> dict[str, int]:
        """The launcher, its NATS server(s) and its services: name -> pid (from /proc); with several of a kind,
        numbered in the order they were started (intake-1, intake-2, nats-1...)."""
        assert self.process is not None
        children: list[tuple[int, str]] = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            if parent != self.process.pid:
                continue
            for name in ("intake", "registry", "notifier"):
                if f"services.{name}" in command:
                    children.append((int(entry.name), name))
            if "nats-server" in command:
                children.append((int(entry.name), "nats"))
        found = {"launcher": self.process.pid}
        kinds = Counter(name for _pid, name in children)
        seen: Counter[str] = Counter()
        for pid, name in sorted(children):
            seen[name] += 1
            found[name if kinds[name] == 1 else f"{name}-{seen[name]}"] = pid
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for name in self.databases:
            postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url(database: str) -> str:
    from sqlalchemy import make_url

    return make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database).render_as_string(
        hide_password=False)


def postgres_admin(sql: str) -> None:
    import asyncpg

    async def execute() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute())


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------------- sending


# Mails sent in one SMTP session (three commands each) before a new one: below intake's limit of commands per
# session (`OMBUDSDESK_SMTP_MAX_COMMANDS`, 2,000 by default), which closes a longer session with a 421.
MAILS_PER_SESSION = 500


def send_burst(ports: list[int], mails: list[tuple[str, bytes]], clients: int) -> tuple[float, dict[str, float]]:
    """Every mail over `clients` connections at once, spread over `ports` (one intake each); (the time the first was
    sent, Message-ID -> time of its 250)."""
    answered: dict[str, float] = {}
    lock = threading.Lock()
    started = time.time()

    def work(share: list[tuple[str, bytes]], port: int) -> None:
        # A new session every MAILS_PER_SESSION mails: intake closes a session after its command limit (421).
        for first in range(0, len(share), MAILS_PER_SESSION):
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                for message_id, raw in share[first:first + MAILS_PER_SESSION]:
                    client.sendmail(f"sender{len(share)}@example.org", [COMPLAINTS], raw)
                    with lock:
                        answered[message_id] = time.time()

    threads = [threading.Thread(target=work, args=(mails[index::clients], ports[index % len(ports)]))
               for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started, answered


def send_paced(ports: list[int], mails: list[tuple[str, bytes]], rate: float, clients: int) -> dict[str, float]:
    """`rate` mails per second, each at its own moment, over `clients` connections spread over `ports` (a
    connection late for its slot sends at once); Message-ID -> time of its 250."""
    answered: dict[str, float] = {}
    lock = threading.Lock()
    start = time.time() + 0.5

    def work(offset: int) -> None:
        with smtplib.SMTP("127.0.0.1", ports[offset % len(ports)], timeout=120) as client:
            for index in range(offset, len(mails), clients):
                delay = start + index / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                message_id, raw = mails[index]
                client.sendmail("sender@example.org", [COMPLAINTS], raw)
                with lock:
                    answered[message_id] = time.time()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered


# ---------------------------------------------------------------------------------------------------- raw limits


def bare_sink_rate(mails: list[tuple[str, bytes]], clients: int) -> float:
    port = free_port()
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench/intake/bare_sink.py"), str(port)])
    try:
        while not is_listening(port, "127.0.0.1"):
            time.sleep(0.05)
        started, answered = send_burst([port], mails, clients)
        return len(answered) / (max(answered.values()) - started)
    finally:
        sink.terminate()
        sink.wait()


def bare_jetstream_rates(folder: Path, count: int, layout: str = "single") -> tuple[float, float]:
    """Publishes of a ~1.3 KB payload into a file-stored stream: one at a time (wait for each ack), and pipelined;
    with `layout` cluster, into a three-replica stream of a three-node cluster."""
    import nats

    server: EmbeddedNats | NatsCluster
    if layout == "cluster":
        server = NatsCluster(folder / "bare-cluster")
        urls, replicas = server.urls.split(","), 3
    else:
        server = EmbeddedNats(folder / "bare-nats", port=free_port(), log_file=folder / "bare-nats.log")
        urls, replicas = [server.url], 1
    server.start()

    async def measure() -> tuple[float, float]:
        connection = await nats.connect(urls)
        js = connection.jetstream(timeout=30)
        for attempt in range(60):  # a cluster that just formed may refuse a replicated stream for a moment
            try:
                await js.add_stream(name="BENCH", subjects=["bench.>"], num_replicas=replicas)
                break
            except nats.errors.Error:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        await js.publish("bench.warm", b"")  # the stream's own leader elected
        payload = BODY.encode()[:1300]
        started = time.perf_counter()
        for index in range(count):
            await js.publish("bench.one", payload, headers={"Nats-Msg-Id": f"one-{index}"})
        sequential = count / (time.perf_counter() - started)
        started = time.perf_counter()
        acks = [await js.publish_async("bench.many", payload, headers={"Nats-Msg-Id": f"many-{index}"})
                for index in range(count)]
        await asyncio.gather(*acks)
        pipelined = count / (time.perf_counter() - started)
        await connection.close()
        return sequential, pipelined

    try:
        return asyncio.run(measure())
    finally:
        server.stop()


def bare_insert_rate(backend: str, folder: Path, count: int) -> float:
    """One ~1.3 KB row per committed transaction, as a registry that commits each complaint would at the least."""
    text = BODY[:1300]
    if backend == "sqlite":
        connection = sqlite3.connect(folder / "bare.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, text TEXT)")
        started = time.perf_counter()
        for _ in range(count):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO rows (text) VALUES (?)", (text,))
            connection.execute("COMMIT")
        rate = count / (time.perf_counter() - started)
        connection.close()
        return rate
    import asyncpg

    name = f"ombudsdesk_bench_{uuid.uuid4().hex[:10]}"
    postgres_admin(f'CREATE DATABASE "{name}"')

    async def measure() -> float:
        connection = await asyncpg.connect(postgres_url(name).replace("+asyncpg", ""))
        await connection.execute("CREATE TABLE rows (id bigserial PRIMARY KEY, text text)")
        started = time.perf_counter()
        for _ in range(count):
            async with connection.transaction():
                await connection.execute("INSERT INTO rows (text) VALUES ($1)", text)
        rate = count / (time.perf_counter() - started)
        await connection.close()
        return rate

    try:
        return asyncio.run(measure())
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------------- profiles


def start_profilers(pids: dict[str, int], folder: Path, backend: str) -> list[subprocess.Popen[bytes]]:
    """py-spy (sampling, from outside the process) on each of our processes during the burst — the three services and
    the launcher, where `make run`'s mail catcher runs: one profile each in `folder`, in speedscope's format (open it
    at speedscope.app or with `py-spy`'s own viewer). NATS is a Go program: not sampled."""
    folder.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    return [subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--rate", "200", "--format", "speedscope",
                              "--output", str(folder / f"{backend}-{name}.speedscope.json"), "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # In the cluster layout the names are numbered: intake-1, registry-2...
            for name, pid in pids.items() if name.split("-")[0] in ("intake", "registry", "notifier", "launcher")]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on Ctrl-C
    for profiler in profilers:
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()


# ---------------------------------------------------------------------------------------------------- the run


def latency_line(name: str, latencies: list[float]) -> str:
    milliseconds = [value * 1000 for value in latencies]
    return (f"{name:<34} p50 {percentile(milliseconds, .5):8.0f} ms   p90 {percentile(milliseconds, .9):8.0f} ms   "
            f"p99 {percentile(milliseconds, .99):8.0f} ms   max {max(milliseconds):8.0f} ms")


def run_backend(backend: str, args: argparse.Namespace, layout: str = "single") -> None:
    if layout == "cluster":
        print(f"\n== {backend}, cluster layout: `ombudsdesk run --cluster` (3 NATS servers, streams with 3 replicas, "
              "2 instances of each service) ==", flush=True)
    else:
        print(f"\n== {backend}: the stack as `make run` starts it ==", flush=True)
    with tempfile.TemporaryDirectory(prefix="ombudsdesk-e2e-") as name:
        folder = Path(name)
        run = uuid.uuid4().hex[:8]
        stack = Stack(folder, backend, layout)
        stack.start()
        try:
            warm = [complaint(f"{run}w", index) for index in range(20)]
            send_burst(stack.smtp_ports, warm, len(stack.smtp_ports))
            if len(stack.wait_for({message_id for message_id, _ in warm}, 120)) < len(warm):
                raise SystemExit("warm-up complaints were not acknowledged within 120 s")
            pids = stack.processes()
            cpu_before = {process: cpu_seconds(pid) for process, pid in pids.items()}

            mails = [complaint(run, index) for index in range(args.messages)]
            profilers = start_profilers(pids, args.profile, backend) if args.profile else []
            started, sent = send_burst(stack.smtp_ports, mails, args.clients)
            acknowledged = stack.wait_for(set(sent), args.timeout)
            done = max(acknowledged.values()) if acknowledged else time.time()
            cpu_used = {process: cpu_seconds(pid) - cpu_before[process] for process, pid in pids.items()}
            stop_profilers(profilers)
            rate = len(acknowledged) / (done - started)
            smtp_rate = len(sent) / (max(sent.values()) - started)
            print(f"burst: {len(acknowledged)}/{len(mails)} acknowledged over {args.clients} connections: "
                  f"{rate:.1f} complaints/s end to end (SMTP accepted {smtp_rate:.0f} mails/s)")
            print(latency_line("  send -> acknowledgment", [acknowledged[m] - sent[m] for m in acknowledged]))
            print("  CPU per complaint: " + ", ".join(
                f"{process} {cpu_used[process] / max(1, len(acknowledged)) * 1000:.2f} ms" for process in cpu_used))

            paced_mails = [complaint(f"{run}p", index) for index in range(int(args.paced_rate * args.paced_seconds))]
            if paced_mails:
                sent = send_paced(stack.smtp_ports, paced_mails, args.paced_rate, args.clients)
                acknowledged = stack.wait_for(set(sent), args.timeout)
                print(f"paced at {args.paced_rate:g}/s for {args.paced_seconds:g} s: "
                      f"{len(acknowledged)}/{len(paced_mails)} acknowledged")
                print(latency_line("  send -> acknowledgment", [acknowledged[m] - sent[m] for m in acknowledged]))

            def print_rss(total: int) -> None:
                print(f"RSS after {total} complaints: " + ", ".join(
                    f"{process} {rss_mib(pid):.0f} MiB" for process, pid in pids.items()), flush=True)

            if args.memory_messages:
                # The same RSS before and after N more complaints: what grows per complaint shows as the difference.
                print_rss(args.messages + len(paced_mails) + len(warm))
                more = [complaint(f"{run}m", index) for index in range(args.memory_messages)]
                _, sent = send_burst(stack.smtp_ports, more, args.clients)
                acknowledged = stack.wait_for(set(sent), max(args.timeout, args.memory_messages / 10))
                print(f"memory phase: {len(acknowledged)}/{len(more)} acknowledged")
            print_rss(args.messages + len(paced_mails) + args.memory_messages + len(warm))
        finally:
            stack.stop()

        print("raw limits measured in the same run:")
        sink = bare_sink_rate([complaint(f"{run}s", index) for index in range(args.messages)], args.clients)
        print(f"  bare aiosmtpd sink: {sink:.0f} mails/s over {args.clients} connections")
        sequential, pipelined = bare_jetstream_rates(folder, args.raw_count, layout)
        where = "a three-replica stream on three nodes" if layout == "cluster" else "one server"
        print(f"  bare JetStream publish (file storage, {where}): {sequential:.0f}/s one at a time, "
              f"{pipelined:.0f}/s pipelined")
        inserts = bare_insert_rate(backend, folder, args.raw_count)
        print(f"  bare insert loop ({backend}, one committed transaction per row): {inserts:.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--layout", action="append", choices=["single", "cluster"],
                        help="single (`make run`, the default) and/or cluster (`run --cluster`, PostgreSQL only)")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--paced-rate", type=float, default=50.0)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--memory-messages", type=int, default=0)
    parser.add_argument("--raw-count", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=600.0, help="longest wait for the acknowledgments of a phase")
    parser.add_argument("--profile", type=Path, help="record a py-spy profile of each service during the burst here")
    args = parser.parse_args()
    print(f"ombudsdesk end-to-end benchmark — {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)
    layouts = args.layout or ["single"]
    if "cluster" in layouts and "sqlite" in (args.backend or ["sqlite"]):
        parser.error("--layout cluster runs on PostgreSQL only (--backend postgres)")
    for backend in args.backend or ["sqlite"]:
        for layout in layouts:
            run_backend(backend, args, layout)
    print(f"load average at the end {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
