"""A job runner of its own: one ``os.fork()`` per job, each child ending with ``os._exit``.

``python fork_loop.py PREFIX``: the client is made at import; the parent tracks
``PREFIX-parent-0`` .. ``-49`` and keeps them queued; then 10 jobs each fork a child
that tracks ``PREFIX-J-0`` .. ``-19`` and ends with ``os._exit(J % 3)``, as RQ,
Dramatiq-style or hand-written prefork loops end their work processes (no
``atexit``, no ``multiprocessing`` finalizer). The parent checks that each child's
exit status is the one it gave, prints ``statuses ...`` and ends normally.
Batches of 100 and a one-minute batch timeout keep every event queued until each
process ends.
"""

from __future__ import annotations

import os
import sys

from databuddy_otel import Databuddy

JOBS = 10
EVENTS_PER_JOB = 20
PARENT_EVENTS = 50

client = Databuddy(batch_size=100, batch_timeout=60_000)


def main(prefix: str) -> None:
    for i in range(PARENT_EVENTS):
        client.track(name="parent_event", event_id=f"{prefix}-parent-{i}")
    statuses = []
    for job in range(JOBS):
        pid = os.fork()
        if pid == 0:
            for i in range(EVENTS_PER_JOB):
                client.track(name="forked_job", event_id=f"{prefix}-{job}-{i}")
            os._exit(job % 3)
        _, status = os.waitpid(pid, 0)
        statuses.append(
            os.waitstatus_to_exitcode(status)
            if hasattr(os, "waitstatus_to_exitcode")
            else status >> 8
        )
    assert statuses == [job % 3 for job in range(JOBS)], statuses
    print("statuses", *statuses, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
