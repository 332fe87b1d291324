"""A daemon thread still tracking when the main thread returns.

``python daemon_thread.py PREFIX``: a daemon thread tracks ``PREFIX-0``, ``PREFIX-1``
… in a loop and prints the id of every event ``track()`` accepted; the main thread
returns after 0.2 s, so the exit flush runs while the thread keeps tracking. What
the flush cannot take (events tracked after it closed the queue) is refused, and
stderr says so. Default batching.
"""

from __future__ import annotations

import sys
import threading
import time

from databuddy_otel import Databuddy

client = Databuddy()


def keep_tracking(prefix: str, started: threading.Event) -> None:
    n = 0
    while True:
        response = client.track(name="background_tick", event_id=f"{prefix}-{n}")
        if response.success:
            sys.stdout.write(f"accepted {response.event_id}\n")
            sys.stdout.flush()
        n += 1
        started.set()
        time.sleep(0.001)


def main(prefix: str) -> None:
    started = threading.Event()
    threading.Thread(target=keep_tracking, args=(prefix, started), daemon=True).start()
    started.wait()
    time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1])
