"""The exporters' way out, and what the span and log exporters share.

An exporter maps OpenTelemetry data to event dicts (:mod:`databuddy_otel._doors.otel_events`)
and hands them to one of two outlets:

* :class:`ClientOutlet`, for an exporter built with a client: each event goes
  through the client's port, :meth:`Databuddy.ingest(event, wait=False)
  <databuddy_otel.Databuddy.ingest>`, so it gets exactly what a ``track()`` gets
  (middleware, global properties, bound ids, defaults, deduplication, counters,
  ``on_undelivered``, the client's logger) and then the client's queue, senders
  and spool. ``export()`` only queues: it never waits on the network, whatever
  the server does, so the OpenTelemetry processor's ``force_flush`` and
  ``shutdown`` are never held up by an outage.
* :class:`DirectOutlet`, for a standalone exporter: no queue of ours; each
  ``export()`` checks, serializes and sends its events, retried within one
  total bound (``min(timeout, retry_deadline)``, as the OTLP exporters bound an
  export by their timeout), and what is not delivered by then is counted and
  reported in one warning per export.
"""

from __future__ import annotations

import abc
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from databuddy_otel._event.event import InvalidEvent, Prepared, serialize
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._runtime import config, sdk_log
from databuddy_otel._runtime.state import State
from databuddy_otel._runtime.thread_roles import sending
from databuddy_otel._wire.delivery import build_delivery
from databuddy_otel._wire.failure import Failure
from databuddy_otel.ids import uuid4_text
from databuddy_otel.models import (
    EXPORT_ERROR,
    INVALID,
    REJECTED,
    Stats,
    Undelivered,
)

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy


class ClientOutlet:
    """Events handed to a client's queue through its port; the client owns them then."""

    disabled = False  # a disabled client checks and drops events itself

    def __init__(self, client: Databuddy) -> None:
        self.client = client
        self.log = client.logger

    def accept(self, events: Iterable[dict[str, Any]]) -> bool:
        """Queue ``events``; ``True`` when the client took every one (never waits)."""
        accepted = True
        for event in events:
            if not self.client.ingest(event, wait=False).success:
                accepted = False  # counted and reported by the client
        return accepted

    def flush(self, timeout: float) -> bool:
        return self.client.flush(timeout).success

    def close(self) -> None:
        """Nothing: the client is the application's, and flushes at exit."""

    def stats(self) -> Stats:
        return self.client.stats()


class DirectOutlet:
    """Serialize, send and settle the events of one export, within one total bound."""

    def __init__(self, settings: config.Settings) -> None:
        self.log = sdk_log.resolve(None, settings.debug)
        self.ledger = Ledger(
            log=self.log,
            dedup_size=settings.max_deduplication_cache_size,
            on_undelivered=settings.on_undelivered,
        )
        self.delivery = build_delivery(settings, log=self.log)
        self.bound = min(settings.timeout, settings.retry_deadline)
        self.protocol = settings.wire_protocol
        self.defaults = settings.event_defaults
        self.dedup = settings.enable_deduplication
        self.disabled = settings.disabled

    def accept(self, events: Iterable[dict[str, Any]]) -> bool:
        """Send ``events`` now; ``True`` when the server accepted every one."""
        prepared = self.prepare(events)
        if not prepared:
            return True
        errors = self.deliver([p.body for p in prepared])
        self.settle(prepared, errors)
        return not any(errors)

    def prepare(self, events: Iterable[dict[str, Any]]) -> list[Prepared]:
        """Fill ids and defaults, check and serialize; invalid and duplicate events are counted."""
        prepared: list[Prepared] = []
        invalid: list[Undelivered] = []
        for event in events:
            caller_id = event.get("eventId") is not None
            if not caller_id:
                event["eventId"] = uuid4_text()
            for key, value in self.defaults.items():
                if event.get(key) is None:
                    event[key] = value
            try:
                body = serialize(event, protocol=self.protocol)
            except InvalidEvent as exc:
                event_id = event.get("eventId")
                name = event.get("name")
                invalid.append(
                    Undelivered(
                        event_id if isinstance(event_id, str) else None,
                        name if isinstance(name, str) else None,
                        INVALID,
                        str(exc),
                    )
                )
                continue
            event_id = str(event["eventId"])
            if caller_id and self.dedup and not self.ledger.claim(event_id):
                continue
            prepared.append(Prepared(body, event["name"], event_id, caller_id))
        if invalid:
            self.log.warning(
                "Databuddy dropped %d invalid event(s) from OpenTelemetry data; first: %s",
                len(invalid),
                invalid[0].error,
            )
            self.ledger.count(INVALID, invalid)
        return prepared

    def deliver(self, bodies: Sequence[str]) -> list[Optional[Failure]]:
        """Send ``bodies`` within this export's bound; one result per event, never raises."""
        try:
            return self.delivery.send(bodies, deadline=time.monotonic() + self.bound)
        except Exception as exc:
            self.log.exception("Exporting %d Databuddy event(s) failed", len(bodies))
            return [Failure(EXPORT_ERROR, f"export failed: {type(exc).__name__}")] * len(bodies)

    def settle(self, prepared: Sequence[Prepared], errors: Sequence[Optional[Failure]]) -> None:
        """Count the outcome; one warning for what this export could not deliver."""
        try:
            self.ledger.settle([(p.event_id, p.name, p.caller_id) for p in prepared], errors)
        except Exception:
            self.log.exception(
                "Recording the outcome of %d Databuddy event(s) failed", len(prepared)
            )
        # The server's refusals were logged by the delivery already.
        lost = [e for e in errors if e is not None and e.reason != REJECTED]
        if lost:
            reasons = Counter(e.reason for e in lost)
            self.log.warning(
                "Databuddy exporter could not deliver %d event(s) within %gs (%s): %s; a"
                " standalone exporter keeps nothing, build it with client= to queue and spool them",
                len(lost),
                self.bound,
                ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())),
                lost[0].message,
            )

    def flush(self, timeout: float) -> bool:
        return True  # nothing is buffered here: each export() sent its events

    def close(self) -> None:
        """Stop retries in progress and close the transport."""
        self.delivery.stop()
        try:
            self.delivery.transport.close()
        except Exception as exc:
            self.log.debug("Closing the transport failed: %s", exc)

    def stats(self) -> Stats:
        return self.ledger.snapshot()


