"""RQ's two worker classes, with the pubsub thread polling five times a second, not each minute.

RQ (2.x and 3.0, with redis-py 7 and 8) stops a worker by unsubscribing its
command channel and joining the pubsub thread with no timeout. When that thread
has already read the unsubscribe reply, it goes back to waiting for a
subscription for the whole ``sleep_time`` (60 s): the burst worker then exits a
minute late (rq/rq#1613). Seen on a loaded machine (CI), in
the worker process itself, where no Databuddy client exists. The one change here
bounds that wait; jobs, work-horses and exits are RQ's own.
"""

from __future__ import annotations

from typing import Any

import rq


def _subscribe(worker: Any) -> None:
    worker.pubsub = worker.connection.pubsub()
    worker.pubsub.subscribe(**{worker.pubsub_channel_name: worker.handle_payload})
    worker.pubsub_thread = worker.pubsub.run_in_thread(
        sleep_time=0.2, daemon=True, exception_handler=worker._pubsub_exception_handler
    )


class Worker(rq.Worker):
    """``rq.Worker``: each job in a forked work-horse that ends with ``os._exit``."""

    def subscribe(self) -> None:
        _subscribe(self)


class SimpleWorker(rq.SimpleWorker):
    """``rq.SimpleWorker``: each job in the worker process itself."""

    def subscribe(self) -> None:
        _subscribe(self)
