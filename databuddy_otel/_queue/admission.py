"""Admission: room in the memory queue, counted per flush epoch.

At most ``capacity`` events are in memory (queued or being sent). Each carries
the flush epoch it entered in; ``flush()`` starts a new epoch and waits until
every event of the older ones is settled, so events tracked while it waits do
not hold it up. Events taken back from the spool enter epoch -1: every flush
waits for them, however old they are.

Every rule of the room lives here. The caller holds ``lock`` around
:meth:`Room.admit` and :meth:`Room.give_back` (one acquisition per event on the
``track()`` path, shared with the batch queue's hand-off); the other methods take
it themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Optional

from databuddy_otel._runtime.state import State
from databuddy_otel._wire.failure import Failure

#: Where one event lives in the spool: its segment's number times 2**32, plus its
#: index there. An int, so a queued event stays a tuple of atoms, which the cyclic
#: garbage collector stops tracking (100,000 queued events cost it nothing).
SpoolRef = int

#: The epoch of events taken back from the spool.
SPOOLED_EPOCH = -1


class Queued(NamedTuple):
    """One accepted event on its way through the queue, the senders and settling."""

    body: str
    name: str
    event_id: str
    #: the caller chose ``event_id`` (deduplication remembers it once delivered)
    caller_id: bool
    #: the flush epoch it entered in (:data:`SPOOLED_EPOCH` when taken from the spool)
    epoch: int
    #: its record in the spool, if it was written ahead
    ref: Optional[SpoolRef]


class SpoolFull(Exception):
    """Raised by the spool when ``spool_max_bytes`` leaves no room for an event."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Room:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: written under the lock, by :meth:`close` and :meth:`finish` only
        self.state = State.OPEN
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
    def closed(self) -> bool:
        """No more events are admitted."""
        return self.state is not State.OPEN

    @property
    def free(self) -> int:
        return 0 if self.closed else max(0, self.capacity - self.pending)

    def admit(self, epoch: int | None = None) -> int | None:
        """Under the lock: count one event if there is room; the epoch it enters in
        (the current one unless ``epoch`` is given), or ``None`` when full or closed."""
        if self.state is not State.OPEN or self.pending >= self.capacity:
            return None
        self.pending += 1
        if epoch is None or epoch == self.epoch:
            self.current += 1
            return self.epoch
        self.older[epoch] = self.older.get(epoch, 0) + 1
        return epoch

    def give_back(self, epoch: int) -> None:
        """Under the lock: an event that entered was not queued after all."""
        self.pending -= 1
        self._settled(epoch, 1)

    def release(self, items: Sequence[Queued]) -> None:
        """Settled events leave."""
        with self.lock:
            self.pending = max(0, self.pending - len(items))
            current, same = self.epoch, 0
            for item in items:
                if item.epoch == current:
                    same += 1
                else:
                    self._settled(item.epoch, 1)
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
        """Admit nothing more; what is in goes on being delivered."""
        with self.lock:
            if self.state is State.OPEN:
                self.state = State.CLOSING
            self.changed.notify_all()

    def finish(self) -> None:
        """Everything admitted is settled or abandoned."""
        with self.lock:
            self.state = State.CLOSED
            self.changed.notify_all()
