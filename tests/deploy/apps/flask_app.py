"""A Flask app deployed the usual way: the client made at import, events from logging and track().

Served by gunicorn in ``tests/deploy/test_deploy_gunicorn.py``. Credentials and the
server come from ``DATABUDDY_CLIENT_ID`` and ``DATABUDDY_API_URL``. Batches of 100 and
a one-minute batch timeout keep events queued until the platform stops the worker,
so what the test sees delivered is what the exit flush delivered.
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from databuddy_logging import DatabuddyHandler
from databuddy_otel import Databuddy

client = Databuddy(batch_size=100, batch_timeout=60_000)

logger = logging.getLogger("deploy.flask_app")
logger.setLevel(logging.INFO)
logger.addHandler(DatabuddyHandler(client=client))
logger.propagate = False

app = Flask(__name__)


@app.get("/hit/<event_id>")
def hit(event_id: str) -> str:
    """One request, two events: a tagged log record and a track() call, with ids from the URL."""
    pid = os.getpid()
    logger.info("page_view", extra={"db_props": {"pid": pid}, "db_event_id": f"{event_id}.log"})
    client.track(name="request_done", event_id=f"{event_id}.track", properties={"pid": pid})
    return str(pid)
