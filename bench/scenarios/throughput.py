"""Scenario 2: delivered events per second, end to end, at batches of 100.

The clock runs from just before the first call to the moment the sink counted
the N-th event (the sink stamps it with ``time.monotonic_ns()``, a clock shared
by all processes on Linux). After the last call the SDK's documented flush is
called, as an application would before it waits for delivery. The sink's count
for this SDK's path is checked against N.
"""

from __future__ import annotations

import time
from typing import Any

from bench.sdks import ADAPTERS, make_props
from bench.sink_client import SinkClient


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    n = params["n"]
    sink = SinkClient(params["url"])
    sink.reset(target=n)
    adapter = ADAPTERS[sdk](params["url"], capacity=n)
    send = adapter.send
    start = time.monotonic_ns()
    for i in range(n):
        send(make_props(i))
    sent = time.monotonic_ns()
    adapter.flush()
    counts = sink.wait_for(n, timeout=params.get("timeout", 180))
    delivered = counts["paths"].get(adapter.path, 0)
    reached = counts["reached_ns"]
    result: dict[str, Any] = {
        "n": n,
        "delivered": delivered,
        "send_s": (sent - start) / 1e9,
        "complete": delivered >= n,
    }
    if reached is not None and delivered >= n:
        result["events_per_s"] = n / ((reached - start) / 1e9)
        result["total_s"] = (reached - start) / 1e9
    return result
