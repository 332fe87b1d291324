"""A Celery app deployed the usual way: the client made at import, tasks that track().

The worker runs with the prefork pool in ``tests/deploy/test_deploy_celery.py``; the
broker is kombu's ``filesystem://`` transport in the folder ``DEPLOY_BROKER_DIR``, so
no broker server is needed. ``python celery_app.py PREFIX N`` queues N tasks that
track the ids ``PREFIX-0`` .. ``PREFIX-{N-1}``. Credentials and the server come from
``DATABUDDY_CLIENT_ID`` and ``DATABUDDY_API_URL``; batches of 100 and a one-minute
batch timeout keep events queued until the pool's processes stop. With
``DEPLOY_FLUSH_ON_PROCESS_SHUTDOWN=1`` each pool process flushes in Celery's
``worker_process_shutdown`` signal, as docs/serverless.md shows.
"""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.signals import worker_process_shutdown

from databuddy_otel import Databuddy

folder = os.environ["DEPLOY_BROKER_DIR"]
app = Celery("celery_app", broker="filesystem://")
app.conf.update(
    broker_transport_options={
        "data_folder_in": folder,
        "data_folder_out": folder,
        "control_folder": os.path.join(folder, "control"),
        "polling_interval": 0.05,
    },
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_enable_remote_control=False,
)

client = Databuddy(batch_size=100, batch_timeout=60_000)


if os.environ.get("DEPLOY_FLUSH_ON_PROCESS_SHUTDOWN") == "1":

    @worker_process_shutdown.connect
    def flush_databuddy(**kwargs: object) -> None:
        client.flush(timeout=5)


@app.task(name="deploy.track_event")
def track_event(event_id: str) -> None:
    client.track(name="task_done", event_id=event_id, properties={"pid": os.getpid()})


if __name__ == "__main__":
    prefix, count = sys.argv[1], int(sys.argv[2])
    for n in range(count):
        track_event.delay(f"{prefix}-{n}")
