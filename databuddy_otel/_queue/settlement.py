"""Settling a sent chunk: each event delivered, lost for good, or back to the spool.

The server's answer decides, event by event:

* delivered, or refused for good (a final 4xx, an invalid event): settled in the
  :class:`~databuddy_otel._queue.ledger.Ledger` (counted, reported when lost) and, with a
  spool, acknowledged there so it is never sent again;
* retries ran out, the client shut down first, or the SDK itself failed while
  sending: with a spool the event stays there, waiting for a later attempt
  (nothing is counted lost); without one it is settled as lost with that reason.

Only the server's verdict settles a spooled event for good: an answer that
is not the server's (a redirect, a proxy's page) is retried, never a refusal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._runtime.sdk_log import Log
from databuddy_otel._wire.failure import Failure
from databuddy_otel.models import (
    EXPORT_ERROR,
    RETRIES_EXHAUSTED,
    SHUTDOWN,
    EventResponse,
    Undelivered,
)

if TYPE_CHECKING:
    from databuddy_otel._queue.admission import Queued, SpoolRef
    from databuddy_otel._spool.spool import Spool

#: Appended to the message of an event that waits in the spool for another attempt.
SPOOLED_NOTE = " (kept in the spool; it will be sent again)"

_RETRY_LATER = (RETRIES_EXHAUSTED, SHUTDOWN, EXPORT_ERROR)

#: Said once per client when an event arrives after it shut down.
CLOSED_WARNING = (
    "Databuddy: an event was tracked after shutdown and not sent (a thread still tracking "
    "while the process exits?); later ones are counted in stats().undelivered['shutdown']"
)


def warn_retries_exhausted(log: Log, errors: Sequence[Optional[Failure]]) -> None:
    """One warning for the events of a chunk lost because retries ran out."""
    lost = [e for e in errors if e is not None and e.reason == RETRIES_EXHAUSTED]
    if lost:
        log.warning("Databuddy could not deliver %d event(s): %s", len(lost), lost[0].message)


class Settlement:
    def __init__(self, ledger: Ledger, spool: Spool | None, log: Log) -> None:
        self.ledger = ledger
        self.spool = spool
        self._log = log
        self._next_warning = 0.0  # under _warning_lock: callers' threads refuse at once
        self._warned_closed = False  # under _warning_lock too
        self._warning_lock = threading.Lock()

    def refuse(self, failure: Failure, event_id: str, name: str) -> Failure:
        """An event the queue would not take: counted, reported, warned about (at most
        one warning every ten seconds, not one per event)."""
        self.ledger.count(failure.reason, [Undelivered(event_id, name, *failure)])
        now = time.monotonic()
        with self._warning_lock:
            due = now >= self._next_warning
            if due:
                self._next_warning = now + 10.0
        if due:
            self._log.warning(
                "Databuddy event not queued: %s (%d %s so far)",
                failure.message,
                self.ledger.undelivered[failure.reason],
                failure.reason,
            )
        return failure

    def refuse_closed(self, failure: Failure, event_id: str, name: str) -> Failure:
        """An event offered after the queue closed: counted apart from the queued events
        shutdown could not send (so its summary stays true), warned about once."""
        self.ledger.count_refused_closed(Undelivered(event_id, name, *failure))
        with self._warning_lock:
            first, self._warned_closed = not self._warned_closed, True
        if first:
            self._log.warning(CLOSED_WARNING)
        return failure

    def settle(self, items: Sequence[Queued], errors: Sequence[Optional[Failure]]) -> list[bool]:
        """Record the outcome of each item; ``True`` where it went back to the spool."""
        spool = self.spool
        if not any(errors):  # the common case: all delivered
            if spool is not None:
                spool.ack([item.ref for item in items if item.ref is not None])
            self.ledger.delivered_all(items)
            return [False] * len(items)
        settled: list[Queued] = []
        final: list[Optional[Failure]] = []
        back: list[SpoolRef] = []
        waits: list[bool] = []
        for item, error in zip(items, errors):
            ref = item.ref
            if error is not None and ref is not None and error.reason in _RETRY_LATER:
                back.append(ref)
                waits.append(True)
            else:
                settled.append(item)
                final.append(error)
                waits.append(False)
        try:
            if spool is not None:
                spool.ack([item.ref for item in settled if item.ref is not None])
                if back:
                    spool.defer(back)
                    self._log.info(
                        "Databuddy: %d event(s) wait in the spool for another attempt", len(back)
                    )
            self.ledger.settle([(i[2], i[1], i[3]) for i in settled], final)
            warn_retries_exhausted(self._log, final)
        except Exception:
            self._log.exception("Databuddy could not record the outcome of %d event(s)", len(items))
        return waits

    def responses(
        self, items: Sequence[Queued], errors: Sequence[Optional[Failure]]
    ) -> list[EventResponse]:
        """Settle, and say for each item what ``track()`` or ``batch()`` reports."""
        waits = self.settle(items, errors)
        return [
            EventResponse(
                error is None,
                item.event_id,
                None if error is None else error.message + (SPOOLED_NOTE if wait else ""),
            )
            for item, error, wait in zip(items, errors, waits)
        ]

    def abandon(self, items: Sequence[Queued], message: str) -> int:
        """Events a shutdown could not deliver: spooled ones wait, the rest are lost.

        Returns how many were lost.
        """
        spooled = [item.ref for item in items if item.ref is not None]
        if spooled and self.spool is not None:
            self.spool.defer(spooled)
            self._log.info(
                "Databuddy left %d event(s) in the spool for the next start", len(spooled)
            )
        lost = [item for item in items if item.ref is None]
        if lost:
            for item in lost:
                if item.caller_id:
                    self.ledger.unclaim(item.event_id)
            self.ledger.count(SHUTDOWN, [Undelivered(i[2], i[1], SHUTDOWN, message) for i in lost])
        return len(lost)
