"""Bookkeeping for queued events: capacity, counters, deduplication, reports.

The ledger is what makes a full queue or a lost event visible. OpenTelemetry's
batch processor evicts its oldest record, silently, when its queue is full;
the client therefore never lets more events in than the queue holds
(:meth:`Ledger.admit`), and every event that leaves the queue is settled here
(:meth:`Ledger.settle`) as delivered or undelivered with a reason.

Back-pressure versus outage: while the server answers, a caller that finds the
queue full waits for the worker to make room (nothing lost). Once attempts have
been failing (or hanging) for :data:`OUTAGE_GRACE` seconds without a success,
waiting would stall the application for a whole retry deadline, so a caller
that finds the queue full is refused at once and the event is counted as
``queue_full``. A single failed request does not count as an outage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from databuddy_otel.delivery import Failure
from databuddy_otel.models import EventResponse, Undelivered

logger = logging.getLogger("databuddy")

#: Seconds of attempts without reaching the server after which it counts as down.
OUTAGE_GRACE = 1.0


@dataclass(frozen=True)
class Stats:
    """A snapshot of the client's counters.

    ``queued`` is in the queue or being sent now; ``delivered`` was accepted by
    the server; ``undelivered`` counts, by reason, every event that never will be;
    ``deduplicated`` counts events skipped because their ``eventId`` was
    already delivered; ``filtered`` those a middleware dropped on purpose;
    ``reachable`` is ``False`` while the last attempt to reach the server failed.
    """

    queued: int
    delivered: int
    undelivered: dict[str, int] = field(default_factory=dict)
    deduplicated: int = 0
    filtered: int = 0
    reachable: bool = True


class Ledger:
    def __init__(
        self,
        *,
        capacity: int,
        block_timeout: float,
        block: bool = True,
        dedup_size: int = 10_000,
        on_undelivered: Callable[[list[Undelivered]], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.capacity = capacity
        self.block_timeout = block_timeout
        self.block = block
        self.dedup_size = dedup_size
        self.on_undelivered = on_undelivered
        self._log = log or logger
        #: Asked before a caller waits for room; ``False`` refuses at once instead
        #: (the client says no on a thread running an event loop).
        self.may_wait: Callable[[], bool] = lambda: True
        self._trying_since: float | None = None
        self.delivered = 0
        self.undelivered: Counter[str] = Counter()
        self.deduplicated = 0
        self.filtered = 0
        self._pending = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._delivered_ids: dict[str, None] = {}
        self._inflight_ids: set[str] = set()
        self._collectors: list[list[EventResponse]] = []
        if hasattr(os, "register_at_fork"):
            # Weakly: the fork hook must not keep every ledger ever made alive.
            after_fork = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: _call(after_fork))

    def _after_fork(self) -> None:
        # OpenTelemetry empties the child's copy of the queue; ours follows.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending = 0
        self._waiting = 0
        self._inflight_ids.clear()
        self._collectors = []
        self._trying_since = None

    @property
    def pending(self) -> int:
        return self._pending

    def admit(self) -> bool:
        """Reserve room for one event; ``False`` means the queue stays full."""
        with self._lock:
            if self._pending < self.capacity:
                self._pending += 1
                return True
            if not self.block or self.server_down() or not self.may_wait():
                return False
            self._waiting += 1
            try:
                end = time.monotonic() + self.block_timeout
                while self._pending >= self.capacity:
                    now = time.monotonic()
                    if now >= end or self.server_down(now):
                        return False
                    self._cond.wait(min(0.05, end - now))
                self._pending += 1
                return True
            finally:
                self._waiting -= 1

    def release(self, count: int) -> None:
        """Give back room reserved by :meth:`admit` for events never queued."""
        with self._lock:
            self._pending = max(0, self._pending - count)
            if self._waiting:
                self._cond.notify_all()

    # -- health (see delivery.Health) ------------------------------------
    def attempt_started(self) -> None:
        if self._trying_since is None:
            self._trying_since = time.monotonic()

    def attempt_finished(self, reached: bool) -> None:
        if reached:
            if self._trying_since is not None and self.server_down():
                self._log.info("Databuddy server reachable again")
            self._trying_since = None

    def server_down(self, now: float | None = None) -> bool:
        """True once attempts have gone :data:`OUTAGE_GRACE` s without reaching the server."""
        since = self._trying_since
        if since is None:
            return False
        return (time.monotonic() if now is None else now) - since >= OUTAGE_GRACE

    # -- deduplication -------------------------------------------------
    def claim(self, event_id: str) -> bool:
        """Take a caller-chosen id for a new event.

        ``False`` when an event with this id was delivered or is on its way
        (counted as deduplicated); the id is remembered as delivered only once
        its event is, so a failed event can be tracked again.
        """
        with self._lock:
            if event_id in self._delivered_ids or event_id in self._inflight_ids:
                self.deduplicated += 1
                return False
            self._inflight_ids.add(event_id)
            return True

    def unclaim(self, event_id: str) -> None:
        """Forget a claimed id whose event was never queued."""
        with self._lock:
            self._inflight_ids.discard(event_id)

    def _remember(self, event_id: str) -> None:
        ids = self._delivered_ids
        ids[event_id] = None
        if len(ids) > self.dedup_size:
            del ids[next(iter(ids))]

    # -- settling ------------------------------------------------------
    def settle(
        self,
        events: Sequence[tuple[str | None, str | None, bool]],
        errors: Sequence[Failure | None],
        *,
        queued: bool = True,
    ) -> None:
        """Record the fate of ``events`` (id, name, caller-chosen id) in order.

        ``errors[i]`` is ``None`` when event ``i`` was delivered, else why not.
        ``queued`` events give their room back to the queue.
        """
        lost: list[Undelivered] = []
        delivered = 0
        with self._lock:
            for (event_id, name, caller_id), error in zip(events, errors):
                if caller_id and event_id is not None:
                    self._inflight_ids.discard(event_id)
                    if error is None:
                        self._remember(event_id)
                if error is None:
                    delivered += 1
                else:
                    lost.append(Undelivered(event_id, name, error.reason, error.message))
            self.delivered += delivered
            for item in lost:
                self.undelivered[item.reason] += 1
        if self._collectors:
            responses = [
                EventResponse(e is None, ev[0], None if e is None else e.message)
                for ev, e in zip(events, errors)
            ]
            for collector in list(self._collectors):
                collector.extend(responses)
        if queued:
            self.release(len(events))
        if lost:
            self.report(lost)

    def report(self, lost: list[Undelivered]) -> None:
        """Hand undelivered events to the callback; a failing callback is logged."""
        callback = self.on_undelivered
        if callback is None:
            return
        try:
            callback(lost)
        except Exception:
            self._log.exception("on_undelivered callback failed")

    def count(self, reason: str, lost: Iterable[Undelivered] = (), *, number: int = 0) -> None:
        """Count events that will not be delivered (``number`` of them, or ``lost``)."""
        items = list(lost)
        with self._lock:
            self.undelivered[reason] += number or len(items)
        if items:
            self.report(items)

    def count_filtered(self) -> None:
        with self._lock:
            self.filtered += 1

    def collect(self) -> list[EventResponse]:
        collector: list[EventResponse] = []
        self._collectors.append(collector)
        return collector

    def stop_collecting(self, collector: list[EventResponse]) -> None:
        with contextlib.suppress(ValueError):
            self._collectors.remove(collector)

    def snapshot(self) -> Stats:
        return Stats(
            queued=self._pending,
            delivered=self.delivered,
            undelivered=dict(self.undelivered),
            deduplicated=self.deduplicated,
            filtered=self.filtered,
            reachable=not self.server_down(),
        )


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()