Outlet = Union[ClientOutlet, DirectOutlet]


def build(client: Databuddy | None, options: Mapping[str, Any], owner: str) -> Outlet:
    """An outlet for an exporter's constructor: a client or settings, not both."""
    given = {key: value for key, value in options.items() if value is not None}
    if client is not None:
        config.check_names(options, config.ConnectionOptions.__annotations__, owner)
        if given:
            raise ValueError(
                f"pass a client or connection settings ({', '.join(sorted(given))}), not both: "
                "an exporter built with a client uses that client's settings"
            )
        return ClientOutlet(client)
    return DirectOutlet(
        config.resolve(options, owner=owner, allowed=config.ConnectionOptions.__annotations__)
    )


class OutletExporter(abc.ABC):
    """The span and log exporters' common part; each adds how it finds events in a batch.

    ``export()`` never raises: a failure is logged (to the client's logger with a
    client) and the batch reported as failed.
    """

    _kind = "item"

    def __init__(
        self,
        client: Databuddy | None = None,
        *,
        include_trace_ids: bool = True,
        **options: Any,
    ) -> None:
        self._outlet: Outlet = build(client, options, type(self).__name__)
        self._trace_ids = include_trace_ids
        self._state = State.OPEN

    @abc.abstractmethod
    def _events(self, batch: Sequence[Any]) -> list[dict[str, Any]]:
        """The event dicts of the tagged items in ``batch``."""

    def _export(self, batch: Sequence[Any]) -> bool:
        """Hand the events of ``batch`` on; ``True`` when every one was taken."""
        if self._state is not State.OPEN:
            return False
        outlet = self._outlet
        try:
            with sending():
                if outlet.disabled:
                    return True
                events = self._events(batch)
                return not events or outlet.accept(events)
        except Exception:
            outlet.log.exception(
                "Exporting Databuddy events from %d %s(s) failed", len(batch), self._kind
            )
            return False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """With a client, flush it within ``timeout_millis``; standalone, ``True`` at once
        (each ``export()`` has sent its events before it returned)."""
        try:
            return self._outlet.flush(max(0, timeout_millis) / 1000)
        except Exception:
            self._outlet.log.exception("Flushing Databuddy events failed")
            return False

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Stop taking batches. Standalone: interrupt retries and close the transport.
        With a client: nothing more (the client's queue keeps what it holds, and the
        client flushes at exit or on its own ``shutdown()``)."""
        if self._state is not State.OPEN:
            return
        self._state = State.CLOSED  # nothing of its own to deliver: no closing step
        try:
            self._outlet.close()
        except Exception:
            self._outlet.log.exception("Shutting the Databuddy exporter down failed")

    def stats(self) -> Stats:
        """Counters of the events this exporter sent (the client's, with a client)."""
        return self._outlet.stats()
