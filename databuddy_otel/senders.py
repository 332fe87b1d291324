"""Senders: the threads that carry queued events to the server, several requests at a time.

The queue's worker hands over events with :meth:`Senders.put`. Up to
``max_concurrent_requests`` sender threads each take a request's worth (up to
100 events and 1 MiB, oldest first: with a backlog every request is full) and
deliver it; one chunk's retries and backoff never hold up the others. Threads
start on demand, so a quiet client keeps one.

A thread that has to finish the work itself (the exit flush, where Python 3.12
refuses to start threads) takes chunks with :meth:`Senders.help`. At the end of
a shutdown, :meth:`Senders.abandon` hands back what is still waiting or in
flight, and a result that arrives later for an abandoned chunk is ignored, so
no event is both reported lost and counted as delivered.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, Optional, TypeVar

from databuddy_otel.delivery import Failure
from databuddy_otel.limits import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from databuddy_otel.sdk_log import Log
from databuddy_otel.thread_roles import mark_worker

Item = TypeVar("Item", bound=Sequence[Any])
Errors = list[Optional[Failure]]

#: Seconds an idle sender waits for work before it checks again.
_IDLE_WAIT = 5.0


class Senders(Generic[Item]):
    """A pool of sender threads fed from one list of waiting events.

    ``deliver(items, deadline)`` sends one chunk and returns one error per item
    (``None`` when delivered); ``settle(items, errors)`` records the outcome.
    Neither may raise. ``body_of(item)`` is the item's serialized event.
    """

    def __init__(
        self,
        deliver: Callable[[list[Item], Optional[float]], Errors],
        settle: Callable[[list[Item], Errors], None],
        body_of: Callable[[Item], str],
        *,
        max_threads: int,
        log: Log,
    ) -> None:
        self._deliver = deliver
        self._settle = settle
        self._body_of = body_of
        self._max_threads = max_threads
        self._log = log
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ready: deque[Item] = deque()
        self._in_flight: dict[int, list[Item]] = {}
        self._next_token = 0
        self._workers: list[threading.Thread] = []
        self._threads = 0
        self._idle = 0
        self._closed = False
        self._pid = os.getpid()

    def reset_after_fork(self) -> None:
        """A forked child starts empty: the parent sends what it had."""
        self._init_state()

    # -- feeding -----------------------------------------------------------
    def put(self, items: Sequence[Item]) -> None:
        """Add events to send (oldest first); wake or start a sender."""
        if self._pid != os.getpid():
            self.reset_after_fork()
        start = False
        with self._lock:
            self._ready.extend(items)
            if self._idle:
                self._changed.notify()
            elif self._threads < self._max_threads and not self._closed:
                self._threads += 1
                start = True
        if start:
            self._start_thread()

    def _start_thread(self) -> None:
        try:
            thread = threading.Thread(target=self._run, name="databuddy-sender", daemon=True)
            thread.start()
            self._workers.append(thread)
        except RuntimeError:
            # No new threads at interpreter shutdown: the exit flush helps instead.
            with self._lock:
                self._threads -= 1

    @property
    def waiting(self) -> int:
        """Events waiting for a sender."""
        return len(self._ready)

    def idle(self) -> bool:
        """Nothing waiting and nothing in flight."""
        with self._lock:
            return not self._ready and not self._in_flight

    # -- sending -----------------------------------------------------------
    def _take(self) -> tuple[int, list[Item]] | None:
        """Under the lock: the oldest events that fit one request, registered in flight."""
        ready = self._ready
        if not ready:
            return None
        chunk: list[Item] = []
        size = 2
        while ready and len(chunk) < MAX_EVENTS_PER_REQUEST:
            extra = len(self._body_of(ready[0])) + 1
            if chunk and size + extra > MAX_BODY_BYTES:
                break
            chunk.append(ready.popleft())
            size += extra
        token = self._next_token
        self._next_token += 1
        self._in_flight[token] = chunk
        return token, chunk

    def _run(self) -> None:
        mark_worker()
        lock = self._lock
        while True:
            with lock:
                taken = self._take()
                while taken is None:
                    if self._closed:
                        self._threads -= 1
                        return
                    self._idle += 1
                    self._changed.wait(_IDLE_WAIT)
                    self._idle -= 1
                    taken = self._take()
            self._send(taken, None)

    def _send(self, taken: tuple[int, list[Item]], deadline: float | None) -> None:
        token, chunk = taken
        errors = self._deliver(chunk, deadline)
        with self._lock:
            mine = self._in_flight.pop(token, None) is not None
            self._changed.notify_all()
        if mine:
            self._settle(chunk, errors)

    def help(self, deadline: float) -> bool:
        """Send waiting events on this thread until none wait or are in flight, or ``deadline``.

        ``True`` when everything was settled in time.
        """
        while True:
            with self._lock:
                taken = self._take()
                if taken is None:
                    if not self._in_flight:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._changed.wait(min(remaining, 0.05))
                    continue
            if time.monotonic() >= deadline:
                with self._lock:  # give the chunk back untouched
                    self._in_flight.pop(taken[0], None)
                    self._ready.extendleft(reversed(taken[1]))
                return False
            self._send(taken, deadline)

    def wait_in_flight(self, timeout: float) -> None:
        """Wait up to ``timeout`` for requests already in flight to finish."""
        end = time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def abandon(self) -> list[Item]:
        """Stop: return every event still waiting or in flight; later results are ignored."""
        with self._lock:
            self._closed = True
            left = [item for chunk in self._in_flight.values() for item in chunk]
            left.extend(self._ready)
            self._in_flight.clear()
            self._ready.clear()
            self._changed.notify_all()
        end = time.monotonic() + 0.5  # idle ones end at once; one stuck in a request may not
        for thread in self._workers:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))
        return left
