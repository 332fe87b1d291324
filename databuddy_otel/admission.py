"""Admission: room in the memory queue, counted per flush epoch.

At most ``capacity`` events are in memory (queued or being sent). Each carries
the flush epoch it entered in; ``flush()`` starts a new epoch and waits until
every event of the older ones is settled, so events tracked while it waits do
not hold it up. Events taken back from the spool enter epoch -1: every flush
waits for them, however old they are.

The queue's hot path reads and bumps ``pending``, ``current`` and ``epoch``
itself under ``lock`` (one lock acquisition per event); everything else goes
through the methods here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from databuddy_otel.delivery import Failure

#: The epoch of events taken back from the spool.
SPOOLED_EPOCH = -1


class SpoolFull(Exception):
    """Raised by the spool when ``spool_max_bytes`` leaves no room for an event."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Room:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.closed = False
        self.epoch = 0
        self.reset()

    def reset(self) -> None:
        """Empty (a forked child starts so: the parent keeps its events)."""
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.pending = 0
        #: unsettled events of the current epoch, and of each older one
        self.current = 0
        self.older: dict[int, int] = {}

    @property
    def free(self) -> int:
        return 0 if self.closed else max(0, self.capacity - self.pending)

    def enter(self, epoch: int) -> None:
        """Under the lock, with room: count one event of ``epoch``."""
        self.pending += 1
        if epoch == self.epoch:
            self.current += 1
        else:
            self.older[epoch] = self.older.get(epoch, 0) + 1

    def give_back(self, epoch: int) -> None:
        """Under the lock: an event that entered was not queued after all."""
        self.pending -= 1
        self._settled(epoch, 1)

    def release(self, items: Sequence[Sequence[Any]], epoch_at: int = 4) -> None:
        """Settled events leave; ``item[epoch_at]`` is each one's epoch."""
        with self.lock:
            self.pending = max(0, self.pending - len(items))
            current, same = self.epoch, 0
            for item in items:
                if item[epoch_at] == current:
                    same += 1
                else:
                    self._settled(item[epoch_at], 1)
            self.current -= same
            self.changed.notify_all()

    def _settled(self, epoch: int, count: int) -> None:
        if epoch == self.epoch:
            self.current -= count
            return
        left = self.older.get(epoch, 0) - count
        if left > 0:
            self.older[epoch] = left
        else:
            self.older.pop(epoch, None)

    def new_epoch(self) -> int:
        """Start a new epoch; return the one that ended (a flush waits for it)."""
        with self.lock:
            ended = self.epoch
            if self.current:
                self.older[ended] = self.current
                self.current = 0
            self.epoch += 1
            return ended

    def wait_settled(self, epoch: int, end: float) -> int:
        """Wait until ``epoch`` and the ones before it are settled, or ``end``; how many are not."""
        with self.lock:
            while any(e <= epoch for e in self.older):
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
            return sum(n for e, n in self.older.items() if e <= epoch)

    def wait_for_room(self, end: float, give_up: Callable[[float], bool]) -> bool:
        """Under the lock: wait until there is room, ``end``, or ``give_up(now)``."""
        while not self.closed and self.pending >= self.capacity:
            now = time.monotonic()
            if now >= end or give_up(now):
                return False
            self.changed.wait(min(0.05, end - now))
        return not self.closed

    def wait_a_little(self, seconds: float) -> None:
        with self.lock:
            self.changed.wait(seconds)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
