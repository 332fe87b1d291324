"""The event queue's two ways to the server: a sender's chunk, and a send past the queue.

:meth:`Dispatch.deliver` is what a sender thread calls for one request's worth of
queued events; :meth:`Dispatch.send_now` sends on the caller's thread (``batch()``,
``track()`` without batching), writing ahead to the spool first when there is one.
Neither raises: a failure becomes one error per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from databuddy_otel._event.event import Prepared
from databuddy_otel._queue.admission import SPOOLED_EPOCH, Queued, SpoolFull
from databuddy_otel._queue.senders import Errors
from databuddy_otel._queue.settlement import Settlement
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._wire.delivery import SHUTDOWN_MESSAGE, Delivery
from databuddy_otel._wire.failure import Failure
from databuddy_otel.models import EXPORT_ERROR, RETRIES_EXHAUSTED, SHUTDOWN, EventResponse

if TYPE_CHECKING:
    from databuddy_otel._spool.spool import Spool


class Dispatch:
    """Hands bodies to :class:`~databuddy_otel._wire.delivery.Delivery`; never raises."""

    def __init__(
        self, delivery: Delivery, settlement: Settlement, spool: Spool | None, log: Log
    ) -> None:
        self.delivery = delivery
        self._settlement = settlement
        self._spool = spool
        self._log = log

    def deliver(self, items: list[Queued], deadline: float | None) -> Errors:
        """One request's worth of queued events, taken by a sender."""
        try:
            errors = self.delivery.send_chunk([item.body for item in items], deadline=deadline)
        except Exception as exc:
            return self._failed(exc, len(items))
        if deadline is not None:  # cut short by shutdown, not by the retry deadline
            errors = [
                Failure(SHUTDOWN, f"{SHUTDOWN_MESSAGE} (last error: {e.message})")
                if e is not None and e.reason == RETRIES_EXHAUSTED
                else e
                for e in errors
            ]
        return errors

    def send_now(self, events: Sequence[Prepared], *, single: bool) -> list[EventResponse]:
        """Send on this thread, past the queue; one answer per event, in order.

        With a spool the events are written ahead first, and those the server
        could not take wait there for a later attempt.
        """
        spool = self._spool
        items: list[Queued] = []
        refused: dict[int, EventResponse] = {}
        for n, (body, name, event_id, caller_id) in enumerate(events):
            try:
                ref = None if spool is None else spool.append(body, event_id, caller_id)
            except SpoolFull as full:
                self._settlement.refuse(full.failure, event_id, name)
                refused[n] = EventResponse(False, event_id, full.failure.message)
                continue
            items.append(Queued(body, name, event_id, caller_id, SPOOLED_EPOCH, ref))
        try:
            errors = self.delivery.send([item.body for item in items], single=single)
        except Exception as exc:
            errors = self._failed(exc, len(items))
        sent = iter(self._settlement.responses(items, errors))
        return [refused[n] if n in refused else next(sent) for n in range(len(events))]

    def _failed(self, exc: Exception, count: int) -> Errors:
        self._log.exception("Databuddy could not send %d event(s)", count)
        return [Failure(EXPORT_ERROR, f"send failed: {type(exc).__name__}: {exc}")] * count
