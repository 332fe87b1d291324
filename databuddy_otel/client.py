"""The ``Databuddy`` client: ``track`` / ``batch`` / ``flush`` as the Node SDK documents them.

``track()`` checks and serializes an event on the caller's thread (a few
microseconds) and offers it to the client's :class:`~databuddy_otel._queue.event_queue.EventQueue`,
which owns it from then on: batching, requests in flight, retries, the spool,
and the flush at exit. Nothing here raises into the application after
construction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from typing_extensions import Unpack

from databuddy_otel._event.enrichment import Enricher, check_middleware
from databuddy_otel._event.event import (
    InvalidEvent,
    Prepared,
    batch_items,
    event_from_call,
    event_from_mapping,
    text_or_none,
)
from databuddy_otel._event.preparation import Preparation
from databuddy_otel._queue.event_queue import CLOSED_MESSAGE, EventQueue
from databuddy_otel._queue.ledger import Ledger
from databuddy_otel._queue.settlement import CLOSED_WARNING
from databuddy_otel._runtime import config, exit_hooks, sdk_log
from databuddy_otel._runtime.state import State
from databuddy_otel._runtime.thread_roles import in_event_loop
from databuddy_otel.models import (
    SHUTDOWN,
    BatchEventInput,
    BatchEventResponse,
    CustomEventInput,
    EventResponse,
    Stats,
    TrackFields,
    Undelivered,
)

# EventResponse((...)) without the NamedTuple's Python-level __new__: a hot-path saving.
_response = tuple.__new__
_OPEN = State.OPEN


class Databuddy:
    """Send custom events to Databuddy: ``track``, ``batch``, ``flush`` as the Node SDK names them.

    >>> client = Databuddy(client_id="...")           # doctest: +SKIP
    >>> client.track(name="user_signup", properties={"plan": "pro"})  # doctest: +SKIP
    EventResponse(success=True, event_id='...', error=None)

    Every argument is keyword-only and checked here; after construction no method
    raises. Thread-safe, and usable after ``fork`` (a child starts with an empty
    queue of its own). Every open client is flushed at interpreter exit.

    Args:
        logger: Where the client logs: a ``logging.Logger``, a ``LoggerAdapter``, or
            any object with ``debug``/``info``/``warning``/``error`` methods.
            Default: the ``databuddy`` logger.
        middleware: Callables ``fn(event) -> event | None`` run on every event.

    Keyword Args:
        client_id: The website's client id. Environment: ``DATABUDDY_CLIENT_ID``.
        api_key: An API key with the ``track:events`` scope (``/track`` only).
            Environment: ``DATABUDDY_API_KEY``. With neither credential, the client
            is disabled and logs one WARNING.
        api_url: The ingest server's base address. Environment: ``DATABUDDY_API_URL``;
            default ``https://basket.databuddy.cc``.
        protocol: ``"track"`` (``POST /track``) or ``"legacy"`` (``POST /`` and ``/batch``).
        website_id: ``websiteId`` stamped on every event (``protocol="track"``), for
            keys that cover several websites.
        namespace: Default ``namespace`` of events that set none.
        source: Default ``source`` of events that set none.
        debug: Log every send at DEBUG and every refusal at WARNING.
            Environment: ``DATABUDDY_DEBUG``.
        enable_batching: Queue events and send them in batches from background
            threads; when off, ``track()`` sends on the calling thread.
        batch_size: Events that trigger a send (at most 100).
        batch_timeout: **Milliseconds** a partial batch may wait.
        max_queue_size: Events held in memory at most.
        max_concurrent_requests: Requests in flight at once (order across requests
            is not guaranteed).
        enable_deduplication: Skip events whose caller-chosen ``eventId`` was
            delivered or is on its way.
        max_deduplication_cache_size: Delivered ids remembered for that.
        timeout: Seconds for one HTTP request. Environment: ``DATABUDDY_TIMEOUT``;
            default 10.
        retry_deadline: Seconds a group of events may be retried; also the default
            timeout of :meth:`flush`. Environment: ``DATABUDDY_RETRY_DEADLINE``;
            default 30.
        disabled: Check events but send nothing. Environment: ``DATABUDDY_DISABLED``.
        on_queue_full: ``"block"`` (wait for room while the server answers, at most
            ``timeout`` + 1 s) or ``"drop"`` (refuse at once).
        on_undelivered: Called with a list of :class:`~databuddy_otel.Undelivered`
            for every event that will never arrive; keep it short.
        shutdown_timeout: Seconds :meth:`shutdown` and the exit flush may take.
        spool_dir: A directory for the write-ahead spool (POSIX).
            Environment: ``DATABUDDY_SPOOL_DIR``.
        spool_max_bytes: Bound of this process's spool files; past it, events are
            refused as ``spool_full``.
        spool_fsync: ``"interval"`` (about once a second), ``"always"`` or ``"never"``.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        transport: A replacement HTTP stack (see :class:`databuddy_otel.models.Transport`).

    Raises:
        ValueError: A bad setting: a blank credential, an unknown ``protocol``,
            ``on_queue_full`` or ``spool_fsync``, an ``api_url`` without ``http://``
            or ``https://``, a non-positive number, ``protocol="legacy"`` without a
            client id, a ``DATABUDDY_DEBUG``/``DATABUDDY_DISABLED`` value that is not
            a boolean, or ``spool_dir`` on a system without ``fcntl``. The message
            names the argument or variable.
        TypeError: An ``async`` or non-callable middleware, or a ``logger`` that
            lacks a logging method.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger | logging.LoggerAdapter[Any] | sdk_log.Log | None = None,
        middleware: Iterable[config.Middleware] | None = None,
        **options: Unpack[config.ClientOptions],
    ) -> None:
        settings = config.resolve(options)
        self.settings = settings
        self._log = sdk_log.resolve(logger, settings.debug)
        self._enricher = Enricher(settings.event_defaults, middleware or ())
        self._dedup = settings.enable_deduplication
        self._batching = settings.enable_batching
        self._ledger = Ledger(
            log=self._log,
            dedup_size=settings.max_deduplication_cache_size,
            on_undelivered=settings.on_undelivered,
        )
        self._state = State.OPEN  # this object's alone; the queue keeps its own
        self._warned_closed = False
        preparation = Preparation(self._enricher, settings.wire_protocol, self._ledger, self._log)
        self._prepare = preparation.prepare
        self._invalid = preparation.invalid
        self._queue: EventQueue | None = None
        if not settings.disabled:
            spool = None
            if settings.spool_dir is not None:
                try:
                    from databuddy_otel._spool.spool import Spool
                except ImportError as exc:  # fcntl: POSIX only
                    raise ValueError(f"spool_dir needs a POSIX system: {exc}") from None
                spool = Spool(settings, ledger=self._ledger, log=self._log)
            self._queue = EventQueue(settings, ledger=self._ledger, log=self._log, spool=spool)
            exit_hooks.close_when_dropped(self, self._queue)

    # -- tracking ---------------------------------------------------------
    def track(
        self,
        event: CustomEventInput | Mapping[str, Any] | str | None = None,
        properties: Mapping[str, Any] | None = None,
        /,
        **fields: Unpack[TrackFields],
    ) -> EventResponse:
        """Track one custom event; never raises.

        Pass keyword arguments (``name=``, ``properties=``, ``anonymous_id=``,
        ``session_id=``, ``event_id=``, ``timestamp=``, ``namespace=``, ``source=``,
        ``website_id=``, ``profile_id=``, ``anonymize_visitor_ids=``), the
        documented mapping (``{"name": ..., "properties": ..., "anonymousId": ...}``;
        the snake_case spellings work too), or the name and properties by
        position, as other SDKs take them: ``track("signup", {"plan": "pro"})``.

        With batching (the default) it returns once the event is queued: at
        once, unless the queue is full while the server answers (back-pressure:
        at most ``timeout`` + 1 s; never on an event loop's thread, never with a
        spool). Without batching it sends the event and returns the server's verdict.
        """
        try:
            return self._track(event_from_call(event, properties, fields))
        except InvalidEvent as exc:
            return self._invalid(None, None, str(exc))
        except Exception as exc:
            self._log.exception("Databuddy track() failed")
            return EventResponse(False, None, f"internal error: {type(exc).__name__}")

    def ingest(self, data: dict[str, Any], *, wait: bool = True) -> EventResponse:
        """The front doors' port: :meth:`track` for an event dict the caller gives up.

        For the adapters that turn other data into events (the logging handler,
        the structlog processor, the OpenTelemetry exporters). ``data`` has the
        wire's field names (``name``, ``properties``, ``anonymousId``, ...) and is
        filled in place. It takes the same road as a :meth:`track` call: ids,
        defaults, bound ids, global properties, the middleware (once), the checks,
        deduplication, the counters, ``on_undelivered`` and this client's logger.

        With ``wait=False`` the event is only queued, even without batching, and a
        full memory queue refuses it at once (counted as ``queue_full`` and reported)
        instead of waiting for room: the caller never waits on the network. Never raises.
        """
        try:
            return self._track(data, wait)
        except Exception as exc:
            self._log.exception("Databuddy track() failed")
            return EventResponse(False, None, f"internal error: {type(exc).__name__}")

    @property
    def logger(self) -> sdk_log.Log:
        """Where this client logs (``logger=``, else the ``databuddy`` logger)."""
        return self._log

    def _track(self, data: dict[str, Any], wait: bool = True) -> EventResponse:
        if self._state is not _OPEN:
            return self._refuse_closed(data)
        prepared = self._prepare(data)
        if isinstance(prepared, EventResponse):
            return prepared
        body, name, event_id, caller_id = prepared
        queue = self._queue
        if queue is None:  # disabled: checked, never sent
            return _response(EventResponse, (True, event_id, None))
        if caller_id and self._dedup and not self._ledger.claim(event_id):
            return _response(EventResponse, (True, event_id, None))
        if self._batching or not wait or in_event_loop():
            # An event loop's thread never waits for the network: queued, sent at once.
            failure = queue.offer(body, name, event_id, caller_id, wait=wait)
            if failure is None:
                return _response(EventResponse, (True, event_id, None))
            if caller_id and self._dedup:
                self._ledger.unclaim(event_id)
            return EventResponse(False, event_id, failure.message)
        return queue.send_now([prepared], single=True)[0]

    def _refuse_closed(self, data: dict[str, Any]) -> EventResponse:
        event_id, name = text_or_none(data.get("eventId")), text_or_none(data.get("name"))
        self._ledger.count_refused_closed(Undelivered(event_id, name, SHUTDOWN, CLOSED_MESSAGE))
        if not self._warned_closed:
            self._warned_closed = True
            self._log.warning(CLOSED_WARNING)
        return EventResponse(False, event_id, CLOSED_MESSAGE)

    def batch(self, events: Iterable[BatchEventInput | Mapping[str, Any]]) -> BatchEventResponse:
        """Send up to 100 events now, in one request, on this thread; never raises.

        It waits for the server's answer and its retries: from async code,
        ``await client.abatch(events)``.
        """
        claimed: list[str] = []
        try:
            return self._batch(events, claimed)
        except Exception as exc:
            for event_id in claimed:
                self._ledger.unclaim(event_id)
            self._log.exception("Databuddy batch() failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")

    def _batch(self, events: Any, claimed: list[str]) -> BatchEventResponse:
        try:
            items = batch_items(events)
        except InvalidEvent as exc:
            return BatchEventResponse(False, error=str(exc))
        if self._state is not _OPEN:
            return BatchEventResponse(False, error=CLOSED_MESSAGE)
        slots: list[EventResponse | Prepared] = []
        for item in items:
            try:
                prepared = self._prepare(event_from_mapping(item))
            except InvalidEvent as exc:
                prepared = self._invalid(
                    text_or_none(item.get("eventId")), item.get("name"), str(exc)
                )
            if not isinstance(prepared, EventResponse):
                _, _, event_id, caller_id = prepared
                if self._queue is None:
                    prepared = EventResponse(True, event_id, None)
                elif caller_id and self._dedup:
                    if not self._ledger.claim(event_id):
                        prepared = EventResponse(True, event_id, None)
                    else:
                        claimed.append(event_id)
            slots.append(prepared)
        to_send = [s for s in slots if not isinstance(s, EventResponse)]
        queue = self._queue
        sent = queue.send_now(to_send, single=False) if queue and to_send else []
        answers = iter(sent)
        results = [s if isinstance(s, EventResponse) else next(answers) for s in slots]
        # processed: what the server accepted, not duplicates skipped or events dropped
        return BatchEventResponse.of(results, processed=sum(1 for r in sent if r.success))

    async def abatch(
        self, events: Iterable[BatchEventInput | Mapping[str, Any]]
    ) -> BatchEventResponse:
        """``await client.abatch(events)``: :meth:`batch` without blocking the event loop."""
        import asyncio

        items = list(events) if isinstance(events, Iterable) else events
        return await asyncio.get_running_loop().run_in_executor(None, self.batch, items)

    def flush(self, timeout: float | None = None) -> BatchEventResponse:
        """Send every queued event now; wait at most ``timeout`` seconds.

        Events still being retried when the time is up stay queued (nothing is
        dropped); the response then says so. The default timeout is the retry
        deadline. ``success`` means every event the call settled was accepted
        and none is left waiting, as for :meth:`batch`.
        """
        try:
            queue = self._queue
            if queue is None:
                return BatchEventResponse(True, 0, [])
            return queue.flush(self.settings.retry_deadline if timeout is None else timeout)
        except Exception as exc:
            self._log.exception("Databuddy flush() failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")

    async def aflush(self, timeout: float | None = None) -> BatchEventResponse:
        """``await client.aflush()``: :meth:`flush` without blocking the event loop."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    def shutdown(self, timeout: float | None = None) -> BatchEventResponse:
        """Flush (within ``timeout``, default ``shutdown_timeout``) and stop; idempotent.

        Events still undelivered then are reported as ``shutdown`` (with a
        spool they stay there for the next start). A request already in flight
        may add up to one second.
        """
        if self._state is _OPEN:
            self._state = State.CLOSING
        queue = self._queue
        try:
            if queue is None:
                return BatchEventResponse(True, 0, [])
            return queue.close(self.settings.shutdown_timeout if timeout is None else timeout)
        except Exception as exc:
            self._log.exception("Databuddy shutdown() failed")
            return BatchEventResponse(False, 0, [], f"internal error: {type(exc).__name__}")
        finally:
            self._state = State.CLOSED

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
        """A copy of the properties sent with every event."""
        return dict(self._enricher.globals)

    def clear_global_properties(self) -> None:
        """Stop adding global properties to events."""
        self._enricher.globals = {}

    def add_middleware(self, middleware: config.Middleware) -> None:
        """Run ``middleware(event)`` on every event.

        It returns the event, a changed copy, or ``None`` to drop it; an
        ``async`` function is refused with ``TypeError``.
        """
        self._enricher.middleware.append(check_middleware(middleware))

    def clear_middleware(self) -> None:
        """Remove every middleware, those given to the constructor included."""
        self._enricher.middleware = []

    def get_deduplication_cache_size(self) -> int:
        """Event ids remembered for deduplication (delivered, or on their way)."""
        return self._ledger.dedup_size_now()

    def clear_deduplication_cache(self) -> None:
        """Forget the ids of delivered events; a repeated id is sent again."""
        self._ledger.clear_dedup()

    def stats(self) -> Stats:
        """Counters: queued, spooled, delivered, and undelivered by reason."""
        queue = self._queue
        return self._ledger.snapshot() if queue is None else queue.stats()

    def __repr__(self) -> str:
        s = self.settings
        key = ", api_key='***'" if s.api_key else ""
        return (
            f"Databuddy(api_url={s.api_url!r}, protocol={s.protocol!r}, "
            f"client_id={s.client_id!r}{key})"
        )
