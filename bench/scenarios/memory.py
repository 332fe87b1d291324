"""Scenario 5: memory with the sink down (every connection refused).

``queued``: a queue that holds all N events; RSS growth over the N calls divided
by N is the memory one queued event costs.

``defaults``: the SDK's default settings; RSS growth after N/2 and after N
events. The SDK is *bounded* when the second half grew RSS by at most
max(1 MiB, 10 % of the total growth).

One warm-up event is sent first (threads started, first connection refused)
and not counted; ``gc.collect()`` runs before each reading.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from bench.scenarios._measure import rss_bytes
from bench.sdks import ADAPTERS, make_props

MIB = 1024 * 1024


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    n = params["n"]
    queued = params["variant"] == "queued"
    adapter = ADAPTERS[sdk](params["down_url"], capacity=n + 1 if queued else None)
    send = adapter.send
    send(make_props(0))
    time.sleep(0.2)
    gc.collect()
    before = rss_bytes()
    half = n // 2
    for i in range(1, half + 1):
        send(make_props(i))
    gc.collect()
    middle = rss_bytes()
    for i in range(half + 1, n + 1):
        send(make_props(i))
    gc.collect()
    after = rss_bytes()
    grown = after - before
    result: dict[str, Any] = {
        "n": n,
        "rss_before_mb": before / MIB,
        "rss_delta_mb": grown / MIB,
        "second_half_mb": (after - middle) / MIB,
    }
    if queued:
        result["bytes_per_event"] = grown / n
    else:
        result["bounded"] = (after - middle) <= max(MIB, 0.1 * grown)
    return result
