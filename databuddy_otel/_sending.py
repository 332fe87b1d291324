"""Marking a thread as sending: instrumentation suppressed, and the SDK's own
log records recognisable.

While a thread sends events (``Delivery.send``, or an exporter's ``export``),
two things must hold: OpenTelemetry instrumentation must not trace our own
HTTP request, and log records emitted on that thread (ours, urllib3's) must
never be turned back into events by the logging front doors. :func:`sending`
does both; it nests, so an export that calls ``Delivery.send`` stays marked.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from opentelemetry import context as otel_context

_depth = threading.local()


def is_sending() -> bool:
    """True on a thread that is sending events right now."""
    return getattr(_depth, "value", 0) > 0


@contextlib.contextmanager
def sending() -> Iterator[None]:
    """Mark this thread as sending, with instrumentation suppressed, for a ``with`` block."""
    _depth.value = getattr(_depth, "value", 0) + 1
    try:
        with suppressed():
            yield
    finally:
        _depth.value -= 1


#: The context key OpenTelemetry instrumentations check to stay silent (the
#: public name; ``opentelemetry-instrumentation``'s ``is_instrumentation_enabled``
#: honours it). Set directly rather than through that package, which would be
#: imported on a background thread at the first send.
SUPPRESS_KEY = "suppress_instrumentation"


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Suppress instrumentation (our own HTTP request makes no span) for a ``with`` block."""
    token = otel_context.attach(otel_context.set_value(SUPPRESS_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)
