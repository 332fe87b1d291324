"""Jobs in forked multiprocessing children that track events and never flush.

``python pool_jobs.py MODE PREFIX``: each of 4 tasks tracks 500 events with the ids
``PREFIX-TASK-I`` and returns; the script then ends without calling ``flush()``.
Credentials, the server and the spool come from ``DATABUDDY_CLIENT_ID``,
``DATABUDDY_API_URL`` and ``DATABUDDY_SPOOL_DIR``. Batches of 100 and a one-minute
batch timeout keep events queued until the child ends. Modes:

``pool``
    a client made at import, before the pool; ``Pool(4)``, ``map``, ``close()`` + ``join()``
``pool-lazy``
    the same, but each worker makes its client in its first task (a module global)
``processes``
    a client made at import; four ``Process`` children whose target returns
``pool-with``
    a client made at import; ``with Pool(4) as pool: pool.map(...)``, which
    terminates the workers (SIGTERM) on the way out
``takeover``
    no jobs: a client on the same spool directory takes over what dead processes
    left; the script lives until its spool thread has delivered it, then flushes

Prints one line per task: ``queued N``, the events still in its client's queue
when the task returned (what only the exit path can deliver).
"""

from __future__ import annotations

import multiprocessing
import sys
import time

from databuddy_otel import Databuddy

TASKS = 4
EVENTS_PER_TASK = 500


def new_client() -> Databuddy:
    return Databuddy(batch_size=100, batch_timeout=60_000)


#: Made at import, before any pool forks, as an app's module-level client is; in the
#: pool-lazy mode each worker makes its own instead.
_client: Databuddy | None = None if sys.argv[1:2] == ["pool-lazy"] else new_client()


def track_events(client: Databuddy, prefix: str, task: int) -> int:
    for i in range(EVENTS_PER_TASK):
        client.track(name="job_event", event_id=f"{prefix}-{task}-{i}", properties={"i": i})
    return client.stats().queued


def job(prefix: str, task: int) -> int:
    """A task with the client made at import (inherited through fork)."""
    assert _client is not None
    return track_events(_client, prefix, task)


def lazy_job(prefix: str, task: int) -> int:
    """A task that makes its worker's client the first time it runs."""
    global _client
    if _client is None:
        _client = new_client()
    return track_events(_client, prefix, task)


def report(queued: int) -> None:
    sys.stdout.write(f"queued {queued}\n")  # one write: children share the pipe
    sys.stdout.flush()


def process_target(prefix: str, task: int) -> None:
    report(job(prefix, task))


def main(mode: str, prefix: str) -> None:
    fork = multiprocessing.get_context("fork")
    tasks = [(prefix, task) for task in range(TASKS)]
    if mode in ("pool", "pool-lazy"):
        pool = fork.Pool(TASKS)
        queued = pool.starmap(lazy_job if mode == "pool-lazy" else job, tasks, chunksize=1)
        pool.close()
        pool.join()
    elif mode == "pool-with":
        with fork.Pool(TASKS) as pool:
            queued = pool.starmap(job, tasks, chunksize=1)
    elif mode == "processes":
        children = [fork.Process(target=process_target, args=args) for args in tasks]
        for child in children:
            child.start()
        for child in children:
            child.join()
        assert [c.exitcode for c in children] == [0] * TASKS, [c.exitcode for c in children]
        queued = []
    elif mode == "takeover":
        assert _client is not None and _client.settings.spool_dir, "needs DATABUDDY_SPOOL_DIR"
        # The spool thread delivers in the background; a flush() at once can return
        # early (tests/deploy/test_deploy_spool.py), so wait for the spool to drain.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (_client.stats().spooled or _client.stats().queued):
            time.sleep(0.02)
        result = _client.flush(timeout=20)
        print("flushed", result.processed, result.error or "", flush=True)
        queued = []
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    for n in queued:
        report(n)


if __name__ == "__main__":
    main(*sys.argv[1:])
