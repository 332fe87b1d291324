"""What both front doors share: the ``db_*`` keys and how they become a ``track()`` call.

A log record (through ``extra=``) or a structlog event dict is *tagged* when it
carries ``db_props`` (the event's properties, possibly ``None``) or
``db_event=True``. The other keys fill the event's fields:

=====================  ==========================
key                    ``track()`` argument
=====================  ==========================
``db_props``           ``properties``
``db_anonymous_id``    ``anonymous_id``
``db_session_id``      ``session_id``
``db_event_id``        ``event_id``
``db_timestamp``       ``timestamp`` (ms or ``datetime``)
``db_namespace``       ``namespace``
``db_source``          ``source``
=====================  ==========================

After a front door has handed an event to a client it writes ``db_tracked``
(the event id, or ``None`` if the client refused it) next to those keys; a door
that finds ``db_tracked`` already there skips the event, so a structlog event
that reaches both :class:`~databuddy_logging.structlog.DatabuddyProcessor` and
:class:`~databuddy_logging.DatabuddyHandler` is sent once.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

PROPS_KEY = "db_props"
EVENT_KEY = "db_event"
#: Written by a front door once it has tracked the event; its value is the event id.
TRACKED_KEY = "db_tracked"

#: ``db_*`` key → ``track()`` keyword argument (besides ``db_props``).
ID_KEYS = {
    "db_anonymous_id": "anonymous_id",
    "db_session_id": "session_id",
    "db_event_id": "event_id",
    "db_timestamp": "timestamp",
    "db_namespace": "namespace",
    "db_source": "source",
}

#: ``db_*`` key → the event's field, as ``Databuddy`` carries it (the wire spelling).
WIRE_KEYS = {
    "db_anonymous_id": "anonymousId",
    "db_session_id": "sessionId",
    "db_event_id": "eventId",
    "db_timestamp": "timestamp",
    "db_namespace": "namespace",
    "db_source": "source",
}

_WIRE_KEY_SET = frozenset(WIRE_KEYS)

#: Every key a front door reads or writes (what ``strip=True`` removes).
ALL_KEYS = (PROPS_KEY, EVENT_KEY, TRACKED_KEY, *ID_KEYS)

#: The record fields a front door can add to the properties, and under which keys.
RECORD_FIELDS = {
    "message": ("log_message",),
    "logger": ("log_logger",),
    "level": ("log_level",),
    "exception": ("exception_type", "exception_message"),
}


def is_tagged(fields: Mapping[str, Any]) -> bool:
    """Whether ``fields`` asks to become an event (cheap: two dict lookups)."""
    return PROPS_KEY in fields or fields.get(EVENT_KEY) is True


def record_fields(value: Iterable[str] | None, argument: str = "record_fields") -> frozenset[str]:
    """Check a ``record_fields`` option; ``None`` switches every field off."""
    if value is None:
        return frozenset()
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{argument} must be a list of names such as ['logger', 'level'], not {value!r}"
        )
    names = frozenset(value)
    unknown = sorted(str(n) for n in names - RECORD_FIELDS.keys())
    if unknown:
        raise ValueError(
            f"{argument}: unknown field(s) {', '.join(unknown)}; "
            f"choose from {', '.join(RECORD_FIELDS)} (or None for none)"
        )
    return names


#: ``levelname`` → the ``log_level`` property, for the standard levels (no ``lower()``).
_LEVELS = {name: name.lower() for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}


def record_props(
    wanted: frozenset[str],
    *,
    logger: object = None,
    level: object = None,
    exc_info: Any = None,
    message: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """The record fields of :data:`RECORD_FIELDS` that ``wanted`` names, from what a
    front door knows of its record (``None``: not known). ``message`` is called only
    when wanted; a message that cannot be formatted is left out."""
    props: dict[str, Any] = {}
    if message is not None and "message" in wanted:
        # A bad format string is the text handlers' to report; the event still goes.
        with contextlib.suppress(Exception):
            props["log_message"] = message()
    if isinstance(logger, str) and "logger" in wanted:
        props["log_logger"] = logger
    if isinstance(level, str) and "level" in wanted:
        props["log_level"] = _LEVELS.get(level) or level.lower()
    if exc_info and "exception" in wanted:
        props.update(exception_fields(exc_info))
    return props


def track_kwargs(
    name: Any,
    tags: Mapping[str, Any],
    extra_props: Mapping[str, Any],
    timestamp: int | None = None,
) -> dict[str, Any]:
    """The ``track()`` keyword arguments for one tagged record or event dict.

    ``extra_props`` (the record fields) go under the caller's ``db_props``,
    whose keys win. Values are passed through unchecked: the client validates
    and converts them, and reports what it refuses instead of raising.
    """
    data = event_data(name, tags, extra_props, timestamp)
    return {_ARGUMENTS.get(field, field): value for field, value in data.items()}


#: The event's field → its ``track()`` keyword argument, where the two differ.
_ARGUMENTS = {WIRE_KEYS[key]: argument for key, argument in ID_KEYS.items()}


def event_data(
    name: Any,
    tags: Mapping[str, Any],
    extra_props: Mapping[str, Any],
    timestamp: int | None = None,
) -> dict[str, Any]:
    """The event for one tagged record or event dict, with its own field names (what a
    front door hands the client directly, without keyword arguments to parse).

    ``extra_props`` (the record fields) go under the caller's ``db_props``, whose
    keys win. Values are passed through unchecked: the client validates them.
    """
    props = tags.get(PROPS_KEY)
    if extra_props:
        if props is None:
            props = dict(extra_props)
        elif isinstance(props, Mapping):
            props = {**extra_props, **props}
    data: dict[str, Any] = {
        "name": name if isinstance(name, str) or name is None else str(name),
        "properties": props,
    }
    if tags.keys() & _WIRE_KEY_SET:  # rare: skip the loop for plain db_props records
        get = tags.get
        for key, field in WIRE_KEYS.items():
            value = get(key)
            if value is not None:
                data[field] = value
    if timestamp is not None and "timestamp" not in data:
        data["timestamp"] = timestamp
    return data


def exception_fields(exc_info: Any) -> dict[str, str]:
    """``exception_type`` and ``exception_message`` for a record's ``exc_info``.

    Accepts what logging and structlog accept: ``True`` (the exception being
    handled), an exception instance, or a ``sys.exc_info()`` tuple.
    """
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc: Any = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
    else:
        return {}
    if not isinstance(exc, BaseException):
        return {}
    cls = type(exc)
    qualname = cls.__qualname__
    if cls.__module__ not in ("builtins", "__main__"):
        qualname = f"{cls.__module__}.{qualname}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {cls.__name__}>"
    return {"exception_type": qualname, "exception_message": message}


def strip(event: MutableMapping[str, Any]) -> None:
    """Remove every ``db_*`` key the front doors use from ``event``."""
    for key in ALL_KEYS:
        event.pop(key, None)
