"""The event queue: the one owner of every event a client accepted and has not settled.

An event's way through it (docs/architecture.md draws the whole picture)::

    offer()  ── spool_dir? written ahead to disk ──► room reserved (or wait / refuse)
       ──► OpenTelemetry's batch queue ──► its worker (batch_size / batch_timeout)
       ──► Senders (several requests in flight) ──► Delivery (retries)
       ──► settle: the Ledger counts it, the spool forgets it, its room is given back

The queue and its worker thread are OpenTelemetry's batch processor machinery
(:mod:`databuddy_otel.otel_batch`, the only module that touches the SDK's internals).

Room: at most ``max_queue_size`` events are in memory. A caller that finds it
full waits while the server answers (back-pressure; at most ``timeout`` + 1 s),
and is refused at once while the server is unreachable, on a thread running an
event loop, or on one of the SDK's own threads. With a spool, a full queue never
refuses: the event waits on disk.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from databuddy_otel import exit_hooks
from databuddy_otel.config import Settings
from databuddy_otel.delivery import (
    OUTAGE_GRACE,
    SHUTDOWN_MESSAGE,
    Delivery,
    Failure,
    Reachability,
    RetryPolicy,
)
from databuddy_otel.event import Prepared
from databuddy_otel.ledger import Ledger
from databuddy_otel.models import (
    EXPORT_ERROR,
    QUEUE_FULL,
    RETRIES_EXHAUSTED,
    SHUTDOWN,
    BatchEventResponse,
    EventResponse,
    Stats,
    Undelivered,
)
from databuddy_otel.otel_batch import BatchQueue
from databuddy_otel.protocol import Wire
from databuddy_otel.sdk_log import Log
from databuddy_otel.senders import Errors, Senders
from databuddy_otel.settlement import Item, Settlement
from databuddy_otel.thread_roles import is_worker, may_wait
from databuddy_otel.transport import RequestsTransport, SharedTransport

if TYPE_CHECKING:
    from databuddy_otel.spool import Spool, SpoolRef


class SpoolFull(Exception):
    """Raised by the spool when ``spool_max_bytes`` leaves no room for an event."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


CLOSED_MESSAGE = "client is shut down"


def _body(item: Item) -> str:
    return item[0]


