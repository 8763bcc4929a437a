"""A local SMTP sink for the benchmark, run as its own process (`python -m bench.notifier.sink PORT`) so that it does
not share an interpreter lock with what it measures. Prints `<case number> <arrival unix time>` per mail."""

from __future__ import annotations

import email.policy
import signal
import sys
import threading
import time
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller

HEADERS = BytesHeaderParser(policy=email.policy.default)


class TimingHandler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        arrived = time.time()
        # The subject may be in RFC 2047 encoded words ("=?utf-8?q?=5BMED-2026-00001=5D_Accus=C3=A9...").
        subject = str(HEADERS.parsebytes(envelope.content)["Subject"] or "")
        if subject.startswith("["):
            print(subject[1:].split("]", 1)[0], f"{arrived:.6f}", flush=True)
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
