"""The life of a client, an exporter or a processor: open, closing, closed.

Each object that takes events holds one :class:`State` and is its only writer:
the client (``shutdown()``), the queue's :class:`~databuddy_otel._queue.admission.Room`
(under its lock), each exporter and the span processor. Components that run a
thread of their own (the senders, the spool) stop it when the queue closes them;
their flags only say whether that thread should go on.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """Where an object is in its life; it only moves forward."""

    #: Takes events.
    OPEN = "open"
    #: ``shutdown()`` has begun: new events are refused; those already taken are delivered.
    CLOSING = "closing"
    #: Stopped: nothing more is sent.
    CLOSED = "closed"