class EventQueue:
    """Admission, queue, senders and settlement of one client's events; never raises."""

    def __init__(
        self, settings: Settings, *, ledger: Ledger, log: Log, spool: Spool | None
    ) -> None:
        self.settings = settings
        self._ledger = ledger
        self._log = log
        self._spool = spool
        self._settlement = Settlement(ledger, spool, log)
        self._capacity = settings.max_queue_size
        self._block = settings.on_queue_full == "block"
        self._wait_limit = settings.timeout + OUTAGE_GRACE
        transport = settings.transport or RequestsTransport(
            verify=settings.verify, pool_size=settings.max_concurrent_requests + 2
        )
        self._transport = SharedTransport(transport)
        self._reachability = Reachability(log)
        self.delivery = self.share_delivery(acquire=False)
        self._senders: Senders[Item] = Senders(
            self._deliver,
            self._settle,
            _body,
            max_threads=settings.max_concurrent_requests,
            log=log,
        )
        batching = settings.enable_batching
        self._batch: BatchQueue[Item] = BatchQueue(
            self._senders.put,
            batch_size=settings.batch_size if batching else 1,
            delay_ms=settings.batch_timeout_ms if batching else 1,
            max_size=settings.max_queue_size,
        )
        self._put = self._batch.put
        self._init_room()
        self._epoch = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._close_result: BatchEventResponse | None = None
        self._next_warning = 0.0
        if hasattr(os, "register_at_fork"):
            # Weakly: the hook must not keep a finished queue alive.
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: _call(after_fork))
        if spool is not None:
            spool.start(self)
        exit_hooks.register(self)

    def _init_room(self) -> None:
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._pending = 0
        #: unsettled events of the current flush epoch, and of older ones (-1: from the spool)
        self._current = 0
        self._open: dict[int, int] = {}

    def _after_fork(self) -> None:
        # OpenTelemetry empties the child's copy of its queue; everything else follows.
        self._init_room()
        self._close_lock = threading.Lock()
        self._senders.reset_after_fork()
        self._ledger.reset_after_fork()
        self._reachability.reset()
        if self._spool is not None:
            self._spool.after_fork()

    def share_delivery(self, *, acquire: bool = True) -> Delivery:
        """A delivery on this queue's transport and outage state, with a stop of its own.

        Exporters built with ``client=`` take one; their share of the transport
        keeps it open until they close it (``delivery.transport.close()``).
        """
        s = self.settings
        return Delivery(
            Wire(s.api_url, s.legacy, s.client_id, s.api_key),
            self._transport.acquire() if acquire else self._transport,
            log=self._log,
            timeout=s.timeout,
            policy=RetryPolicy(deadline=s.retry_deadline),
            reachability=self._reachability,
        )

    # -- offering ------------------------------------------------------------
    def offer(self, body: str, name: str, event_id: str, caller_id: bool) -> Failure | None:
        """Queue one serialized event: ``None`` when accepted, else why it was refused.

        A refusal is already counted and reported.
        """
        ref = None
        if self._spool is not None and not self._closed:
            try:
                ref = self._spool.append(body, event_id, caller_id)
            except SpoolFull as full:
                return self._refuse(full.failure, event_id, name)
        with self._lock:
            if not self._closed and self._pending < self._capacity:
                self._pending += 1
                self._current += 1
                try:
                    self._put((body, name, event_id, caller_id, self._epoch, ref))
                except Exception as exc:
                    return self._not_queued(
                        exc, (body, name, event_id, caller_id, self._epoch, ref)
                    )
                return None
        return self._offer_when_full(body, name, event_id, caller_id, ref)

    def offer_spooled(
        self, body: str, name: str, event_id: str, caller_id: bool, ref: SpoolRef
    ) -> bool:
        """Take back an event waiting in the spool, if there is room now; never waits."""
        with self._lock:
            if self._closed or self._pending >= self._capacity:
                return False
            # Epoch -1: every flush waits for events taken back from disk, old as they are.
            return self._enter(body, name, event_id, caller_id, ref, epoch=-1) is None

    def _enter(
        self,
        body: str,
        name: str,
        event_id: str,
        caller_id: bool,
        ref: SpoolRef | None,
        epoch: int | None = None,
    ) -> Failure | None:
        """Under the lock, with room: reserve it and hand the event to the batch queue."""
        if epoch is None:
            epoch = self._epoch
            self._current += 1
        else:
            self._open[epoch] = self._open.get(epoch, 0) + 1
        self._pending += 1
        item = (body, name, event_id, caller_id, epoch, ref)
        try:
            self._put(item)
        except Exception as exc:
            return self._not_queued(exc, item)
        return None

    def _not_queued(self, exc: Exception, item: Item) -> Failure:
        """Under the lock: the batch queue refused ``item``; give its room back, count it."""
        _, name, event_id, _, epoch, ref = item
        self._pending -= 1
        self._close_epoch(epoch, 1)
        message = f"could not queue the event: {type(exc).__name__}: {exc}"
        self._log.exception("Databuddy could not queue an event")
        self._ledger.count(EXPORT_ERROR, [Undelivered(event_id, name, EXPORT_ERROR, message)])
        if ref is not None and self._spool is not None:
            self._spool.ack([ref])
        return Failure(EXPORT_ERROR, message)

    def _offer_when_full(
        self, body: str, name: str, event_id: str, caller_id: bool, ref: SpoolRef | None
    ) -> Failure | None:
        if self._closed:
            if ref is not None and self._spool is not None:
                self._spool.ack([ref])  # refused, so never replayed
            return self._refuse(Failure(SHUTDOWN, CLOSED_MESSAGE), event_id, name)
        if ref is not None and self._spool is not None:
            self._spool.defer([ref])  # waits on disk until there is room
            return None
        reachability = self._reachability
        if self._block and may_wait() and not reachability.down():
            with self._lock:
                end = time.monotonic() + self._wait_limit
                while not self._closed and self._pending >= self._capacity:
                    now = time.monotonic()
                    if now >= end or reachability.down(now):
                        break
                    self._room.wait(min(0.05, end - now))
                else:
                    if not self._closed:
                        return self._enter(body, name, event_id, caller_id, None)
            if self._closed:
                return self._refuse(Failure(SHUTDOWN, CLOSED_MESSAGE), event_id, name)
        down = reachability.down()
        state = "the server is unreachable" if down else "the worker is behind"
        failure = Failure(
            QUEUE_FULL, f"queue full ({self._capacity} events): {state}; event dropped"
        )
        return self._refuse(failure, event_id, name)

    def _refuse(self, failure: Failure, event_id: str, name: str) -> Failure:
        self._ledger.count(failure.reason, [Undelivered(event_id, name, *failure)])
        now = time.monotonic()
        if now >= self._next_warning:  # one warning per interval, not one per event
            self._next_warning = now + 10.0
            self._log.warning(
                "Databuddy event not queued: %s (%d %s so far)",
                failure.message,
                self._ledger.undelivered[failure.reason],
                failure.reason,
            )
        return failure

    # -- sending and settling (sender threads) ------------------------------
    def _deliver(
        self, items: list[Item], deadline: float | None, *, single: bool = False
    ) -> Errors:
        if not items:
            return []
        try:
            errors = self.delivery.send([i[0] for i in items], single=single, deadline=deadline)
        except Exception as exc:
            self._log.exception("Databuddy could not send %d event(s)", len(items))
            return [Failure(EXPORT_ERROR, f"send failed: {type(exc).__name__}")] * len(items)
        if deadline is not None:  # cut short by shutdown, not by the retry deadline
            errors = [
                Failure(SHUTDOWN, f"{SHUTDOWN_MESSAGE} (last error: {e.message})")
                if e is not None and e.reason == RETRIES_EXHAUSTED
                else e
                for e in errors
            ]
        return errors

    def _deliver_all(self, items: list[Item], *, single: bool) -> Errors:
        """Any number of events, in request-sized chunks, on this thread; never raises."""
        try:
            return self.delivery.send([item[0] for item in items], single=single)
        except Exception as exc:
            self._log.exception("Databuddy could not send %d event(s)", len(items))
            return [Failure(EXPORT_ERROR, f"send failed: {type(exc).__name__}")] * len(items)

    def _settle(self, items: list[Item], errors: Errors) -> None:
        try:
            self._settlement.settle(items, errors)
        finally:
            self._release(items)

    def send_now(self, events: Sequence[Prepared], *, single: bool) -> list[EventResponse]:
        """Send on this thread, past the queue (``batch()``, un-batched ``track()``).

        With a spool the events are written ahead first, and those the server
        could not take wait there for a later attempt.
        """
        spool = self._spool
        items: list[Item] = []
        refused: dict[int, EventResponse] = {}
        for n, (body, name, event_id, caller_id) in enumerate(events):
            try:
                ref = None if spool is None else spool.append(body, event_id, caller_id)
            except SpoolFull as full:
                self._refuse(full.failure, event_id, name)
                refused[n] = EventResponse(False, event_id, full.failure.message)
                continue
            items.append((body, name, event_id, caller_id, -1, ref))
        errors = self._deliver_all(items, single=single)
        sent = iter(self._settlement.responses(items, errors))
        return [refused[n] if n in refused else next(sent) for n in range(len(events))]

    def _release(self, items: Sequence[Item]) -> None:
        with self._lock:
            self._pending = max(0, self._pending - len(items))
            current, same = self._epoch, 0
            for item in items:
                if item[4] == current:
                    same += 1
                else:
                    self._close_epoch(item[4], 1)
            self._current -= same
            self._room.notify_all()
        spool = self._spool
        if spool is not None and spool.waiting:
            spool.wake()  # room: the spool thread takes waiting events back

    def _close_epoch(self, epoch: int, count: int) -> None:
        if epoch == self._epoch:
            self._current -= count
            return
        left = self._open.get(epoch, 0) - count
        if left > 0:
            self._open[epoch] = left
        else:
            self._open.pop(epoch, None)

    # -- flush and close -------------------------------------------------------
    def flush(self, timeout: float) -> BatchEventResponse:
        """Send every event queued before this call; wait at most ``timeout`` seconds.

        With a spool, events waiting on disk are taken back and sent too.
        """
        if is_worker():
            return BatchEventResponse(
                False, error="flush() on the SDK's sending thread cannot wait for itself"
            )
        spool = self._spool
        if self._pending == 0 and (spool is None or spool.waiting == 0):
            return BatchEventResponse(True, 0, [])
        end = time.monotonic() + timeout
        collector = self._ledger.collect()
        try:
            while True:
                fed = 0 if spool is None else spool.feed(self, limit=self.room())
                with self._lock:
                    epoch = self._epoch
                    if self._current:
                        self._open[epoch] = self._current
                        self._current = 0
                    self._epoch += 1
                self._batch.drain_now()  # hands every queued event to the senders
                with self._lock:
                    while any(e <= epoch for e in self._open):
                        remaining = end - time.monotonic()
                        if remaining <= 0:
                            break
                        self._room.wait(remaining)
                    left = sum(n for e, n in self._open.items() if e <= epoch)
                spooled = 0 if spool is None else spool.waiting
                remaining = end - time.monotonic()
                if left or not spooled or remaining <= 0:
                    break
                if not fed:  # no room was free: wait for some before feeding again
                    with self._lock:
                        self._room.wait(min(0.05, remaining))
        finally:
            self._ledger.stop_collecting(collector)
        summary = BatchEventResponse.of(list(collector))
        if not left and not spooled:
            return summary
        message = f"flush timed out after {timeout:g}s; {left} event(s) still queued"
        if spooled:
            message += f", {spooled} waiting in the spool"
        return BatchEventResponse(False, summary.processed, summary.results, message)

    def room(self) -> int:
        """Events the memory queue can take now."""
        return 0 if self._closed else max(0, self._capacity - self._pending)

    def server_down(self) -> bool:
        return self._reachability.down()

    def close(self, timeout: float) -> BatchEventResponse:
        """Refuse new events, deliver the queued ones within ``timeout``, then stop.

        Idempotent; no new thread is started, so it works at interpreter exit.
        What is still undelivered then is reported as ``shutdown`` with its ids
        (with a spool, it stays there for the next start instead).
        """
        with self._close_lock:
            if self._close_result is None:
                self._close_result = self._close(timeout)
            return self._close_result

    def _close(self, timeout: float) -> BatchEventResponse:
        end = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._room.notify_all()
        lost_before = self._ledger.undelivered[SHUTDOWN]
        collector = self._ledger.collect()
        try:
            self._batch.drain_now()
            if not self._senders.help(end):
                self.delivery.stop()  # interrupts backoff waits
                self._senders.wait_in_flight(min(self.settings.timeout, 1.0))
            left = self._senders.abandon()
            self._batch.shutdown()
            self._report_left(left)
        except Exception as exc:
            self._log.exception("Databuddy shutdown failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")
        finally:
            self._ledger.stop_collecting(collector)
            self.delivery.stop()
            self._transport.close()
            if self._spool is not None:
                self._spool.close()
            exit_hooks.unregister(self)
        summary = BatchEventResponse.of(list(collector))
        lost = self._ledger.undelivered[SHUTDOWN] - lost_before
        if lost:
            self._log.warning("Databuddy shut down with %d event(s) undelivered", lost)
        if summary.success and not lost:
            return summary
        error = f"shut down with {lost} event(s) undelivered" if lost else summary.error
        return BatchEventResponse(False, summary.processed, summary.results, error)

    def _report_left(self, left: list[Item]) -> None:
        if left:
            self._settlement.abandon(left, SHUTDOWN_MESSAGE)
            self._release(left)

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> Stats:
        spool = self._spool
        return self._ledger.snapshot(
            queued=self._pending,
            spooled=0 if spool is None else spool.waiting,
            unspooled=0 if spool is None else spool.unspooled,
            reachable=not self._reachability.down(),
        )


def _call(method: weakref.WeakMethod[Any]) -> None:
    bound = method()
    if bound is not None:
        bound()
