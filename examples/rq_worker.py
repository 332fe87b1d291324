"""RQ jobs that track events: each job runs in a forked work-horse that ends with os._exit.

Run it with ``python examples/rq_worker.py`` (POSIX; needs ``pip install rq`` and a
``redis-server`` binary). It starts the local ingest server and a throw-away Redis on
a free port, queues five jobs, runs ``rq worker --burst`` on them, and prints what
the server stored.

Nothing in the jobs flushes. RQ runs each job in a work-horse forked from the
worker and ends it with ``os._exit()``, which skips ``atexit``; in a work-horse the
client's ``os._exit`` closes its queue first (within ``shutdown_timeout``), so every
event arrives.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from databuddy_otel import Databuddy

#: Made at import, as an app's client is: the worker imports this module in each
#: work-horse. The server comes from DATABUDDY_API_URL, which main() sets for the worker.
client = Databuddy(client_id="rq-example")


def send_welcome_email(user_id: int) -> None:
    """One job: the work, then two events."""
    client.track(name="email_sent", properties={"user_id": user_id, "template": "welcome"})
    client.track(name="job_completed", properties={"job": "welcome_email", "pid": os.getpid()})


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port, nothing saved to disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("this example needs a redis-server binary (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        redis.terminate()
        redis.wait(10)


def main() -> None:
    from redis import Redis
    from rq import Queue

    from databuddy_otel.devserver import DevServer

    with DevServer() as server, redis_server() as url:
        queue = Queue(connection=Redis.from_url(url))
        for user_id in range(5):
            queue.enqueue("rq_worker.send_welcome_email", user_id)
        subprocess.run(
            [sys.executable, "-m", "rq.cli", "worker", "--burst", "--quiet", "--url", url],
            cwd=Path(__file__).parent,
            env={**os.environ, "DATABUDDY_API_URL": server.url},
            check=True,
        )
        events = server.events()
        print(f"The server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "properties")}))
        horses = {e["properties"]["pid"] for e in server.events("job_completed")}
        assert len(events) == 10, f"expected 10 events, got {len(events)}"
        print(
            f"All 5 jobs' events arrived from {len(horses)} work-horse(s), none of which flushed."
        )


if __name__ == "__main__":
    main()
