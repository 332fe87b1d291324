"""OpenTelemetry's batch processor machinery, used as the event queue's queue and worker.

This is the only module that touches ``opentelemetry-sdk`` internals. Every
release from 1.25 on keeps a ``BatchLogRecordProcessor``'s records in a deque
with one worker thread woken by a timer or when ``max_export_batch_size``
records wait, empties a forked child's copy, and drains on ``force_flush``.
The queue reuses all of it, in one of two ways chosen at construction:

* **The seam** (1.33 and later): the deque and the worker's wake-up event,
  on the processor (1.33) or on its shared ``_batch_processor`` (1.34 on,
  ``opentelemetry.sdk._shared_internal``). ``put`` appends to that deque as
  ``emit`` does, without ``on_emit``'s per-record copy and wrapper and without
  ``emit``'s own checks: room is the event queue's business, the shutdown order
  is its own, and a forked child's copy is emptied by the SDK's at-fork hook.
* **The public API** (before 1.33, whose worker waits on a condition instead,
  or any layout this module does not know): each item travels inside the
  record that release's ``emit`` / ``on_emit`` takes (``LogData`` up to 1.38,
  ``ReadWriteLogRecord`` from 1.39, the item as the body of an API
  ``LogRecord``), and the drain takes it out of the body again. Before 1.33
  ``force_flush`` has the worker export and waits for it (up to the
  processor's export timeout, 30 s) instead of exporting on the calling thread.

Caller cost of ``put`` (100,000 items, Python 3.11, the 2-core machine):
the seam ≈ 0.25 µs; the public API ≈ 4.8 µs on 1.45.2 (≈ 2.7 µs on 1.33.1,
≈ 2.4 µs on 1.25.0). tests/test_event_queue.py checks which way the installed
SDK takes and runs the queue both ways.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

try:  # 1.39 and later
    from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
except ImportError:  # before 1.39: processors take LogData
    ReadWriteLogRecord = None  # type: ignore[assignment,misc]
    from opentelemetry.sdk._logs import LogData  # type: ignore[attr-defined,unused-ignore]

from databuddy_otel._event.limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel._runtime.quiet_threads import quiet_fork_hooks, quiet_start

T = TypeVar("T")

_SCOPE = InstrumentationScope("databuddy_otel")


def _seam(processor: Any) -> Any | None:
    """The object holding the deque and the worker's wake-up event, if this SDK has one."""
    machinery = getattr(processor, "_batch_processor", processor)  # 1.34+: shared machinery
    deque = getattr(machinery, "_queue", None)
    awaken = getattr(machinery, "_worker_awaken", None)
    if isinstance(deque, collections.deque) and isinstance(awaken, threading.Event):
        return machinery
    return None


def _wrapper() -> Callable[[Any], Any]:
    """How an item travels through this SDK's public ``emit``: as the body of a record."""
    if ReadWriteLogRecord is not None:
        resource, limits = Resource.get_empty(), LogRecordLimits()

        def wrap(item: Any) -> Any:
            # on_emit hands the batch a ReadableLogRecord with a copy of this LogRecord.
            return ReadWriteLogRecord(
                LogRecord(body=item), resource=resource, instrumentation_scope=_SCOPE, limits=limits
            )

        return wrap

    def wrap_log_data(item: Any) -> Any:
        # LogData.__init__ only stores its two arguments (and in 1.38 warns that 1.39
        # replaces it by ReadWriteLogRecord, which is taken above where it exists).
        data = LogData.__new__(LogData)
        data.log_record = LogRecord(body=item)
        data.instrumentation_scope = _SCOPE
        return data

    return wrap_log_data


def _unwrap(batch: Sequence[Any]) -> list[Any]:
    """The items carried by a batch of records (ReadableLogRecord or LogData)."""
    return [record.log_record.body for record in batch]


class _Drain(Generic[T]):
    """What the worker exports to: each batch goes to ``on_batch`` (which must not block)."""

    def __init__(self, on_batch: Callable[[Sequence[T]], None]) -> None:
        self._on_batch: Callable[[Sequence[T]], None] | None = on_batch
        self.wrapped = False  # batches are records carrying the items (the public API)

    def export(self, batch: Sequence[Any]) -> None:
        on_batch = self._on_batch
        if on_batch is not None:
            on_batch(_unwrap(batch) if self.wrapped else batch)

    def shutdown(self) -> None:
        pass


class BatchQueue(Generic[T]):
    """Items in, batches out to ``on_batch`` on the worker thread (or on a flushing thread).

    ``put`` never drops (``max_size`` is the caller's capacity, and the caller keeps
    within it). ``use_seam=False`` takes the public API even where the seam exists.
    """

    def __init__(
        self,
        on_batch: Callable[[Sequence[T]], None],
        *,
        batch_size: int,
        delay_ms: float,
        max_size: int,
        use_seam: bool = True,
    ) -> None:
        self._drain: _Drain[T] = _Drain(on_batch)
        self.hold_until = 0.0
        with quiet_start():  # its worker thread starts here
            self._processor = BatchLogRecordProcessor(
                self._drain,  # type: ignore[arg-type]
                schedule_delay_millis=delay_ms,
                max_export_batch_size=batch_size,
                max_queue_size=max_size,
            )
        quiet_fork_hooks()  # and again in a forked child, from its at-fork hook
        machinery = _seam(self._processor) if use_seam else None
        self.seam = machinery is not None
        if machinery is not None:
            self._machinery = machinery
            self._deque: collections.deque[T] = machinery._queue
            self._threshold = batch_size
            self.put: Callable[[T], None] = self._append
        else:
            self._drain.wrapped = True
            processor: Any = self._processor
            # on_emit from 1.35 (emit before); both only queue the record and wake the worker.
            self._emit: Callable[[Any], None] = getattr(processor, "on_emit", None) or (
                processor.emit
            )
            self._wrap = _wrapper()
            self.put = self._emit_wrapped

    def _append(self, item: T) -> None:
        """Add one item (the caller has made room for it); wake the worker on a full batch.

        Until :attr:`hold_until` only a full request's worth wakes it: the senders
        would hold a smaller batch back anyway, and they wake the worker when the
        hold ends (:meth:`wake_if_due`).
        """
        deque = self._deque
        deque.appendleft(item)  # the worker pops from the right: oldest first
        waiting = len(deque)
        if waiting >= self._threshold and (
            waiting >= MAX_EVENTS_PER_REQUEST or time.monotonic() >= self.hold_until
        ):
            self._wake()

    def wake_if_due(self) -> bool:
        """Wake the worker if a batch waits in the deque; ``True`` if it did.

        Only the seam holds the worker back; the public API's ``emit`` wakes it itself.
        """
        if not self.seam or len(self._deque) < self._threshold:
            return False
        self._wake()
        return True

    def _wake(self) -> None:
        awaken = self._machinery._worker_awaken  # replaced by the SDK in a forked child
        if not awaken.is_set():
            awaken.set()

    def _emit_wrapped(self, item: T) -> None:
        """Add one item through the processor's public ``emit``."""
        self._emit(self._wrap(item))

    def drain_now(self) -> None:
        """Hand every waiting item to ``on_batch`` now (and wait until it has been)."""
        self._processor.force_flush()

    def shutdown(self) -> None:
        """Stop the worker (it hands over what is left first), then let go of ``on_batch``.

        Some SDK releases (1.41) keep every batch processor alive through a metrics
        callback, and with it whatever it exports to.
        """
        try:
            self._processor.shutdown()  # type: ignore[no-untyped-call]
        finally:
            self._drain._on_batch = None
