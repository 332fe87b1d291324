"""Scenario 3: events lost in a burst at each SDK's default settings.

N events as fast as the caller can send them, then the SDK's documented
shutdown (which flushes), then the sink's count once it stops changing.
lost = N - delivered.
"""

from __future__ import annotations

import time
from typing import Any

from bench.sdks import ADAPTERS, make_props
from bench.sink_client import SinkClient


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    n = params["n"]
    sink = SinkClient(params["url"])
    sink.reset()
    adapter = ADAPTERS[sdk](params["url"], capacity=None)
    send = adapter.send
    start = time.perf_counter()
    for i in range(n):
        send(make_props(i))
    sent = time.perf_counter()
    adapter.close()
    closed = time.perf_counter()
    counts = sink.settle()
    delivered = counts["paths"].get(adapter.path, 0)
    result: dict[str, Any] = {
        "n": n,
        "delivered": delivered,
        "lost": n - delivered,
        "lost_pct": 100 * (n - delivered) / n,
        "send_s": sent - start,
        "shutdown_s": closed - sent,
    }
    extra = getattr(adapter, "extra", None)
    if extra is not None:
        result.update(extra())
    return result
