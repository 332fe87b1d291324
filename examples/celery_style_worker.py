"""A prefork worker pool (the way Celery, RQ and gunicorn run): forked children keep tracking.

Run it with ``python examples/celery_style_worker.py`` (POSIX: it uses the ``fork``
start method). It starts the local ingest server, makes one client in the parent,
forks three workers that take jobs from a queue, and prints what the server stored.

Two things to know, both shown below:

- The client survives ``fork``: each child gets its own empty queue, worker thread
  and HTTP connections, so a client made at import time (before the pool forks)
  keeps working in every worker.
- A ``multiprocessing`` child ends with ``os._exit()``, which skips ``atexit``; the
  SDK registers a ``multiprocessing`` finalizer in each child instead (and, under
  Celery, flushes on its ``worker_process_shutdown`` signal), so the workers below
  never flush and lose nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from multiprocessing.queues import Queue
from typing import Any, Optional

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer

WORKERS = 3
JOBS = [("email_digest", n) for n in range(5)] + [("thumbnail", n) for n in range(4)]

Job = Optional[tuple[str, int]]


def run_job(kind: str, number: int) -> dict[str, Any]:
    """Stands in for the real work."""
    time.sleep(0.01)
    if kind == "email_digest":
        return {"emails_sent": 100 + number}
    return {"pixels": 64 * 64}


def worker(client: Databuddy, jobs: Queue[Job]) -> None:
    """One forked worker process: take jobs until the sentinel; no flush of its own."""
    while (job := jobs.get()) is not None:
        kind, number = job
        started = time.perf_counter()
        result = run_job(kind, number)
        client.track(
            name="job_completed",
            properties={
                "job_name": kind,
                "job_number": number,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "worker_pid": os.getpid(),
                "status": "success",
                **result,
            },
        )


def main() -> None:
    context = multiprocessing.get_context("fork")
    with DevServer() as server:
        client = Databuddy(client_id="worker-example", api_url=server.url)
        client.track(name="worker_pool_started", properties={"workers": WORKERS})

        jobs: Queue[Job] = context.Queue()
        pool = [context.Process(target=worker, args=(client, jobs)) for _ in range(WORKERS)]
        for process in pool:
            process.start()
        for job in JOBS:
            jobs.put(job)
        for _ in pool:
            jobs.put(None)
        for process in pool:
            process.join(timeout=30)
        assert all(p.exitcode == 0 for p in pool), [p.exitcode for p in pool]

        client.shutdown()
        events = server.events()
        print(f"The server stored {len(events)} events:")
        for event in events:
            print(json.dumps({k: event[k] for k in ("name", "properties")}))
        done = server.events("job_completed")
        pids = {e["properties"]["worker_pid"] for e in done}
        assert len(done) == len(JOBS), f"expected {len(JOBS)} job_completed, got {len(done)}"
        assert os.getpid() not in pids
        print(f"All {len(JOBS)} jobs tracked by {len(pids)} forked worker process(es).")


if __name__ == "__main__":
    main()
