"""The ``Databuddy`` client: ``track`` / ``batch`` / ``flush`` as the Node SDK documents them.

``track()`` checks and serializes an event on the caller's thread (a few
microseconds), then hands it to OpenTelemetry's ``BatchLogRecordProcessor``,
whose worker thread sends full batches, or partial ones every
``batch_timeout`` milliseconds, through :class:`DatabuddyLogExporter`.
Nothing here raises into the application after construction.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from databuddy_otel import _components, config
from databuddy_otel._components import Prepared
from databuddy_otel._runtime import enable_debug, in_event_loop, run_bounded, shutdown_at_exit
from databuddy_otel.delivery import INVALID, QUEUE_FULL, SHUTDOWN
from databuddy_otel.enrichment import Enricher
from databuddy_otel.event import InvalidEvent, event_from_call, serialize, text_or_none
from databuddy_otel.ledger import OUTAGE_GRACE, Ledger, Stats
from databuddy_otel.limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel.log_exporter import DatabuddyLogExporter
from databuddy_otel.models import (
    BatchEventInput,
    BatchEventResponse,
    CustomEventInput,
    EventResponse,
    Undelivered,
)
from databuddy_otel.record import EventRecord, enqueuer
from databuddy_otel.transport import Transport, Verify

logger = logging.getLogger("databuddy")

_CLOSED = "client is shut down"


class Databuddy:
    """Send custom events to Databuddy; see docs/client.md for every option.

    >>> client = Databuddy(client_id="...")           # doctest: +SKIP
    >>> client.track(name="user_signup", properties={"plan": "pro"})  # doctest: +SKIP
    EventResponse(success=True, event_id='...', error=None)
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
        protocol: str = "track",
        website_id: str | None = None,
        namespace: str | None = None,
        source: str | None = None,
        debug: bool | None = None,
        logger: logging.Logger | None = None,
        enable_batching: bool = True,
        batch_size: int = 10,
        batch_timeout: float = 2000,
        max_queue_size: int = 1000,
        enable_deduplication: bool = True,
        max_deduplication_cache_size: int = 10_000,
        middleware: Iterable[config.Middleware] | None = None,
        timeout: float = 10.0,
        retry_deadline: float = 30.0,
        disabled: bool = False,
        on_queue_full: str = "block",
        on_undelivered: Callable[[list[Undelivered]], None] | None = None,
        shutdown_timeout: float = 5.0,
        verify: Verify = True,
        transport: Transport | None = None,
    ) -> None:
        # Every argument but these two is a setting that config.resolve checks.
        options = {k: v for k, v in locals().items() if k not in ("self", "logger", "middleware")}
        settings = config.resolve(**options)
        self.settings = settings
        self._log = logger or logging.getLogger("databuddy")
        if settings.debug:
            enable_debug(self._log)
        self._legacy = settings.legacy
        self._enricher = Enricher(_components.defaults_for(settings), middleware or (), self._log)
        self._dedup = settings.enable_deduplication
        self._closed = False
        self._next_drop_warning = 0.0
        self._warned_closed = False
        self._pool: Any = None
        self._background_sends: set[Any] = set()
        self._pool_pid = 0
        self._close_lock = threading.Lock()
        self._ledger = Ledger(
            capacity=settings.max_queue_size,
            block_timeout=settings.timeout + OUTAGE_GRACE,
            block=settings.on_queue_full == "block",
            dedup_size=settings.max_deduplication_cache_size,
            on_undelivered=settings.on_undelivered,
            log=self._log,
        )
        # Waiting for room would stall every task of a running event loop.
        self._ledger.may_wait = lambda: not in_event_loop()
        self._delivery = _components.new_delivery(settings, self._ledger, self._log)
        self._exporter = DatabuddyLogExporter(self._delivery, self._ledger)
        self._processor: BatchLogRecordProcessor | None = None
        if settings.enable_batching and not settings.disabled:
            self._processor = BatchLogRecordProcessor(
                self._exporter,
                schedule_delay_millis=settings.batch_timeout_ms,
                max_export_batch_size=settings.batch_size,
                max_queue_size=settings.max_queue_size,
            )
            self._enqueue = enqueuer(self._processor)
        shutdown_at_exit(self)

    # -- tracking ---------------------------------------------------------
    def track(
        self, event: CustomEventInput | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> EventResponse:
        """Track one custom event; returns at once, never raises.

        Pass the documented mapping (``{"name": ..., "properties": ...,
        "anonymousId": ...}``) or keyword arguments (``name=``, ``properties=``,
        ``anonymous_id=``, ``session_id=``, ``event_id=``, ``timestamp=``,
        ``namespace=``, ``source=``, ``website_id=``).
        """
        try:
            data = event_from_call(event, fields)
            if isinstance(data, str):
                return EventResponse(False, None, data)
            return self._track(data)
        except Exception as exc:
            self._log.exception("Databuddy track() failed")
            return EventResponse(False, None, f"internal error: {type(exc).__name__}")

    def _track(self, data: dict[str, Any]) -> EventResponse:
        if self._closed:
            return self._refuse_closed(data)
        prepared = self._prepare(data)
        if isinstance(prepared, EventResponse):
            return prepared
        body, name, event_id, caller_id = prepared
        if caller_id and self._dedup and not self._ledger.claim(event_id):
            return EventResponse(True, event_id, None)
        if self.settings.disabled:
            return EventResponse(True, event_id, None)
        processor = self._processor
        if processor is None:
            if in_event_loop():
                # Never block a running event loop on the network: send from a
                # thread; the outcome reaches stats() and on_undelivered.
                future = self._background().submit(self._send_now, [prepared])
                self._background_sends.add(future)
                future.add_done_callback(self._background_sends.discard)
                return EventResponse(True, event_id, None)
            return self._send_now([prepared]).results[0]
        if not self._ledger.admit():
            if caller_id and self._dedup:
                self._ledger.unclaim(event_id)
            return self._queue_full(event_id, name)
        if self._closed:  # shutdown() began while this call was under way
            self._ledger.release(1)
            if caller_id and self._dedup:
                self._ledger.unclaim(event_id)
            return EventResponse(False, event_id, _CLOSED)
        self._enqueue(EventRecord(body, name, event_id, caller_id))
        return EventResponse(True, event_id, None)

    def _refuse_closed(self, data: dict[str, Any]) -> EventResponse:
        event_id, name = text_or_none(data.get("eventId")), text_or_none(data.get("name"))
        self._ledger.count(SHUTDOWN, [Undelivered(event_id, name, SHUTDOWN, _CLOSED)])
        if not self._warned_closed:
            self._warned_closed = True
            self._log.warning("Databuddy: event tracked after shutdown(); not sent")
        return EventResponse(False, event_id, _CLOSED)

    def _prepare(self, data: dict[str, Any]) -> Prepared | EventResponse:
        """Enrich, check and serialize one event; an answer when it goes no further."""
        event, caller_id, now = self._enricher.enrich(data)
        if event is None:
            self._ledger.count_filtered()
            return EventResponse(True, text_or_none(data.get("eventId")), None)
        try:
            body = serialize(event, legacy=self._legacy, now_ms=now)
        except InvalidEvent as exc:
            event_id = text_or_none(event.get("eventId"))
            self._log.warning("Databuddy event not tracked: %s", exc)
            name = text_or_none(event.get("name"))
            self._ledger.count(INVALID, [Undelivered(event_id, name, INVALID, str(exc))])
            return EventResponse(False, event_id, str(exc))
        return Prepared(body, event["name"], str(event["eventId"]), caller_id)

    def _queue_full(self, event_id: str, name: str) -> EventResponse:
        down = self._ledger.server_down()
        state = "the server is unreachable" if down else "the worker is behind"
        message = f"queue full ({self.settings.max_queue_size} events): {state}; event dropped"
        self._ledger.count(QUEUE_FULL, [Undelivered(event_id, name, QUEUE_FULL, message)])
        now = time.monotonic()
        if now >= self._next_drop_warning:  # one warning per interval, not one per event
            self._next_drop_warning = now + 10.0
            dropped = self._ledger.undelivered[QUEUE_FULL]
            self._log.warning("Databuddy %s (%d dropped so far)", message, dropped)
        return EventResponse(False, event_id, message)

    def _send_now(self, prepared: list[Prepared], *, single: bool = True) -> BatchEventResponse:
        """Send prepared events on this thread and report each one."""
        meta = [(p.event_id, p.name, p.caller_id) for p in prepared]
        errors = self._delivery.send([p.body for p in prepared], single=single)
        self._ledger.settle(meta, errors, queued=False)
        results = [
            EventResponse(err is None, event_id, None if err is None else err.message)
            for (event_id, _, _), err in zip(meta, errors)
        ]
        return BatchEventResponse.of(results)

    def batch(self, events: Iterable[BatchEventInput | Mapping[str, Any]]) -> BatchEventResponse:
        """Send up to 100 events now, in one request; never raises."""
        try:
            return self._batch(events)
        except Exception as exc:
            self._log.exception("Databuddy batch() failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")

    def _batch(self, events: Any) -> BatchEventResponse:
        if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable):
            return BatchEventResponse(False, error="Events must be an array")
        items = list(events)
        if not items:
            return BatchEventResponse(False, error="Events array cannot be empty")
        if len(items) > MAX_EVENTS_PER_REQUEST:
            return BatchEventResponse(False, error="Batch size cannot exceed 100 events")
        if not all(
            isinstance(e, Mapping) and isinstance(e.get("name"), str) and e.get("name")
            for e in items
        ):
            return BatchEventResponse(False, error="All events must have a valid name")
        if self._closed:
            return BatchEventResponse(False, error=_CLOSED)
        slots: list[EventResponse | Prepared] = []
        for item in items:
            data = {k: v for k, v in item.items() if k != "type"}
            prepared = self._prepare(data)
            if (
                not isinstance(prepared, EventResponse)
                and prepared[3]
                and self._dedup
                and not self._ledger.claim(prepared[2])
            ):
                prepared = EventResponse(True, prepared[2], None)
            slots.append(prepared)
        to_send = [s for s in slots if not isinstance(s, EventResponse)]
        if self.settings.disabled:
            sent = iter([EventResponse(True, p[2], None) for p in to_send])
        else:
            sent = iter(self._send_now(to_send, single=False).results if to_send else [])
        results = [s if isinstance(s, EventResponse) else next(sent) for s in slots]
        return BatchEventResponse.of(results)

    def flush(self, timeout: float | None = None) -> BatchEventResponse:
        """Send every queued event now; wait at most ``timeout`` seconds.

        Events still being retried when the time is up stay queued (nothing is
        dropped); the response then says so. The default timeout is the retry
        deadline.
        """
        try:
            return self._flush(self.settings.retry_deadline if timeout is None else timeout)
        except Exception as exc:
            self._log.exception("Databuddy flush() failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")

    def _flush(self, timeout: float) -> BatchEventResponse:
        processor = self._processor
        if processor is None:
            return self._wait_for_background_sends(timeout)
        if self._ledger.pending == 0:
            return BatchEventResponse(True, 0, [])
        collector = self._ledger.collect()
        try:
            finished = run_bounded(processor.force_flush, timeout)
        finally:
            self._ledger.stop_collecting(collector)
        summary = BatchEventResponse.of(list(collector))
        if finished:
            return summary
        left = self._ledger.pending
        message = f"flush timed out after {timeout:g}s; {left} event(s) still queued"
        return dataclasses.replace(summary, success=False, error=message)

    def _wait_for_background_sends(self, timeout: float) -> BatchEventResponse:
        """flush() without batching: wait for sends started from event-loop threads."""
        futures = list(self._background_sends)
        if not futures:
            return BatchEventResponse(True, 0, [])
        from concurrent.futures import wait

        done, running = wait(futures, timeout)
        summary = BatchEventResponse.of([r for f in done for r in f.result().results])
        if not running:
            return summary
        message = f"flush timed out after {timeout:g}s; {len(running)} send(s) still running"
        return dataclasses.replace(summary, success=False, error=message)

    async def aflush(self, timeout: float | None = None) -> BatchEventResponse:
        """``await client.aflush()``: :meth:`flush` without blocking the event loop."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    def _background(self) -> Any:
        """A small thread pool for un-batched sends from event-loop threads (per process)."""
        pool = self._pool
        if pool is None or self._pool_pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            pool = self._pool = ThreadPoolExecutor(4, thread_name_prefix="databuddy-send")
            self._pool_pid = os.getpid()
        return pool

    def shutdown(self, timeout: float | None = None) -> BatchEventResponse:
        """Flush (within ``timeout``, default ``shutdown_timeout``) and stop; idempotent.

        Events still undelivered then are reported as ``shutdown``. A request
        already in flight may add up to one request ``timeout`` to the wait.
        """
        with self._close_lock:
            if self._closed:
                return BatchEventResponse(True, 0, [])
            try:
                limit = self.settings.shutdown_timeout if timeout is None else timeout
                end = time.monotonic() + limit
                self._closed = True  # refuse new events first, then drain the queue
                result = self._flush(limit)
                # From here on no new attempt starts, so only a request already
                # in flight can hold things up: give it one request timeout.
                self._delivery.stop()
                drain = self.settings.timeout + 0.5
                if self._pool is not None:
                    pool, self._pool = self._pool, None
                    run_bounded(pool.shutdown, max(end - time.monotonic(), drain))
                processor = self._processor
                if processor is not None:
                    run_bounded(processor.shutdown, max(end - time.monotonic(), drain))
                else:
                    self._exporter.shutdown()
                left = self._ledger.pending
                if left:
                    self._ledger.count(SHUTDOWN, number=left)
                    self._log.warning("Databuddy shut down with %d event(s) undelivered", left)
                return result
            except Exception as exc:
                self._closed = True
                self._log.exception("Databuddy shutdown() failed")
                return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")

    close = shutdown

    def __enter__(self) -> Databuddy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- settings ----------------------------------------------------------
    def set_global_properties(self, properties: Mapping[str, Any]) -> None:
        """Add properties sent with every event (the event's own keys win)."""
        self._enricher.globals = {**self._enricher.globals, **properties}

    def get_global_properties(self) -> dict[str, Any]:
        return dict(self._enricher.globals)

    def clear_global_properties(self) -> None:
        self._enricher.globals = {}

    def add_middleware(self, middleware: config.Middleware) -> None:
        """Run ``middleware(event)`` on every event.

        It returns the event, a changed copy, or ``None`` to drop it.
        """
        self._enricher.middleware.append(middleware)

    def clear_middleware(self) -> None:
        self._enricher.middleware = []

    def stats(self) -> Stats:
        """Counters: queued, delivered, and undelivered by reason."""
        return self._ledger.snapshot()

    def __repr__(self) -> str:
        s = self.settings
        key = ", api_key='***'" if s.api_key else ""
        return (
            f"Databuddy(api_url={s.api_url!r}, protocol={s.protocol!r}, "
            f"client_id={s.client_id!r}{key})"
        )
