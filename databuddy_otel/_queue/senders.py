"""Senders: the threads that carry queued events to the server, several requests at a time.

The queue's worker hands over events with :meth:`Senders.put`. Up to
``max_concurrent_requests`` sender threads each take a request's worth (up to
100 events and 1 MiB, oldest first: with a backlog every request is full) and
deliver it; one chunk's retries and backoff never hold up the others.

Requests stay full: while another request is in flight, or when the last one
started less than :data:`PARTIAL_WAIT` ago, a sender waits for a full chunk (or
at most that long) rather than send a few events, since each request costs about
the same CPU, under the GIL, whatever it carries. So a steady stream goes out in
at most ten requests a second per process, each as full as the stream fills it in
that time, while an event after a quiet spell leaves at once; a flush or a close
(:meth:`Senders.hurry`) waits for nothing. During that pace the queue's worker is
held back too (:class:`Upstream`): a batch it handed over would only wait here, and
each of its wake-ups costs the application a GIL hand-off. The sender that waits
for the pace wakes the worker when the pace ends, so a held batch goes then.

How many requests are in flight follows the link. While every recent request
took :data:`SLOW_REQUEST` or more (the shortest of the last few: a request can
look slow for a moment while it waits for the GIL, never for all of them), a
full chunk waiting with no sender idle starts another sender, up to
``max_concurrent_requests``; so does a backlog behind requests stuck retrying for
:data:`STUCK_REQUEST`. Once the link is fast again, extra senders end. A server
that answers at once is served best by one sender: more threads would only
compete with the application for the GIL. One far away (20 to 150 ms over the
internet) gets several full requests in flight.

A thread that has to finish the work itself (the exit flush, where Python 3.12
refuses to start threads) takes chunks with :meth:`Senders.help`. At the end of
a shutdown, :meth:`Senders.abandon` hands back what is still waiting or in
flight, and a result that arrives later for an abandoned chunk is ignored, so
no event is both reported lost and counted as delivered.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Optional, Protocol, TypeVar

from databuddy_otel._event.limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel._runtime.quiet_threads import quiet_start
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._runtime.thread_roles import mark_worker
from databuddy_otel._wire.delivery import take_chunk
from databuddy_otel._wire.failure import Failure

Item = TypeVar("Item", bound=Sequence[Any])
Errors = list[Optional[Failure]]

#: Seconds an idle sender waits for work before it checks again.
_IDLE_WAIT = 5.0
#: How long a sender waits for a full chunk while another request is in flight or
#: the last one started this recently: at most ten partial requests a second.
PARTIAL_WAIT = 0.1
#: Requests that all took this long are waiting on the network, not on the GIL
#: (whose switch interval is 5 ms): another sender may start beside them.
SLOW_REQUEST = 0.02
#: A request out this long is stuck retrying: the chunks behind it get a sender.
STUCK_REQUEST = 1.0
#: How many recent request times the link's speed is judged by.
_RECENT = 8


class Upstream(Protocol):
    """Where the events come from: a queue whose worker the senders may hold back."""

    #: Until this time (``time.monotonic()``) the queue wakes its worker only for a full
    #: request: fewer events would only wait in the senders' list for the pace.
    hold_until: float

    def wake_if_due(self) -> bool:
        """Wake the worker if a batch waits; ``True`` if it did."""


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
        self._upstream: Upstream | None = None
        self._init_state()

    def feed_from(self, upstream: Upstream) -> None:
        """Hold ``upstream``'s worker back while partial requests wait for the pace."""
        self._upstream = upstream

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ready: deque[Item] = deque()
        self._in_flight: dict[int, list[Item]] = {}
        self._newest_start = 0.0  # when the newest request in flight started
        self._hold_pending = False  # the upstream is held back until that start's pace ends
        self._release = False  # the hold's end woke the upstream: its batch goes at once
        self._hurry = 0  # flushes and closes waiting: no partial chunk waits
        self._recent: deque[float] = deque(maxlen=_RECENT)  # how long the last requests took
        self._next_token = 0
        self._workers: list[threading.Thread] = []
        self._threads = 0
        self._idle = 0
        self._closed = False
        self._pid = os.getpid()

    def reset_after_fork(self) -> None:
        """A forked child starts empty: the parent sends what it had."""
        self._init_state()
        if self._upstream is not None:
            self._upstream.hold_until = 0.0  # no sender here yet to end the parent's hold

    # -- feeding -----------------------------------------------------------
    def put(self, items: Sequence[Item]) -> None:
        """Add events to send (oldest first); wake or start a sender."""
        if self._pid != os.getpid():
            self.reset_after_fork()
        with self._lock:
            ready = self._ready
            was_empty = not ready
            ready.extend(items)
            if self._idle:
                # A sender waiting on a partial chunk wakes by itself when its pace ends.
                if was_empty or len(ready) >= MAX_EVENTS_PER_REQUEST:
                    self._changed.notify()
                return
            start = self._threads == 0 or self._needs_another()
            if start:
                self._threads += 1
        if start:
            self._start_thread()

    def _slow_link(self) -> bool:
        """Under the lock: every recent request took :data:`SLOW_REQUEST` or more."""
        recent = self._recent
        return bool(recent) and min(recent) >= SLOW_REQUEST

    def _needs_another(self) -> bool:
        """Under the lock: a full chunk waits, none is idle, and the requests are slow."""
        if self._threads >= self._max_threads or self._closed or self._idle:
            return False
        if len(self._ready) < MAX_EVENTS_PER_REQUEST:
            return False
        return self._slow_link() or time.monotonic() - self._newest_start >= STUCK_REQUEST

    def _start_thread(self) -> None:
        try:
            thread = threading.Thread(target=self._run, name="databuddy-sender", daemon=True)
            with quiet_start():
                thread.start()
            self._workers.append(thread)
        except RuntimeError:
            # No new threads at interpreter shutdown: the exit flush helps instead.
            with self._lock:
                self._threads -= 1

    # -- sending -----------------------------------------------------------
    def _take(self) -> tuple[int, list[Item]] | None:
        """Under the lock: the oldest events that fit one request, registered in flight."""
        ready = self._ready
        if not ready:
            return None
        chunk = take_chunk(ready, self._body_of)
        token = self._next_token
        self._next_token += 1
        self._in_flight[token] = chunk
        now = self._newest_start = time.monotonic()
        if self._upstream is not None:
            self._upstream.hold_until = now + PARTIAL_WAIT
            self._hold_pending = True
        return token, chunk

    def _run(self) -> None:
        mark_worker()
        lock = self._lock
        while True:
            with lock:
                if not self._wait_for_work() or (self._threads > 1 and self._fast_again()):
                    self._threads -= 1
                    return
                taken = self._take()
                # A slow link with a backlog: one more sender for the chunks still waiting.
                another = self._needs_another()
                if another:
                    self._threads += 1
            if another:
                self._start_thread()
            if taken is not None:
                self._send(taken, None)

    def _fast_again(self) -> bool:
        """Under the lock: the link answers fast again, so extra senders may end."""
        recent = self._recent
        return len(recent) == _RECENT and max(recent) < SLOW_REQUEST

    def _wait_for_work(self) -> bool:
        """Under the lock: wait until a chunk is due; ``False`` when closed and idle."""
        partial_since: float | None = None
        while True:
            ready = self._ready
            if ready:
                if len(ready) >= MAX_EVENTS_PER_REQUEST or self._hurry or self._closed:
                    return True
                if self._release:
                    self._release = False
                    return True
                now = time.monotonic()
                if partial_since is None:
                    partial_since = now
                waited = now - partial_since
                since_start = now - self._newest_start
                if waited >= PARTIAL_WAIT or (not self._in_flight and since_start >= PARTIAL_WAIT):
                    return True
                timeout = PARTIAL_WAIT - waited
                if not self._in_flight:
                    timeout = min(timeout, PARTIAL_WAIT - since_start)
            elif self._closed:
                return False
            else:
                partial_since, timeout = None, _IDLE_WAIT
                if self._hold_pending:
                    timeout = self._newest_start + PARTIAL_WAIT - time.monotonic()
                    if timeout <= 0:
                        self._end_hold()
                        timeout = _IDLE_WAIT
            self._idle += 1
            self._changed.wait(timeout)
            self._idle -= 1

    def _end_hold(self) -> None:
        """Under the lock, the pace over: wake the upstream's worker if a batch waits there."""
        self._hold_pending = False
        upstream = self._upstream
        if upstream is not None and upstream.wake_if_due():
            self._release = True

    def _send(self, taken: tuple[int, list[Item]], deadline: float | None) -> None:
        token, chunk = taken
        started = time.monotonic()
        errors = self._deliver(chunk, deadline)
        with self._lock:
            self._recent.append(time.monotonic() - started)
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

    @contextlib.contextmanager
    def hurry(self) -> Iterator[None]:
        """While a flush waits for the events queued before it: partial chunks go at once."""
        with self._lock:
            self._hurry += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._hurry -= 1

    def wait_in_flight(self, timeout: float) -> None:
        """Wait up to ``timeout`` for requests already in flight to finish."""
        end = time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def abandon(self, deadline: float) -> list[Item]:
        """Stop: return every event still waiting or in flight; later results are ignored.

        Idle threads end at once; one stuck in a request is waited for until
        ``deadline`` at most (its request's own deadline ends it soon after).
        """
        with self._lock:
            self._closed = True
            left = [item for chunk in self._in_flight.values() for item in chunk]
            left.extend(self._ready)
            self._in_flight.clear()
            self._ready.clear()
            self._changed.notify_all()
        end = max(deadline, time.monotonic() + 0.05)
        for thread in self._workers:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))
        return left
