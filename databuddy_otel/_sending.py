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
import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

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


_suppressor: Callable[[], AbstractContextManager[None]] | None = None


def suppressed() -> AbstractContextManager[None]:
    """Suppress instrumentation (so our own HTTP call makes no span) for a ``with`` block.

    OpenTelemetry's batch and simple processors already do this around
    ``export()``; an exporter called directly must do it itself. The public
    ``opentelemetry.instrumentation.utils.suppress_instrumentation`` is used
    when installed (it is whenever an instrumentation is); otherwise the plain
    ``"suppress_instrumentation"`` context key, which that package's
    ``is_instrumentation_enabled()`` also honours.
    """
    global _suppressor
    if _suppressor is None:
        try:
            module = importlib.import_module("opentelemetry.instrumentation.utils")
            _suppressor = getattr(module, "suppress_instrumentation", _plain_key)
        except Exception:  # not installed, or broken: the plain key still works
            _suppressor = _plain_key
    return _suppressor()


@contextlib.contextmanager
def _plain_key() -> Iterator[None]:
    token = otel_context.attach(otel_context.set_value("suppress_instrumentation", True))
    try:
        yield
    finally:
        otel_context.detach(token)
