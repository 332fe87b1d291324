"""The ``Databuddy`` client: ``track`` / ``batch`` / ``flush`` as the Node SDK documents them.

``track()`` checks and serializes an event on the caller's thread (a few
microseconds), then hands it to OpenTelemetry's ``BatchLogRecordProcessor``,
whose worker thread sends full batches, or partial ones every
``batch_timeout`` milliseconds, through :class:`DatabuddyLogExporter`.
Nothing here raises into the application after construction.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from databuddy_otel import config
from databuddy_otel.context import current_ids
from databuddy_otel.delivery import INVALID, QUEUE_FULL, SHUTDOWN, Delivery, RetryPolicy
from databuddy_otel.event import KEYWORD_FIELDS, InvalidEvent, serialize
from databuddy_otel.ids import uuid4_text
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
from databuddy_otel.protocol import Wire
from databuddy_otel.record import EventRecord, QueuedEvent
from databuddy_otel.transport import RequestsTransport, Transport, Verify

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
        on_undelivered: Any = None,
        shutdown_timeout: float = 5.0,
        verify: Verify = True,
        transport: Transport | None = None,
    ) -> None:
        settings = config.resolve(
            client_id=client_id,
            api_key=api_key,
            api_url=api_url,
            protocol=protocol,
            website_id=website_id,
            namespace=namespace,
            source=source,
            debug=debug,
            enable_batching=enable_batching,
            batch_size=batch_size,
            batch_timeout=batch_timeout,
            max_queue_size=max_queue_size,
            enable_deduplication=enable_deduplication,
            max_deduplication_cache_size=max_deduplication_cache_size,
            timeout=timeout,
            retry_deadline=retry_deadline,
            disabled=disabled,
            on_queue_full=on_queue_full,
            shutdown_timeout=shutdown_timeout,
            verify=verify,
            on_undelivered=on_undelivered,
            transport=transport,
        )
        self.settings = settings
        self._log = logger or logging.getLogger("databuddy")
        if settings.debug:
            _enable_debug(self._log)
        self._legacy = settings.legacy
        self._defaults = {
            k: v
            for k, v in (
                ("namespace", settings.namespace),
                ("source", settings.source),
                ("websiteId", None if settings.legacy else settings.website_id),
            )
            if v is not None
        }
        self._globals: dict[str, Any] = {}
        self._middleware: list[config.Middleware] = list(middleware or ())
        self._dedup = settings.enable_deduplication
        self._closed = False
        self._next_drop_warning = 0.0
        self._warned_closed = False
        self._pool: Any = None
        self._pool_pid = 0
        self._close_lock = threading.Lock()
        self._ledger = Ledger(
            capacity=settings.max_queue_size,
            block_timeout=settings.timeout + OUTAGE_GRACE,
            block=settings.on_queue_full == "block",
            dedup_size=settings.max_deduplication_cache_size,
            on_undelivered=settings.on_undelivered,
        )
        self._delivery = Delivery(
            Wire(settings.api_url, settings.legacy, settings.client_id, settings.api_key),
            settings.transport or RequestsTransport(verify=settings.verify),
            timeout=settings.timeout,
            policy=RetryPolicy(deadline=settings.retry_deadline),
            health=self._ledger,
        )
        self._exporter = DatabuddyLogExporter(self._delivery, self._ledger)
        self._processor: BatchLogRecordProcessor | None = None
        if settings.enable_batching and not settings.disabled:
            self._processor = BatchLogRecordProcessor(
                self._exporter,
                schedule_delay_millis=settings.batch_timeout_ms,
                max_export_batch_size=settings.batch_size,
                max_queue_size=settings.max_queue_size,
            )
        _register_exit(self)

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
            data = _event_dict(event, fields)
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
            item = (body, name, event_id, caller_id)
            if _in_event_loop():
                # Never block a running event loop on the network: send from a
                # thread; the outcome reaches stats() and on_undelivered.
                self._background().submit(self._send_now, [item])
                return EventResponse(True, event_id, None)
            return self._send_now([item]).results[0]
        if not self._ledger.admit():
            if caller_id and self._dedup:
                self._ledger.unclaim(event_id)
            return self._queue_full(event_id, name)
        if self._closed:  # shutdown() began while this call was under way
            self._ledger.release(1)
            if caller_id and self._dedup:
                self._ledger.unclaim(event_id)
            return EventResponse(False, event_id, _CLOSED)
        processor.on_emit(QueuedEvent(EventRecord(body, name, event_id, caller_id)))
        return EventResponse(True, event_id, None)

    def _refuse_closed(self, data: dict[str, Any]) -> EventResponse:
        event_id, name = _text_or_none(data.get("eventId")), _text_or_none(data.get("name"))
        self._ledger.count(SHUTDOWN, [Undelivered(event_id, name, SHUTDOWN, _CLOSED)])
        if not self._warned_closed:
            self._warned_closed = True
            self._log.warning("Databuddy: event tracked after shutdown(); not sent")
        return EventResponse(False, event_id, _CLOSED)

    def _prepare(self, data: dict[str, Any]) -> tuple[str, str, str, bool] | EventResponse:
        """Fill defaults, apply globals and middleware, check and serialize."""
        event_id = data.get("eventId")
        caller_id = event_id is not None
        if not caller_id:
            data["eventId"] = uuid4_text()
        if data.get("timestamp") is None:
            now = time.time_ns() // 1_000_000
            data["timestamp"] = now
        else:
            now = None
        if data.get("anonymousId") is None or data.get("sessionId") is None:
            bound = current_ids()
            if data.get("anonymousId") is None and bound.anonymous_id is not None:
                data["anonymousId"] = bound.anonymous_id
            if data.get("sessionId") is None and bound.session_id is not None:
                data["sessionId"] = bound.session_id
        for key, value in self._defaults.items():
            if data.get(key) is None:
                data[key] = value
        if self._globals:
            props = data.get("properties")
            if props is None or isinstance(props, Mapping):
                data["properties"] = {**self._globals, **(props or {})}
        if self._middleware:
            changed = self._run_middleware(data)
            if changed is None:
                self._ledger.count_filtered()
                return EventResponse(True, _text_or_none(data.get("eventId")), None)
            data = changed
        try:
            body = serialize(data, legacy=self._legacy, now_ms=now)
        except InvalidEvent as exc:
            event_id = _text_or_none(data.get("eventId"))
            self._log.warning("Databuddy event not tracked: %s", exc)
            name = _text_or_none(data.get("name"))
            self._ledger.count(INVALID, [Undelivered(event_id, name, INVALID, str(exc))])
            return EventResponse(False, event_id, str(exc))
        event_id = data["eventId"]
        if not isinstance(event_id, str):
            event_id = str(event_id)
        return body, data["name"], event_id, caller_id

    def _run_middleware(self, data: dict[str, Any]) -> dict[str, Any] | None:
        for middleware in list(self._middleware):
            try:
                result = middleware(data)
            except Exception:
                self._log.exception("Databuddy middleware %r raised; skipped", middleware)
                continue
            if result is None:
                return None
            if isinstance(result, Mapping):
                data = dict(result)
            else:
                self._log.warning(
                    "Databuddy middleware %r returned %s; ignored",
                    middleware,
                    type(result).__name__,
                )
        return data

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

    def _send_now(self, prepared: list[tuple[str, str, str, bool]]) -> BatchEventResponse:
        """Send prepared events on this thread and report each one."""
        meta = [(event_id, name, caller_id) for _, name, event_id, caller_id in prepared]
        errors = self._delivery.send(
            [p[0] for p in prepared], single=len(prepared) == 1 and self._processor is None
        )
        self._ledger.settle(meta, errors, queued=False)
        results = [
            EventResponse(err is None, event_id, None if err is None else err.message)
            for (event_id, _, _), err in zip(meta, errors)
        ]
        return _summary(results)

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
        slots: list[EventResponse | tuple[str, str, str, bool]] = []
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
            sent = iter(self._send_now(to_send).results if to_send else [])
        results = [s if isinstance(s, EventResponse) else next(sent) for s in slots]
        return _summary(results)

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
        if processor is None or self._ledger.pending == 0:
            return BatchEventResponse(True, 0, [])
        collector = self._ledger.collect()
        try:
            finished = _run_bounded(processor.force_flush, timeout)
        finally:
            self._ledger.stop_collecting(collector)
        summary = _summary(list(collector))
        if finished:
            return summary
        left = self._ledger.pending
        message = f"flush timed out after {timeout:g}s; {left} event(s) still queued"
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
                    _run_bounded(pool.shutdown, max(end - time.monotonic(), drain))
                processor = self._processor
                if processor is not None:
                    _run_bounded(processor.shutdown, max(end - time.monotonic(), drain))
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
        self._globals = {**self._globals, **properties}

    def get_global_properties(self) -> dict[str, Any]:
        return dict(self._globals)

    def clear_global_properties(self) -> None:
        self._globals = {}

    def add_middleware(self, middleware: config.Middleware) -> None:
        """Run ``middleware(event)`` on every event.

        It returns the event, a changed copy, or ``None`` to drop it.
        """
        self._middleware.append(middleware)

    def clear_middleware(self) -> None:
        self._middleware = []

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


def _event_dict(event: Any, fields: dict[str, Any]) -> dict[str, Any] | str:
    if event is None:
        data = {}
        for key, value in fields.items():
            wire = KEYWORD_FIELDS.get(key)
            if wire is None:
                return f"unknown keyword argument {key!r}"
            data[wire] = value
        return data
    if fields:
        return "pass the event as a mapping or as keyword arguments, not both"
    if isinstance(event, str):
        return {"name": event}
    if not isinstance(event, Mapping):
        return f"event must be a mapping, not {type(event).__name__}"
    return dict(event)


def _in_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # not imported: no loop can be running
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _summary(results: list[EventResponse]) -> BatchEventResponse:
    processed = sum(1 for r in results if r.success)
    failed = next((r.error for r in results if not r.success), None)
    return BatchEventResponse(failed is None, processed, results, failed)


def _run_bounded(fn: Any, timeout: float) -> bool:
    """Run ``fn()`` on a helper thread; ``True`` if it finished within ``timeout`` s."""
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        except Exception:
            logger.exception("Databuddy background flush failed")
        finally:
            done.set()

    threading.Thread(target=run, name="databuddy-flush", daemon=True).start()
    return done.wait(timeout)


def _enable_debug(log: logging.Logger) -> None:
    log.setLevel(logging.DEBUG)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s databuddy %(levelname)s %(message)s"))
        log.addHandler(handler)


_clients: weakref.WeakSet[Databuddy] = weakref.WeakSet()
_exit_lock = threading.Lock()
_exit_registered = False


def _register_exit(client: Databuddy) -> None:
    global _exit_registered
    _clients.add(client)
    with _exit_lock:
        if not _exit_registered:
            atexit.register(_shutdown_all)
            _exit_registered = True


def _shutdown_all() -> None:
    """At interpreter exit: a short, bounded flush of every live client."""
    for client in list(_clients):
        try:
            client.shutdown()
        except Exception:
            logger.debug("Databuddy exit flush failed", exc_info=True)
