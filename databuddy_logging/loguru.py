"""``DatabuddySink``: tagged loguru messages become Databuddy custom events.

::

    from loguru import logger
    from databuddy_logging.loguru import DatabuddySink

    logger.add(DatabuddySink(client))
    logger.info("user_signup", db_props={"plan": "pro"})        # an event
    logger.bind(db_anonymous_id="anon_1").info("login", db_event=True)
    logger.info("cache warmed")                                 # not an event

The tagging rules are the logging handler's: a message is an event when its
``extra`` (``bind()`` or the keyword arguments of the call) carries ``db_props`` or
``db_event=True``; ``db_anonymous_id``, ``db_session_id``, ``db_event_id``,
``db_timestamp``, ``db_namespace`` and ``db_source`` fill the other fields. The
message is the event's name, so keep values out of it (``logger.info("signup {}",
plan)`` makes one name per plan): put them in ``db_props``. ``record_fields`` adds
``log_logger`` (the module), ``log_level`` and, for ``logger.exception()``,
``exception_type`` / ``exception_message``.

loguru is optional: this module does not import it. The sink never raises into
loguru, skips what the SDK itself logs while it sends (stdlib logging routed into
loguru by an ``InterceptHandler`` cannot loop back: loguru also refuses a message
logged from inside a sink), and marks each message it tracked with ``db_tracked``,
so a second sink of ours sends it once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from databuddy_logging import _fields, _target
from databuddy_otel import Databuddy
from databuddy_otel._runtime import config
from databuddy_otel._runtime.thread_roles import is_sending

__all__ = ["DatabuddySink"]

_log = logging.getLogger("databuddy")

DEFAULT_RECORD_FIELDS = ("logger", "level", "exception")
_OPTIONS = ("client", "record_fields", "close_timeout", *config.CLIENT_ARGUMENTS)


class DatabuddySink:
    """A loguru sink (``logger.add(DatabuddySink(...))``) that tracks tagged messages.

    Args:
        client: The client events go to. Without one, the sink builds its own from
            ``client_options`` (each falls back to its ``DATABUDDY_*`` variable), and
            shuts it down when loguru removes the sink; with neither, it uses the
            process's default client (:func:`databuddy_otel.init`).
        record_fields: Which of ``logger``, ``level``, ``exception`` to add to the
            properties; ``None`` for none.
        close_timeout: Seconds ``logger.remove()`` may wait for the events to go.
        **client_options: ``Databuddy(...)`` options, when no client is given.

    Raises:
        TypeError: A client together with client options, something that is not a
            client, or an unknown option (named, with the closest one).
        ValueError: A bad ``record_fields`` name, or a bad client option.
    """

    def __init__(
        self,
        client: Databuddy | None = None,
        *,
        record_fields: Iterable[str] | None = DEFAULT_RECORD_FIELDS,
        close_timeout: float = 5.0,
        **client_options: Any,
    ) -> None:
        self._record_fields = _fields.record_fields(record_fields)
        if isinstance(close_timeout, bool) or not isinstance(close_timeout, (int, float)):
            raise TypeError(f"close_timeout must be a number of seconds, not {close_timeout!r}")
        self._target = _target.Target(
            client, client_options, owner="DatabuddySink", allowed=_OPTIONS
        )
        self._close_timeout = float(close_timeout)
        self._stopped = False

    @property
    def client(self) -> Databuddy:
        """The client events go to (without one given, the default client at each use)."""
        return self._target.client

    def write(self, message: Any) -> None:
        """Called by loguru for every message; tracks the tagged ones, never raises."""
        try:
            extra = message.record["extra"]
            if not _fields.is_tagged(extra) or _fields.TRACKED_KEY in extra:
                return
            if self._stopped or is_sending():
                return  # what the SDK logs while it sends is never an event
            self._track(message.record, extra)
        except Exception:
            _log.exception("DatabuddySink failed; a loguru message was not tracked")

    def _track(self, record: Any, extra: dict[str, Any]) -> None:
        exc = record.get("exception")
        props = _fields.record_props(
            self._record_fields,
            logger=record.get("name"),
            level=getattr(record.get("level"), "name", None),
            exc_info=(exc.type, exc.value, exc.traceback) if exc else None,
        )
        stamp = record.get("time")
        timestamp = int(stamp.timestamp() * 1000) if stamp is not None else None
        data = _fields.event_data(record.get("message"), extra, props, timestamp)
        extra[_fields.TRACKED_KEY] = self.client.ingest(data).event_id

    def stop(self) -> None:
        """Called by ``logger.remove()``: flush for at most ``close_timeout`` seconds, and
        shut the client down if this sink built it."""
        if self._stopped:
            return
        self._stopped = True
        self._target.release(self._close_timeout)
