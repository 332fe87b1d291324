"""Scenario 1: what one ``track()``/``capture()`` call costs the caller.

Batches of 100, a queue that holds every event (nothing dropped), sink up.
Each call is timed on its own with ``perf_counter_ns`` (the ~0.1 µs timer
overhead is included for every SDK alike); the property dict is built outside
the timed region. The first 100 calls warm the SDK up (threads, connection)
and are not timed. The sender threads run concurrently, as in production, so
GIL contention they cause is part of the caller's cost.
"""

from __future__ import annotations

from array import array
from time import perf_counter_ns
from typing import Any

from bench.scenarios._measure import percentile
from bench.sdks import ADAPTERS, make_props

WARMUP = 100


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    n = params["n"]
    adapter = ADAPTERS[sdk](params["url"], capacity=n + WARMUP)
    send = adapter.send
    for i in range(WARMUP):
        send(make_props(i))
    took = array("q", bytes(8 * n))
    accepted = 0
    for i in range(n):
        props = make_props(i)
        start = perf_counter_ns()
        ok = send(props)
        took[i] = perf_counter_ns() - start
        accepted += ok
    ordered = sorted(took)
    return {
        "n": n,
        "mean_us": sum(took) / n / 1000,
        "p50_us": percentile(ordered, 50) / 1000,
        "p99_us": percentile(ordered, 99) / 1000,
        "max_us": ordered[-1] / 1000,
        "accepted": accepted,
    }
