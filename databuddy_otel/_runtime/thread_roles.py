"""What the SDK knows about the thread it runs on, and what that thread may do.

Three roles matter:

* **sending** (:func:`sending`): the thread is sending events. OpenTelemetry
  instrumentation is suppressed (our own HTTP request makes no span), and log
  records emitted meanwhile (ours, urllib3's) are never turned back into events
  by the logging front doors (:func:`is_sending`). It nests.
* **a worker of the SDK** (:func:`worker`): the queue's worker and sender threads,
  and every callback they run (``on_undelivered``). Such a thread is the one
  that makes room in the queue, so it must never wait for room.
* **running an event loop** (:func:`in_event_loop`): waiting would stall every task
  of the loop.

:func:`may_wait` is the rule the queue applies before a caller waits for room.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

from opentelemetry import context as otel_context


class _ThreadState(threading.local):
    # Class attributes are every thread's defaults: reading one never raises inside
    # (getattr with a default on a plain threading.local costs ~0.5 µs when missing,
    # and is_sending() runs for every tagged log record).
    sending = 0
    worker = False


_state = _ThreadState()


def is_sending() -> bool:
    """True on a thread that is sending events right now."""
    return _state.sending > 0


@contextlib.contextmanager
def sending() -> Iterator[None]:
    """Mark this thread as sending, with instrumentation suppressed, for a ``with`` block."""
    _state.sending += 1
    try:
        with suppressed():
            yield
    finally:
        _state.sending -= 1


#: The context key OpenTelemetry instrumentations check to stay silent (the
#: public name; ``opentelemetry-instrumentation``'s ``is_instrumentation_enabled``
#: honours it). Set directly rather than through that package, which would be
#: imported on a background thread at the first send.
SUPPRESS_KEY = "suppress_instrumentation"
#: The key the SDK's own exporting threads set, in opentelemetry-api 1.25 to 1.45:
#: the only one opentelemetry-instrumentation 0.46b0 checks (0.47b0 on check both).
_SDK_SUPPRESS_KEY: str | None = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Suppress instrumentation (our own HTTP request makes no span) for a ``with`` block."""
    ctx = otel_context.set_value(SUPPRESS_KEY, True)
    if _SDK_SUPPRESS_KEY is not None:
        ctx = otel_context.set_value(_SDK_SUPPRESS_KEY, True, ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def mark_worker() -> None:
    """Declare the current thread one of the SDK's workers, for the rest of its life."""
    _state.worker = True


def is_worker() -> bool:
    """True on one of the SDK's worker or sender threads."""
    return _state.worker


def in_event_loop() -> bool:
    """True on a thread that is running an asyncio event loop."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # not imported: no loop can be running
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def may_wait() -> bool:
    """Whether this thread may wait for room in a full queue."""
    return not is_worker() and not in_event_loop()
