"""OpenTelemetry's batch processor machinery, used as the event queue's queue and worker.

This is the only module that touches ``opentelemetry-sdk`` internals. The SDK's
``BatchLogRecordProcessor`` keeps its records in a shared batch machinery
(``_batch_processor``: a deque, one worker thread woken by a timer or when
``max_export_batch_size`` records wait, fork handling, ``force_flush``). The
queue reuses all of it, and adds items by appending to that deque as ``emit``
does, without ``on_emit``'s per-record copy and wrapper (about 3 µs) and without
``emit``'s own checks: room is the event queue's business, the shutdown order
is its own, and a forked child's copy is emptied by the SDK's at-fork hook.

The versions this works with are pinned in pyproject.toml and checked by
tests/test_event_queue.py; an SDK without the machinery is refused at
construction with a clear error.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from databuddy_otel.quiet_threads import quiet_fork_hooks, quiet_start

T = TypeVar("T")


class _Drain(Generic[T]):
    """What the worker exports to: each batch goes to ``on_batch`` (which must not block)."""

    def __init__(self, on_batch: Callable[[Sequence[T]], None]) -> None:
        self._on_batch: Callable[[Sequence[T]], None] | None = on_batch

    def export(self, batch: Sequence[T]) -> None:
        on_batch = self._on_batch
        if on_batch is not None:
            on_batch(batch)

    def shutdown(self) -> None:
        pass


class BatchQueue(Generic[T]):
    """Items in, batches out to ``on_batch`` on the worker thread (or on a flushing thread)."""

    def __init__(
        self,
        on_batch: Callable[[Sequence[T]], None],
        *,
        batch_size: int,
        delay_ms: float,
        max_size: int,
    ) -> None:
        self._drain: _Drain[T] = _Drain(on_batch)
        with quiet_start():  # its worker thread starts here
            self._processor = BatchLogRecordProcessor(
                self._drain,  # type: ignore[arg-type]
                schedule_delay_millis=delay_ms,
                max_export_batch_size=batch_size,
                max_queue_size=max_size,
            )
        quiet_fork_hooks()  # and again in a forked child, from its at-fork hook
        machinery: Any = getattr(self._processor, "_batch_processor", None)
        if not callable(getattr(machinery, "emit", None)):
            self._processor.shutdown()  # type: ignore[no-untyped-call]
            raise RuntimeError(
                "this opentelemetry-sdk has no shared batch machinery; "
                "install a version pyproject.toml allows (opentelemetry-sdk>=1.39)"
            )
        self._machinery = machinery
        deque = getattr(machinery, "_queue", None)
        awaken = getattr(machinery, "_worker_awaken", None)
        if isinstance(deque, collections.deque) and isinstance(awaken, threading.Event):
            self._deque: collections.deque[T] = deque
            self._threshold = batch_size
            self.put: Callable[[T], None] = self._append
        else:  # a layout this module does not know: the SDK's own emit
            self.put = machinery.emit

    def _append(self, item: T) -> None:
        """Add one item (the caller has made room for it); wake the worker on a full batch."""
        deque = self._deque
        deque.appendleft(item)  # the worker pops from the right: oldest first
        if len(deque) >= self._threshold:
            awaken = self._machinery._worker_awaken  # replaced by the SDK in a forked child
            if not awaken.is_set():
                awaken.set()

    def drain_now(self) -> None:
        """Hand every waiting item to ``on_batch`` now, on this thread."""
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
