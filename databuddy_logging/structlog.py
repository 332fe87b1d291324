"""``DatabuddyProcessor``: tagged structlog events become Databuddy custom events.

structlog is optional (the ``structlog`` extra: ``pip install '.[structlog]'`` in a
checkout of this package, or ``pip install structlog``): this module imports
without it, and building the processor says what to install.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from databuddy_logging import _fields
from databuddy_otel import Databuddy

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

__all__ = ["DatabuddyProcessor"]

_log = logging.getLogger("databuddy")

INSTALL_HINT = (
    "pip install structlog (or the package's structlog extra: pip install '.[structlog]' "
    "in a checkout)"
)

DEFAULT_RECORD_FIELDS = ("logger", "level", "exception")

# What structlog.stdlib.add_log_level calls these methods' levels.
_METHOD_LEVELS = {"warn": "warning", "exception": "error"}


class DatabuddyProcessor:
    """Track events that carry ``db_props`` (or ``db_event=True``); return the event dict.

    ::

        structlog.configure(processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            DatabuddyProcessor(client),
            structlog.processors.JSONRenderer(),
        ])
        log.info("user_signup", db_props={"plan": "pro"}, db_anonymous_id="anon_1")

    The event's name is the ``event`` key. ``db_anonymous_id``, ``db_session_id``,
    ``db_event_id``, ``db_timestamp``, ``db_namespace`` and ``db_source`` fill
    its other fields, so ids bound with ``bind_contextvars(db_anonymous_id=...)``
    apply to every event once ``merge_contextvars`` runs before this processor.
    ``record_fields`` adds ``log_logger`` (the ``logger`` key, when present),
    ``log_level`` (the ``level`` key, else the method name) and, for
    ``exc_info``, ``exception_type`` / ``exception_message``; ``db_props`` keys
    win on a clash. Put the processor before ``format_exc_info``, which replaces
    ``exc_info``.

    The dict goes on down the chain. It gains ``db_tracked`` (the event id, or
    ``None`` if the client refused the event); with ``strip=True`` every ``db_*``
    key is removed instead, so renderers never see them.

    Sent once with stdlib integration: a :class:`~databuddy_logging.DatabuddyHandler`
    that receives the event through ``wrap_for_formatter`` finds ``db_tracked``
    (or no ``db_*`` keys at all) and skips it; the same holds the other way round
    when the processor sits in ``ProcessorFormatter(processors=...)`` and the
    handler saw the record first. Foreign (non-structlog) records that reach
    ``ProcessorFormatter``'s ``foreign_pre_chain`` are left to the handler.

    Never raises into the chain: failures are logged to the ``databuddy`` logger.
    """

    def __init__(
        self,
        client: Databuddy,
        *,
        strip: bool = False,
        record_fields: Iterable[str] | None = DEFAULT_RECORD_FIELDS,
    ) -> None:
        try:
            importlib.import_module("structlog")
        except ImportError as exc:
            raise ImportError(
                f"DatabuddyProcessor needs structlog; install it with {INSTALL_HINT}"
            ) from exc
        if not callable(getattr(client, "track", None)):
            raise TypeError(f"client must be a databuddy_otel.Databuddy, not {client!r}")
        self._client = client
        self._strip = bool(strip)
        self._record_fields = _fields.record_fields(record_fields)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        try:
            self._track(method_name, event_dict)
        except Exception:
            _log.exception(
                "DatabuddyProcessor failed; event %r not tracked", event_dict.get("event")
            )
        if self._strip:
            _fields.strip(event_dict)
        return event_dict

    def build_event(self, method_name: str, event_dict: EventDict) -> dict[str, Any] | None:
        """The ``track()`` keyword arguments for ``event_dict``, or ``None`` to skip it.

        Override to rename or enrich events.
        """
        record = event_dict.get("_record")
        logger = event_dict.get("logger")
        if not isinstance(logger, str) and isinstance(record, logging.LogRecord):
            logger = record.name
        level = event_dict.get("level")
        if not isinstance(level, str):
            level = _METHOD_LEVELS.get(method_name, method_name)
        extra = _fields.record_props(
            self._record_fields, logger=logger, level=level, exc_info=event_dict.get("exc_info")
        )
        timestamp = int(record.created * 1000) if isinstance(record, logging.LogRecord) else None
        return _fields.track_kwargs(event_dict.get("event"), event_dict, extra, timestamp)

    def _track(self, method_name: str, event_dict: EventDict) -> None:
        record = event_dict.get("_record")
        if record is not None and not event_dict.get("_from_structlog"):
            return  # a foreign stdlib record in foreign_pre_chain: DatabuddyHandler's job
        if not _fields.is_tagged(event_dict) or _fields.TRACKED_KEY in event_dict:
            return
        if _fields.TRACKED_KEY in getattr(record, "__dict__", ()):
            return  # a DatabuddyHandler saw this record before ProcessorFormatter did
        kwargs = self.build_event(method_name, event_dict)
        if kwargs is None:
            return
        response = self._client.track(**kwargs)
        if not response.success:
            _log.warning(
                "Databuddy: structlog event %r not tracked: %s", kwargs.get("name"), response.error
            )
        event_dict[_fields.TRACKED_KEY] = response.event_id
        original = getattr(record, "msg", None)
        if type(original) is dict:
            # ProcessorFormatter works on a copy; mark the dict other handlers will read.
            original[_fields.TRACKED_KEY] = response.event_id
