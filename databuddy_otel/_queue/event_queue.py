"""The event queue: the one owner of every event a client accepted and has not settled.

An event's way through it (docs/architecture.md draws the whole picture)::

    offer()  ── spool_dir? written ahead to disk ──► room reserved (or wait / refuse)
       ──► OpenTelemetry's batch queue ──► its worker (batch_size / batch_timeout)
       ──► Senders (several requests in flight) ──► Dispatch ──► Delivery (retries)
       ──► settle: the Ledger counts it, the spool forgets it, its room is given back

The queue and its worker thread are OpenTelemetry's batch processor machinery
(:mod:`databuddy_otel._queue.otel_batch`, the only module that touches the SDK's internals);
room and flush epochs are :mod:`databuddy_otel._queue.admission`'s.

A caller that finds the memory queue full waits while the server answers
(back-pressure; at most ``timeout`` + 1 s), and is refused at once while the
server is unreachable, on a thread running an event loop, or on one of the SDK's
own threads. With a spool, a full queue never refuses: the event waits on disk.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from databuddy_otel._queue.admission import SPOOLED_EPOCH, Queued, Room, SpoolFull, SpoolRef
from databuddy_otel._queue.dispatch import Dispatch
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._queue.otel_batch import BatchQueue
from databuddy_otel._queue.senders import Errors, Senders
from databuddy_otel._queue.settlement import Settlement
from databuddy_otel._runtime import exit_hooks
from databuddy_otel._runtime.config import Settings
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._runtime.state import State
from databuddy_otel._runtime.thread_roles import is_worker, may_wait
from databuddy_otel._wire.delivery import OUTAGE_GRACE, SHUTDOWN_MESSAGE, build_delivery
from databuddy_otel._wire.failure import Failure
from databuddy_otel.models import (
    EXPORT_ERROR,
    QUEUE_FULL,
    SHUTDOWN,
    BatchEventResponse,
    Stats,
)

if TYPE_CHECKING:
    from databuddy_otel._spool.spool import Spool

CLOSED_MESSAGE = "client is shut down"


#: Builds a :class:`Queued` on the ``track()`` path without the NamedTuple's own
#: constructor, a Python call that costs about 0.25 µs more per event.
_queued = tuple.__new__


def _body(item: Queued) -> str:
    return item.body


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
        self._room = Room(settings.max_queue_size)
        self._block = settings.on_queue_full == "block"
        self._wait_limit = settings.timeout + OUTAGE_GRACE
        self.delivery = build_delivery(
            settings, log=log, pool_size=settings.max_concurrent_requests + 2
        )
        self._reachability = self.delivery.reachability
        self._dispatch = Dispatch(self.delivery, self._settlement, spool, log)
        #: Sends on the caller's thread, past the queue (``batch()``, un-batched ``track()``).
        self.send_now = self._dispatch.send_now
        self._senders: Senders[Queued] = Senders(
            self._dispatch.deliver,
            self._settle,
            _body,
            max_threads=settings.max_concurrent_requests,
            log=log,
        )
        batching = settings.enable_batching
        self._batch: BatchQueue[Queued] = BatchQueue(
            self._senders.put,
            batch_size=settings.batch_size if batching else 1,
            delay_ms=settings.batch_timeout if batching else 1,
            max_size=settings.max_queue_size,
        )
        self._senders.feed_from(self._batch)
        self._put = self._batch.put
        self._close_lock = threading.Lock()
        self._close_result: BatchEventResponse | None = None
        if hasattr(os, "register_at_fork"):
            # Weakly: the hook must not keep a finished queue alive.
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: _call(after_fork))
        if spool is not None:
            spool.start(self)
        exit_hooks.register(self)

    def _after_fork(self) -> None:
        # OpenTelemetry empties the child's copy of its queue; everything else follows.
        self._room.reset()
        self._close_lock = threading.Lock()
        self._senders.reset_after_fork()
        self._ledger.reset_after_fork()
        self._reachability.reset()
        if self._spool is not None:
            self._spool.after_fork()

    # -- offering ------------------------------------------------------------
    def offer(
        self, body: str, name: str, event_id: str, caller_id: bool, *, wait: bool = True
    ) -> Failure | None:
        """Queue one serialized event: ``None`` when accepted, else why it was refused.

        A refusal is already counted and reported. ``wait=False``: never wait for room.
        """
        room = self._room
        ref = None
        if self._spool is not None and not room.closed:
            try:
                ref = self._spool.append(body, event_id, caller_id)
            except SpoolFull as full:
                return self._settlement.refuse(full.failure, event_id, name)
        with room.lock:
            epoch = room.admit()
            if epoch is not None:
                item: Queued = _queued(Queued, (body, name, event_id, caller_id, epoch, ref))
                try:
                    self._put(item)
                except Exception as exc:
                    return self._not_queued(exc, item)
                return None
        return self._offer_when_full(body, name, event_id, caller_id, ref, wait)

    def offer_spooled(
        self, body: str, name: str, event_id: str, caller_id: bool, ref: SpoolRef
    ) -> bool:
        """Take back an event waiting in the spool, if there is room now; never waits."""
        room = self._room
        with room.lock:
            if room.admit(SPOOLED_EPOCH) is None:
                return False
            item = Queued(body, name, event_id, caller_id, SPOOLED_EPOCH, ref)
            return self._hand_over(item) is None

    def _hand_over(self, item: Queued) -> Failure | None:
        """Under the room's lock, ``item`` admitted: hand it to the batch queue."""
        try:
            self._put(item)
        except Exception as exc:
            return self._not_queued(exc, item)
        return None

    def _not_queued(self, exc: Exception, item: Queued) -> Failure | None:
        """Under the room's lock: the batch queue refused ``item``; give its room back.

        An event written ahead to the spool waits there (``None``: it is not lost);
        one taken back from the spool is returned to it by the spool itself.
        """
        _, name, event_id, _, epoch, ref = item
        self._room.give_back(epoch)
        self._log.exception("Databuddy could not queue an event")
        if ref is not None and self._spool is not None:
            if epoch != SPOOLED_EPOCH:
                self._spool.defer([ref])
                return None
            return Failure(EXPORT_ERROR, "could not queue the event")
        message = f"could not queue the event: {type(exc).__name__}: {exc}"
        return self._settlement.refuse(Failure(EXPORT_ERROR, message), event_id, name)

    def _offer_when_full(
        self,
        body: str,
        name: str,
        event_id: str,
        caller_id: bool,
        ref: SpoolRef | None,
        wait: bool,
    ) -> Failure | None:
        room, spool = self._room, self._spool
        closed = Failure(SHUTDOWN, CLOSED_MESSAGE)
        if room.closed:
            if ref is not None and spool is not None:
                spool.ack([ref])  # refused, so never replayed
            return self._settlement.refuse_closed(closed, event_id, name)
        if ref is not None and spool is not None:
            spool.defer([ref])  # waits on disk until there is room
            return None
        down = self._reachability.down
        if wait and self._block and may_wait() and not down():
            with room.lock:
                if room.wait_for_room(time.monotonic() + self._wait_limit, down):
                    epoch = room.admit()
                    if epoch is not None:
                        item = Queued(body, name, event_id, caller_id, epoch, None)
                        return self._hand_over(item)
        if room.closed:
            return self._settlement.refuse_closed(closed, event_id, name)
        state = "the server is unreachable" if down() else "the worker is behind"
        message = f"queue full ({room.capacity} events): {state}; event dropped"
        return self._settlement.refuse(Failure(QUEUE_FULL, message), event_id, name)

    # -- settling (sender threads) --------------------------------------------
    def _settle(self, items: list[Queued], errors: Errors) -> None:
        try:
            self._settlement.settle(items, errors)
        finally:
            self._release(items)

    def _release(self, items: Sequence[Queued]) -> None:
        self._room.release(items)
        spool = self._spool
        if spool is not None and spool.waiting:
            spool.wake()  # room: the spool thread takes waiting events back

    # -- flush and close -------------------------------------------------------
    def flush(self, timeout: float) -> BatchEventResponse:
        """Send every event queued before this call; wait at most ``timeout`` seconds.

        With a spool, events waiting on disk are taken back and sent too.
        """
        if is_worker():
            return BatchEventResponse(
                False, error="flush() on the SDK's sending thread cannot wait for itself"
            )
        room, spool = self._room, self._spool
        if room.pending == 0 and (spool is None or spool.waiting == 0):
            return BatchEventResponse(True, 0, [])
        end = time.monotonic() + timeout
        collector = self._ledger.collect()
        try:
            with self._senders.hurry():
                left, spooled = self._send_all(end)
        finally:
            self._ledger.stop_collecting(collector)
        summary = BatchEventResponse.of(list(collector))
        if not left and not spooled:
            return summary
        message = f"flush timed out after {timeout:g}s; {left} event(s) still queued"
        if spooled:
            message += f", {spooled} waiting in the spool"
        return BatchEventResponse(False, summary.processed, summary.results, message)

    def release_settled(self) -> None:
        """The process is about to end without :meth:`close`: leave no spool file that
        holds nothing to send."""
        spool = self._spool
        if spool is not None:
            spool.release_settled()

    def _send_all(self, end: float) -> tuple[int, int]:
        """Send what is queued, and what waits in the spool, until ``end``.

        Returns how many events are still queued and still waiting on disk.
        """
        room, spool = self._room, self._spool
        while True:
            fed = 0 if spool is None else spool.feed(self, limit=self.room())
            epoch = room.new_epoch()
            self._batch.drain_now()  # hands every queued event to the senders
            left = room.wait_settled(epoch, end)
            spooled = 0 if spool is None else spool.waiting
            remaining = end - time.monotonic()
            if left or not spooled or remaining <= 0:
                return left, spooled
            if not fed:  # no room was free: wait for some before feeding again
                room.wait_a_little(min(0.05, remaining))

    def room(self) -> int:
        """Events the memory queue can take now."""
        return self._room.free

    def server_down(self) -> bool:
        return self._reachability.down()

    def close(self, timeout: float) -> BatchEventResponse:
        """Refuse new events, deliver the queued ones within ``timeout``, then stop.

        With a spool and a server that answers, the events waiting on disk are
        sent first. Idempotent; no new thread is started, so it works at
        interpreter exit. What is still undelivered then is reported as
        ``shutdown`` with its ids (with a spool, it stays there for the next start).
        """
        with self._close_lock:
            if self._close_result is None:
                self._close_result = self._close(timeout)
            return self._close_result

    def _close(self, timeout: float) -> BatchEventResponse:
        end = time.monotonic() + timeout
        lost_before = self._ledger.shutdown_losses()
        collector = self._ledger.collect()
        try:
            spool = self._spool
            if spool is not None:
                # Files of processes that ended since the last look (children of a
                # fork-per-job loop that crashed): delivered now rather than next start.
                spool.adopt()
            if spool is not None and spool.waiting and not self.server_down():
                # What waits on disk would survive, but a clean stop delivers it now.
                self._send_all(end)
            self._room.close()
            self._batch.drain_now()
            if not self._senders.help(end):
                self.delivery.stop()  # interrupts backoff waits
                self._senders.wait_in_flight(min(self.settings.timeout, end - time.monotonic()))
            left = self._senders.abandon(end)
            self._batch.shutdown()
            if left:
                self._settlement.abandon(left, SHUTDOWN_MESSAGE)
                self._release(left)
        except Exception as exc:
            self._log.exception("Databuddy shutdown failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")
        finally:
            self._room.close()
            self._ledger.stop_collecting(collector)
            self._room.finish()
            self.delivery.stop()
            self.delivery.transport.close()
            kept = 0 if self._spool is None else self._spool.close()
            exit_hooks.unregister(self)
        if kept:
            self._log.warning(
                "Databuddy shut down with %d event(s) not yet delivered, kept in the spool %s:"
                " the next client on that directory sends them",
                kept,
                self._spool.directory if self._spool is not None else "",
            )
        summary = BatchEventResponse.of(list(collector))
        lost = self._ledger.shutdown_losses() - lost_before
        if lost:
            self._log.warning(
                "Databuddy shut down with %d queued event(s) undelivered "
                "(raise shutdown_timeout, or flush earlier)",
                lost,
            )
        if summary.success and not lost:
            return summary
        error = f"shut down with {lost} queued event(s) undelivered" if lost else summary.error
        return BatchEventResponse(False, summary.processed, summary.results, error)

    @property
    def state(self) -> State:
        return self._room.state

    @property
    def closed(self) -> bool:
        return self._room.closed

    def stats(self) -> Stats:
        spool = self._spool
        return self._ledger.snapshot(
            queued=self._room.pending,
            spooled=0 if spool is None else spool.waiting,
            unspooled=0 if spool is None else spool.unspooled,
            reachable=not self._reachability.down(),
        )


def _call(method: weakref.WeakMethod[Any]) -> None:
    bound = method()
    if bound is not None:
        bound()
