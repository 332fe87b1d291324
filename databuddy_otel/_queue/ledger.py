"""Settling events: what was delivered, what was lost and why, and which ids were seen.

Every event a client or an exporter handles ends here exactly once: delivered,
or undelivered with a reason (:data:`~databuddy_otel.models.LOSS_REASONS`). Each
loss is counted and handed, with its id, to ``on_undelivered``. The ledger also
remembers the caller-chosen ids of delivered events (and of those on their way),
so a repeated ``eventId`` is skipped as a duplicate.

The ledger holds counters only; room in the queue is the queue's business
(:mod:`databuddy_otel._queue.event_queue`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Optional

from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._wire.failure import Failure
from databuddy_otel.models import SHUTDOWN, EventResponse, Stats, Undelivered

if TYPE_CHECKING:
    from databuddy_otel._queue.admission import Queued

#: One settled event as the ledger reads it: (event id, name, caller chose the id).
Settled = tuple[Optional[str], Optional[str], bool]


class Ledger:
    """Counters, the deduplication memory and the ``on_undelivered`` reports of one client."""

    def __init__(
        self,
        *,
        log: Log,
        dedup_size: int = 10_000,
        on_undelivered: Callable[[list[Undelivered]], None] | None = None,
    ) -> None:
        self.dedup_size = dedup_size
        self.on_undelivered = on_undelivered
        self._log = log
        self.delivered = 0
        self.undelivered: Counter[str] = Counter()
        self.deduplicated = 0
        self.filtered = 0
        self.invalid_session_ids = 0
        #: Of ``undelivered["shutdown"]``: events refused because the client was closed
        #: (tracked after shutdown), as opposed to queued events shutdown could not send.
        self.refused_closed = 0
        self._lock = threading.Lock()
        self._delivered_ids: dict[str, None] = {}
        self._inflight_ids: set[str] = set()
        self._collectors: list[list[EventResponse]] = []
        self._reporting = threading.local()

    def reset_after_fork(self) -> None:
        """A forked child keeps the counters but none of the parent's events in flight."""
        self._lock = threading.Lock()
        self._inflight_ids = set()
        self._collectors = []

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
        """Forget a claimed id whose event goes no further."""
        with self._lock:
            self._inflight_ids.discard(event_id)

    def dedup_size_now(self) -> int:
        """Ids remembered for deduplication: delivered ones plus those on their way."""
        with self._lock:
            return len(self._delivered_ids) + len(self._inflight_ids)

    def clear_dedup(self) -> None:
        """Forget every delivered id (ids on their way stay claimed until settled)."""
        with self._lock:
            self._delivered_ids.clear()

    def _remember(self, event_id: str) -> None:
        ids = self._delivered_ids
        ids[event_id] = None
        if len(ids) > self.dedup_size:
            del ids[next(iter(ids))]

    # -- settling ------------------------------------------------------
    def settle(self, events: Sequence[Settled], errors: Sequence[Optional[Failure]]) -> None:
        """Record the fate of ``events`` in order: ``errors[i]`` is ``None`` when delivered."""
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
            collectors = list(self._collectors)
        if collectors:
            responses = [
                EventResponse(e is None, ev[0], None if e is None else e.message)
                for ev, e in zip(events, errors)
            ]
            for collector in collectors:
                collector.extend(responses)
        if lost:
            self.report(lost)

    def delivered_all(self, items: Sequence[Queued]) -> None:
        """:meth:`settle` for events that were all delivered: the queue's items."""
        with self._lock:
            self.delivered += len(items)
            for item in items:
                if item.caller_id:
                    self._inflight_ids.discard(item.event_id)
                    self._remember(item.event_id)
            collectors = list(self._collectors)
        if collectors:
            responses = [EventResponse(True, item.event_id, None) for item in items]
            for collector in collectors:
                collector.extend(responses)

    def report(self, lost: list[Undelivered]) -> None:
        """Hand undelivered events to the callback; a failing callback is logged.

        Events lost by a ``track()`` inside the callback itself are counted but
        not reported again, so a callback cannot recurse into itself.
        """
        callback = self.on_undelivered
        if callback is None or getattr(self._reporting, "active", False):
            return
        self._reporting.active = True
        try:
            callback(lost)
        except Exception:
            self._log.exception("Databuddy on_undelivered callback failed")
        finally:
            self._reporting.active = False

    def count(self, reason: str, lost: Iterable[Undelivered] = (), *, number: int = 0) -> None:
        """Count events that will not be delivered (``number`` of them, or ``lost``)."""
        items = list(lost)
        with self._lock:
            self.undelivered[reason] += number or len(items)
        if items:
            self.report(items)

    def count_refused_closed(self, lost: Undelivered) -> int:
        """Count an event refused because the client is closed; how many so far."""
        with self._lock:
            self.undelivered[lost.reason] += 1
            self.refused_closed += 1
            so_far = self.refused_closed
        self.report([lost])
        return so_far

    def shutdown_losses(self) -> int:
        """Events counted as ``shutdown`` that were queued, not refused after a close."""
        with self._lock:
            return self.undelivered[SHUTDOWN] - self.refused_closed

    def count_filtered(self) -> None:
        with self._lock:
            self.filtered += 1

    def count_session_id_dropped(self) -> None:
        with self._lock:
            self.invalid_session_ids += 1

    # -- flush results -------------------------------------------------
    def collect(self) -> list[EventResponse]:
        """Start collecting the result of every event settled from now on."""
        collector: list[EventResponse] = []
        with self._lock:
            self._collectors.append(collector)
        return collector

    def stop_collecting(self, collector: list[EventResponse]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._collectors.remove(collector)

    def snapshot(
        self, *, queued: int = 0, spooled: int = 0, unspooled: int = 0, reachable: bool = True
    ) -> Stats:
        with self._lock:
            return Stats(
                queued=queued,
                delivered=self.delivered,
                undelivered=dict(self.undelivered),
                deduplicated=self.deduplicated,
                filtered=self.filtered,
                reachable=reachable,
                spooled=spooled,
                unspooled=unspooled,
                invalid_session_ids=self.invalid_session_ids,
            )
