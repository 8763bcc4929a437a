"""Helpers of the observability tests (issue 14): read a service's probes over real HTTP and its metrics as
Prometheus parses them."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# Suffixes of the series a family exposes (prometheus-client 0.2x), by type.
_SERIES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
           "gauge": ("",), "summary": ("_count", "_sum", "_created"), "info": ("_info",), "untyped": ("",)}


def http_get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET; an error status is an answer too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


async def probe(base: str, path: str) -> tuple[int, dict[str, Any]]:
    status, _type, body = await asyncio.to_thread(http_get, f"{base}{path}")
    return status, json.loads(body)


async def scrape(base: str) -> str:
    status, content_type, body = await asyncio.to_thread(http_get, f"{base}/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    return body.decode()


def series_names(exposition: str) -> set[str]:
    """Every series name the exposition declares, from its families (also those with no sample yet)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in _SERIES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the series `name` with exactly these labels (None when absent)."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


async def eventually(read: Callable[[], Awaitable[Any]], accept: Callable[[Any], bool], timeout: float = 30.0,
                     every: float = 0.2) -> Any:
    """`read()` again until `accept` takes its value; AssertionError with the last value after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if accept(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(every)


async def readiness_through_a_nats_outage(base: str, nats_server: Any,
                                          while_down: Callable[[], Awaitable[None]] | None = None) -> dict[str, Any]:
    """Stop NATS, wait for `/ready` to answer 503 (liveness staying 200), run `while_down`, start NATS again and wait
    for 200; the 503 answer's body. Bounded: 30 s for each turn, 60 s for the reconnection."""
    nats_server.stop()
    try:
        _status, not_ready = await eventually(lambda: probe(base, "/ready"), lambda answer: answer[0] == 503)
        assert (await probe(base, "/health"))[0] == 200  # not dead: a restart would not bring NATS back
        if while_down is not None:
            await while_down()
    finally:
        nats_server.start()
    _status, ready = await eventually(lambda: probe(base, "/ready"), lambda answer: answer[0] == 200, timeout=60)
    assert ready["checks"]["nats"] == "ok" and ready["checks"].get("consumers", "ok") == "ok", ready
    return not_ready
