"""Scenario 7: over an emulated network round trip, every SDK at its defaults.

The sink answers each upload ``delay_ms`` late (events are counted on arrival),
so a request in flight costs its sender ``delay_ms`` of waiting, as over the
internet. Two modes:

* ``burst``: N events as fast as the caller can send them; delivered events/s
  (the events that arrived, from the first call to the last arrival), the
  caller's per-call time (p50 / p99 / max), and the events lost after the
  documented flush and shutdown.
* ``paced``: ``rate`` events/s offered for ``seconds`` (a service below what the
  link carries); the caller's per-call time shows whether it ever stalls.

Raw OpenTelemetry runs with 100-event batches (as the benchmark's other scenarios
configure it); every other SDK with its own defaults.
"""

from __future__ import annotations

import time
from array import array
from time import perf_counter_ns
from typing import Any

from bench.scenarios._measure import percentile
from bench.sdks import ADAPTERS, BATCH, make_props
from bench.sink_client import SinkClient

WARMUP = 20


def _adapter(sdk: str, url: str) -> Any:
    if sdk == "otel":
        return ADAPTERS[sdk](url, capacity=None, batch=BATCH)
    return ADAPTERS[sdk](url, capacity=None)


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    sink = SinkClient(params["url"])
    paced = params["mode"] == "paced"
    n = int(params["rate"] * params["seconds"]) if paced else params["n"]
    sink.reset(target=n + WARMUP, delay_ms=params["delay_ms"])
    adapter = _adapter(sdk, params["url"])
    send = adapter.send
    start = time.monotonic_ns()
    for i in range(WARMUP):  # threads and the first connection: not timed per call
        send(make_props(i))
    took = array("q", bytes(8 * n))
    interval_ns = int(1e9 / params["rate"]) if paced else 0
    next_at = time.monotonic_ns()
    for i in range(n):
        props = make_props(i)
        if paced:
            next_at += interval_ns
            pause = next_at - time.monotonic_ns()
            if pause > 0:
                time.sleep(pause / 1e9)
        began = perf_counter_ns()
        send(props)
        took[i] = perf_counter_ns() - began
    ordered = sorted(took)
    latency = {
        "p50_us": percentile(ordered, 50) / 1000,
        "p99_us": percentile(ordered, 99) / 1000,
        "max_us": ordered[-1] / 1000,
    }
    if sdk == "floor":  # sends nothing: only the calls' time means something
        return {"n": n, **latency}
    adapter.flush()
    # An SDK that dropped events never reaches the total: stop once arrivals stall.
    stall = max(2.0, 20 * params["delay_ms"] / 1000)
    sink.wait_for(n + WARMUP, timeout=params.get("timeout", 120), stall=stall)
    adapter.close()
    counts = sink.settle(quiet=0.5)
    delivered = counts["paths"].get(adapter.path, 0)
    last = counts["last_ns"]
    result: dict[str, Any] = {
        "n": n,
        "delivered": delivered,
        "lost": max(0, n + WARMUP - delivered),
        **latency,
    }
    if last is not None and delivered:
        # What arrived, over the time it took to arrive (an SDK that drops events is
        # measured on the ones it delivered; the lost column says how many it dropped).
        result["events_per_s"] = delivered / ((last - start) / 1e9)
    return result
