"""A local SMTP sink for the benchmark, run as its own process (`python -m bench.notifier.sink PORT`) so that it does
not share an interpreter lock with what it measures. Prints `<case number> <arrival unix time>` per mail."""

from __future__ import annotations

import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class TimingHandler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        arrived = time.time()
        for line in envelope.content.split(b"\r\n", 40):
            if line.startswith(b"Subject: ["):
                print(line[10:].split(b"]", 1)[0].decode(), f"{arrived:.6f}", flush=True)
                break
        return "250 OK"


def main() -> None:
    controller = Controller(TimingHandler(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
