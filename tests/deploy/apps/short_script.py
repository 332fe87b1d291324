"""A short script: 25 events, then it ends without flush() or shutdown().

``python short_script.py MODE PREFIX`` tracks the ids ``PREFIX-0`` .. ``PREFIX-24``
with a client made from ``DATABUDDY_CLIENT_ID`` and ``DATABUDDY_API_URL``, at the
SDK's default batching (the events are still queued when the script ends). Modes:

``dropped``
    the client is made inside a function that returns without keeping it
``global``
    the client is kept in a module global until the interpreter exits
"""

from __future__ import annotations

import sys

from databuddy_otel import Databuddy

EVENTS = 25

client: Databuddy | None = None


def track_events(tracker: Databuddy, prefix: str) -> None:
    for i in range(EVENTS):
        tracker.track(name="script_event", event_id=f"{prefix}-{i}", properties={"i": i})


def with_a_dropped_client(prefix: str) -> None:
    track_events(Databuddy(), prefix)


def main(mode: str, prefix: str) -> None:
    global client
    if mode == "dropped":
        with_a_dropped_client(prefix)
    elif mode == "global":
        client = Databuddy()
        track_events(client, prefix)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
