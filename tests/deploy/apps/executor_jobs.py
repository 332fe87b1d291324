"""Tasks in multiprocessing children of every start method, with the client made at import.

``python executor_jobs.py METHOD FORM PREFIX``: 400 tasks, each tracking the id
``PREFIX-N`` through the module-level client, run by two worker processes started
with METHOD (``fork``, ``forkserver`` or ``spawn``). With ``forkserver`` and
``spawn`` each child imports this module again (as ``__mp_main__``), so each makes
a client of its own, at import, as an app does. Nothing flushes. FORM:

``executor-with``
    ``with ProcessPoolExecutor(2, mp_context=...) as pool: pool.map(...)``
``executor-shutdown``
    ``pool.map(...)``, then ``pool.shutdown(wait=True)``
``pool-with``
    ``with Pool(2) as pool: pool.map(...)`` (terminates the workers on the way out)
``pool-close``
    ``pool.map(...)``, then ``pool.close()`` and ``pool.join()``

Prints ``workers N``: how many processes ran tasks. Batches of 100 and a one-minute
batch timeout keep events queued until each worker ends.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

from databuddy_otel import Databuddy

TASKS = 400

client = Databuddy(batch_size=100, batch_timeout=60_000)


def task(event_id: str) -> int:
    client.track(name="pool_task", event_id=event_id)
    return os.getpid()


def main(method: str, form: str, prefix: str) -> None:
    context = multiprocessing.get_context(method)
    ids = [f"{prefix}-{n}" for n in range(TASKS)]
    if form == "executor-with":
        with ProcessPoolExecutor(2, mp_context=context) as executor:
            pids = set(executor.map(task, ids, chunksize=10))
    elif form == "executor-shutdown":
        executor = ProcessPoolExecutor(2, mp_context=context)
        pids = set(executor.map(task, ids, chunksize=10))
        executor.shutdown(wait=True)
    elif form == "pool-with":
        with context.Pool(2) as pool:
            pids = set(pool.map(task, ids, chunksize=10))
    elif form == "pool-close":
        pool = context.Pool(2)
        pids = set(pool.map(task, ids, chunksize=10))
        pool.close()
        pool.join()
    else:
        raise SystemExit(f"unknown form {form!r}")
    print(f"workers {len(pids)}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
