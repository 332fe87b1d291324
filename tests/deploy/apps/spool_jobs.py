"""Two lives of a process with a spool: one dies with its events on disk, the next takes over.

``python spool_jobs.py MODE PREFIX``, with ``DATABUDDY_SPOOL_DIR`` set (and
``DATABUDDY_CLIENT_ID`` / ``DATABUDDY_API_URL``). Modes:

``killed``
    tracks ``PREFIX-0`` .. ``PREFIX-1999`` and dies at once through ``os._exit``
    (no exit flush): what the server did not acknowledge stays in the spool
``busy-takeover``
    the next process on the same spool: a client with ``max_queue_size=100``
    tracks ``PREFIX-own-0`` .. ``PREFIX-own-99`` of its own, then calls
    ``flush(timeout=20)`` once, prints its result, and ends normally

Batches of 100 and a one-minute batch timeout, as in the other apps.
"""

from __future__ import annotations

import os
import sys

from databuddy_otel import Databuddy

EVENTS = 2000
OWN_EVENTS = 100


def main(mode: str, prefix: str) -> None:
    if mode == "killed":
        client = Databuddy(batch_size=100, batch_timeout=60_000)
        for i in range(EVENTS):
            client.track(name="spooled_event", event_id=f"{prefix}-{i}")
        os._exit(0)
    elif mode == "busy-takeover":
        client = Databuddy(batch_size=100, batch_timeout=60_000, max_queue_size=100)
        for i in range(OWN_EVENTS):
            client.track(name="own_event", event_id=f"{prefix}-own-{i}")
        result = client.flush(timeout=20)
        print("flushed", result.success, result.processed, result.error, flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
