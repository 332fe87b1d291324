"""RQ jobs deployed the usual way: the client made at import, jobs that track() and return.

``python rq_jobs.py REDIS_URL PREFIX JOBS`` queues JOBS jobs; ``rq worker --burst``
(run by ``tests/deploy/test_deploy_rq.py`` from this folder) then runs each in a
work-horse forked from the worker, which RQ ends with ``os._exit``: no ``atexit``
hook runs there. Job ``N`` tracks the ids ``PREFIX-N-0`` .. ``PREFIX-N-4``.
Credentials and the server come from ``DATABUDDY_CLIENT_ID`` and
``DATABUDDY_API_URL``; batches of 100 and a one-minute batch timeout keep every
event queued until the horse ends.
"""

from __future__ import annotations

import os
import sys

from databuddy_otel import Databuddy

EVENTS_PER_JOB = 5

client = Databuddy(batch_size=100, batch_timeout=60_000)


def track_job(prefix: str, job: int) -> int:
    for i in range(EVENTS_PER_JOB):
        client.track(name="rq_job", event_id=f"{prefix}-{job}-{i}", properties={"pid": os.getpid()})
    return os.getpid()


if __name__ == "__main__":
    from redis import Redis
    from rq import Queue

    url, prefix, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    queue = Queue(connection=Redis.from_url(url))
    for job in range(jobs):
        queue.enqueue("rq_jobs.track_job", prefix, job)
