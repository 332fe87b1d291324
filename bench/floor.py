"""The least a batching analytics SDK can cost: the ``floor`` variant of the web benchmarks.

Not an SDK anyone should ship: it checks nothing, retries nothing, counts nothing,
keeps an unbounded list and loses whatever is pending when the process ends. What
it does is what every SDK that
batches JSON over ``requests`` must do at the least, so the gap between it and an
SDK is that SDK's own overhead, and the gap between it and no SDK is what no SDK of
this shape can avoid:

* per event, on the caller's thread: an id (``uuid.uuid4``), a timestamp, one
  ``json.dumps`` of the event, an append under a lock;
* per tagged log record: the stdlib ``logging`` call and a minimal
  ``logging.Handler`` whose ``emit`` makes that event;
* on sender threads: one ``requests.Session.post`` per 100 events (or per second),
  :data:`SENDERS` of them so that a slow round trip never leaves it behind (a floor
  that fell behind would look cheap only because it had not sent yet).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

BATCH = 100
SENDERS = 4


class Floor:
    def __init__(self, url: str) -> None:
        import requests

        self._session = requests.Session()
        self._url = url + "/floor"
        self._pending: list[str] = []
        self._ready = threading.Condition(threading.Lock())
        for _ in range(SENDERS):
            threading.Thread(target=self._send_forever, name="floor-sender", daemon=True).start()

    def track(self, name: str, properties: dict[str, Any]) -> None:
        event = {
            "name": name,
            "eventId": str(uuid.uuid4()),
            "timestamp": time.time_ns() // 1_000_000,
            "properties": properties,
        }
        text = json.dumps(event, separators=(",", ":"))
        with self._ready:
            self._pending.append(text)
            if len(self._pending) >= BATCH:
                self._ready.notify()

    def _send_forever(self) -> None:
        pending = self._ready
        while True:
            with pending:
                pending.wait_for(lambda: len(self._pending) >= BATCH, timeout=1.0)
                chunk, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            if chunk:  # the server takes 100 at most
                self._session.post(
                    self._url,
                    data="[" + ",".join(chunk) + "]",
                    headers={"Content-Type": "application/json"},
                    timeout=5,
                )


class FloorHandler(logging.Handler):
    """Records carrying ``db_props`` become events; everything else is ignored."""

    def __init__(self, floor: Floor) -> None:
        super().__init__()
        self._floor = floor

    def emit(self, record: logging.LogRecord) -> None:
        props = record.__dict__.get("db_props")
        if props is not None:
            self._floor.track(str(record.msg), props)
