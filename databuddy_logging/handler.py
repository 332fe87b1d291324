"""``DatabuddyHandler``: tagged ``logging`` records become Databuddy custom events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from databuddy_logging import _fields, _target
from databuddy_otel import Databuddy
from databuddy_otel._runtime import config
from databuddy_otel._runtime.thread_roles import is_sending

_log = logging.getLogger("databuddy")

#: Records from these loggers (and their children) never become events: the SDK's
#: own logging and its HTTP stack's would otherwise loop back into the SDK.
IGNORED_LOGGERS = frozenset({"databuddy", "opentelemetry", "requests", "urllib3"})

DEFAULT_RECORD_FIELDS = ("message", "logger", "level", "exception")

#: The handler's own options, then those of the client it builds.
_OPTIONS = ("client", "level", "record_fields", "close_timeout", *config.CLIENT_ARGUMENTS)


class DatabuddyHandler(logging.Handler):
    """Turn tagged log records into Databuddy custom events; ignore all others.

    A record is tagged when its ``extra`` carries ``db_props`` (a mapping, or
    ``None``) or ``db_event=True``::

        logger.info("user_signup", extra={"db_props": {"plan": "pro"}, "db_anonymous_id": a})

    ``db_anonymous_id``, ``db_session_id``, ``db_event_id``, ``db_timestamp``,
    ``db_namespace`` and ``db_source`` fill the event's other fields; ids bound
    with :func:`databuddy_otel.bind_ids` apply when these are absent. Records from
    structlog's stdlib integration (``wrap_for_formatter``) are read the same way
    from their event dict. Untagged records cost one dict lookup, so the handler
    can sit on the root logger next to ordinary handlers.

    The event's name is the message *template* (``record.msg``), so
    ``logger.info("signup %s", user)`` is always the event ``signup %s``; its
    timestamp is ``db_timestamp`` or the record's creation time. ``record_fields``
    picks what the record adds to the properties (``db_props`` keys win on a
    clash; ``None`` adds nothing):

    =============  ===============================================================
    field          property key(s)
    =============  ===============================================================
    ``message``    ``log_message``: the %-formatted text, only when there were args
    ``logger``     ``log_logger``: the logger's name
    ``level``      ``log_level``: the level name in lower case (``"info"``)
    ``exception``  ``exception_type``, ``exception_message`` when ``exc_info`` is set
    =============  ===============================================================

    Construction: ``DatabuddyHandler(client=client)`` uses that client and never
    shuts it down; ``DatabuddyHandler(client_id=..., api_url=..., ...)`` takes the
    :class:`~databuddy_otel.Databuddy` keyword arguments, builds its own client and
    shuts it down in :meth:`close`; ``DatabuddyHandler()`` uses the process's default
    client (:func:`databuddy_otel.init`, else one built from the ``DATABUDDY_*``
    variables). Each form works in ``logging.config.dictConfig`` and Django's
    ``LOGGING``: ``{"class": "databuddy_logging.DatabuddyHandler"}``,
    ``{..., "client_id": "..."}``, or ``"client": "ext://myapp.analytics.client"``.

    Lifecycle: :meth:`flush` only *starts* a background flush and returns at once,
    because logging calls it holding the handler lock; :meth:`close` flushes for at
    most ``close_timeout`` seconds. Nothing raises into the application: a record
    the client refuses is reported on the ``databuddy`` logger, an unexpected
    failure goes to :meth:`~logging.Handler.handleError`.

    Never a loop: records from the loggers in :data:`IGNORED_LOGGERS`, records
    emitted on a thread that is exporting events, and records emitted while this
    thread is already inside this handler are skipped.

    Sent once: after tracking, the handler sets ``record.db_tracked`` (the event
    id, ``None`` if the client refused it), and skips records that already carry
    it, in their attributes or in their structlog event dict. A record reaching
    the handler twice (attached at two levels of the logger tree) or already
    tracked by :class:`~databuddy_logging.structlog.DatabuddyProcessor` is sent
    once; so is a record seen by two ``DatabuddyHandler`` objects.
    """

    def __init__(
        self,
        client: Databuddy | None = None,
        *,
        level: int | str = logging.NOTSET,
        record_fields: Iterable[str] | None = DEFAULT_RECORD_FIELDS,
        close_timeout: float = 5.0,
        **client_options: Any,
    ) -> None:
        fields = _fields.record_fields(record_fields)
        if isinstance(close_timeout, bool) or not isinstance(close_timeout, (int, float)):
            raise TypeError(f"close_timeout must be a number of seconds, not {close_timeout!r}")
        self._target = _target.Target(
            client, client_options, owner="DatabuddyHandler", allowed=_OPTIONS
        )
        super().__init__(level)
        self._record_fields = fields
        self._close_timeout = float(close_timeout)
        self._inside = threading.local()
        self._ignored: dict[str, bool] = {}  # logger name -> one of IGNORED_LOGGERS
        self._own_build_event = type(self).build_event is DatabuddyHandler.build_event
        self._flushing = threading.Lock()
        self._closed = False

    @property
    def client(self) -> Databuddy:
        """The client events go to (without one given, the default client at each use)."""
        return self._target.client

    # -- logging.Handler ----------------------------------------------------
    def handle(self, record: logging.LogRecord) -> bool:
        """Filter and emit, *without* the handler lock.

        ``Handler.handle`` serializes every emit on one lock. ``track()`` is
        thread-safe and never waits on the network (at most, with
        ``on_queue_full="block"``, for room in a full queue), so that lock would
        only make every logging thread queue up behind the slowest one. The tag
        check comes first so that untagged records skip even the filters: a
        handler filter can veto events, but tagging belongs on the logger.
        """
        tags = self._tags(record)
        if tags is None:
            return False
        rv: Any = self.filter(record) if self.filters else True
        if isinstance(rv, logging.LogRecord) and rv is not record:
            # Python 3.12+: a filter may return a replacement record; read its tags instead.
            record = rv
            tags = self._tags(record)
            if tags is None:
                return False
        if rv:
            self._emit(record, tags)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        """Track ``record`` if it is tagged (called by ``logging`` only through ``handle``)."""
        tags = self._tags(record)
        if tags is not None:
            self._emit(record, tags)

    def flush(self) -> None:
        """Start sending queued events on a background thread; return at once.

        Logging calls ``flush()`` holding the handler lock (``logging.shutdown``
        among others), so waiting on the network here could stall every thread
        that logs. Use ``handler.client.flush(timeout)`` to wait for delivery.
        """
        if self._closed or self.client.stats().queued == 0:
            return
        if not self._flushing.acquire(blocking=False):
            return  # a background flush is already running; it will pick these up
        try:
            threading.Thread(
                target=self._background_flush, name="databuddy-handler-flush", daemon=True
            ).start()
        except RuntimeError:  # no new threads at interpreter shutdown; close() still flushes
            self._flushing.release()

    def close(self) -> None:
        """Flush for at most ``close_timeout`` s; shut the client down if this handler made it."""
        try:
            if not self._closed:
                self._closed = True
                self._target.release(self._close_timeout)
        finally:
            super().close()

    # -- the hook -------------------------------------------------------------
    def build_event(
        self, record: logging.LogRecord, tags: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The ``track()`` keyword arguments for ``record``, or ``None`` to skip it.

        ``tags`` is where the ``db_*`` keys were found: the record's attributes,
        or the event dict of a structlog record. Override to rename or enrich.
        """
        name, extra, timestamp = self._parts(record, tags)
        return _fields.track_kwargs(name, tags, extra, timestamp)

    def _parts(
        self, record: logging.LogRecord, tags: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any], int]:
        """The event's name, the record fields it carries, and its timestamp."""
        structlog_dict = tags is not record.__dict__
        name = tags.get("event") if structlog_dict else record.msg
        extra = _fields.record_props(
            self._record_fields,
            logger=record.name,
            level=record.levelname,
            exc_info=record.exc_info or (tags.get("exc_info") if structlog_dict else None),
            message=record.getMessage if record.args and not structlog_dict else None,
        )
        return name, extra, int(record.created * 1000)

    # -- internals -------------------------------------------------------------
    def _tags(self, record: logging.LogRecord) -> Mapping[str, Any] | None:
        """Where the record's ``db_*`` keys are, or ``None`` if it must not be tracked.

        Cheapest checks first: nothing here formats or copies anything.
        """
        attrs = record.__dict__
        if _fields.PROPS_KEY in attrs or attrs.get(_fields.EVENT_KEY) is True:
            tags: Mapping[str, Any] = attrs
        else:
            msg = record.msg
            if type(msg) is not dict or not _fields.is_tagged(msg):
                return None
            tags = msg  # a structlog event dict, passed through wrap_for_formatter
        if _fields.TRACKED_KEY in tags or _fields.TRACKED_KEY in attrs:
            return None
        name = record.name
        ignored = self._ignored.get(name)
        if ignored is None:
            ignored = self._ignored[name] = name.partition(".")[0] in IGNORED_LOGGERS
        if ignored or is_sending():
            return None
        return tags

    def _emit(self, record: logging.LogRecord, tags: Mapping[str, Any]) -> None:
        inside = self._inside
        if getattr(inside, "active", False):
            return  # logged from within our own emit (a hook, a filter, the client)
        inside.active = True
        try:
            # A refused event is logged, counted and reported by the client itself.
            if self._own_build_event:  # the hot path: no keyword arguments to build and parse
                name, extra, timestamp = self._parts(record, tags)
                data = _fields.event_data(name, tags, extra, timestamp)
                response = self.client.ingest(data)
            else:
                kwargs = self.build_event(record, tags)
                if kwargs is None:
                    return
                response = self.client.track(**kwargs)
            record.__dict__[_fields.TRACKED_KEY] = response.event_id
        except Exception:
            self.handleError(record)
        finally:
            inside.active = False

    def _background_flush(self) -> None:
        try:
            self.client.flush(timeout=self._close_timeout)
        finally:
            self._flushing.release()
