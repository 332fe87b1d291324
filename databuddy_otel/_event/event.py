"""The event model: one custom event, checked against the server's limits and
serialized once, for one wire generation.

An event reaches :func:`serialize` as a plain dict with the documented camelCase
keys (``name``, ``properties``, ``eventId``, ``timestamp``, ``anonymousId``,
``sessionId``, ``namespace``, ``source``, ``websiteId``, ``profileId``,
``anonymizeVisitorIds``). What the server would reject raises
:class:`InvalidEvent` with a message that says why; nothing is ever sent that
the server's schema refuses.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from databuddy_otel._event import encoding
from databuddy_otel._event.limits import (
    MAX_EVENTS_PER_REQUEST,
    MAX_FUTURE_SKEW_MS,
    MAX_KEPT_SESSION_ID_LENGTH,
    MAX_PROPERTIES,
    MAX_PROPERTIES_JSON_LENGTH,
    MAX_PROPERTY_KEY_LENGTH,
    MIN_TIMESTAMP_MS,
    SESSION_ID_PATTERN,
)
from databuddy_otel._wire.protocol import Protocol

#: Keyword arguments of ``track()`` and the wire field each one fills.
KEYWORD_FIELDS = {
    "name": "name",
    "properties": "properties",
    "event_id": "eventId",
    "timestamp": "timestamp",
    "anonymous_id": "anonymousId",
    "session_id": "sessionId",
    "namespace": "namespace",
    "source": "source",
    "website_id": "websiteId",
    "profile_id": "profileId",
    "anonymize_visitor_ids": "anonymizeVisitorIds",
}
#: Keys of the mapping form: the wire spellings and the Python ones.
MAPPING_FIELDS = {**KEYWORD_FIELDS, **{wire: wire for wire in KEYWORD_FIELDS.values()}}

NAME_REQUIRED = "Event name is required and must be a string"

_SESSION_ID = re.compile(SESSION_ID_PATTERN)


class Prepared(NamedTuple):
    """One event checked and serialized, with what settling it needs."""

    body: str
    name: str
    event_id: str
    caller_id: bool


def event_from_call(event: Any, properties: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The event dict (wire keys) from ``track()``'s arguments; :class:`InvalidEvent` if none.

    ``event`` is the documented mapping, or the event's name (then ``properties``
    may follow it, as ``track("signup", {"plan": "pro"})``, and keyword fields
    may add the rest); ``fields`` the keyword form. The caller's mapping is
    copied, never changed.
    """
    if event is None:
        try:
            data = {KEYWORD_FIELDS[key]: value for key, value in fields.items()}
        except KeyError as exc:
            raise InvalidEvent(_unknown_key(exc.args[0], keyword=True)) from None
        if properties is not None:
            raise InvalidEvent("properties given by position need the event's name before them")
        return data
    if isinstance(event, str):
        data = {"name": event}
        for key, value in fields.items():
            wire = KEYWORD_FIELDS.get(key)
            if wire is None:
                raise InvalidEvent(_unknown_key(key, keyword=True))
            if wire == "name" or (wire == "properties" and properties is not None):
                raise InvalidEvent(f"{key} is given twice: by position and as {key}=")
            data[wire] = value
        if properties is not None:
            data["properties"] = properties
        return data
    if fields or properties is not None:
        raise InvalidEvent("pass the event as a mapping or as keyword arguments, not both")
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"event must be a mapping, not {type(event).__name__}")
    return event_from_mapping(event)


def event_from_mapping(event: Mapping[Any, Any]) -> dict[str, Any]:
    """A copy of ``event`` with wire keys; the Python spellings are accepted too."""
    data: dict[str, Any] = {}
    for key, value in event.items():
        wire = MAPPING_FIELDS.get(key)
        if wire is None:
            if key == "type" and value == "custom":
                continue  # the batch() form's marker
            raise InvalidEvent(_unknown_key(key, keyword=False))
        if wire in data and data[wire] != value:
            raise InvalidEvent(f"{key!r} and {wire!r} name the same field with different values")
        data[wire] = value
    return data


def batch_items(events: Any) -> list[Mapping[str, Any]]:
    """The events of one ``batch()`` call; ``InvalidEvent`` with the Node SDK's message
    when the call as a whole is refused (nothing is sent then)."""
    if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable):
        raise InvalidEvent("Events must be an array")
    items = list(events)
    if not items:
        raise InvalidEvent("Events array cannot be empty")
    if len(items) > MAX_EVENTS_PER_REQUEST:
        raise InvalidEvent("Batch size cannot exceed 100 events")
    if not all(
        isinstance(e, Mapping) and isinstance(e.get("name"), str) and e.get("name") for e in items
    ):
        raise InvalidEvent("All events must have a valid name")
    return items


def _unknown_key(key: object, *, keyword: bool) -> str:
    if keyword:
        hint = {wire: py for py, wire in KEYWORD_FIELDS.items()}.get(str(key))
        if hint is None:
            close = difflib.get_close_matches(str(key), list(KEYWORD_FIELDS), 1, 0.6)
            hint = close[0] if close else "properties" if str(key) == "props" else None
        tip = f"; did you mean {hint}=?" if hint else ""
        return f"unknown keyword argument {key!r}{tip}"
    return (
        f"unknown event field {key!r}; the fields are "
        f"{', '.join(k for k in KEYWORD_FIELDS.values())} (or their snake_case spellings)"
    )


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def session_id_kept(session_id: Any) -> bool:
    """Whether the server stores this session id (else it stores the event without one)."""
    return not isinstance(session_id, str) or (
        len(session_id) <= MAX_KEPT_SESSION_ID_LENGTH and _SESSION_ID.match(session_id) is not None
    )


class InvalidEvent(ValueError):
    """The event breaks a server limit; the message says which."""


def js_length(text: str) -> int:
    """Length of ``text`` as JavaScript counts it (UTF-16 code units)."""
    if len(text) * 2 <= MAX_PROPERTIES_JSON_LENGTH and text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _check_text(event: dict[str, Any], key: str, limit: int) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, str):
            value = str.__str__(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        else:
            raise InvalidEvent(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > limit or (len(value) * 2 > limit and js_length(value) > limit):
        raise InvalidEvent(f"{key} too long (max {limit} characters)")
    return value


def _check_name(event: dict[str, Any], limit: int) -> str:
    name = event.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidEvent(NAME_REQUIRED)
    if len(name) * 2 > limit and js_length(name) > limit:
        raise InvalidEvent(f"Event name too long (max {limit} characters)")
    return name if type(name) is str else str.__str__(name)


def to_millis(value: Any) -> int:
    """An event timestamp as integer milliseconds since the epoch.

    Accepts ``int``/``float`` milliseconds, aware or naive (local time)
    ``datetime`` objects, ``date`` objects (midnight, local time) and ISO 8601
    strings (``"2026-01-31T12:00:00Z"``), as the server does.
    """
    if isinstance(value, bool):
        raise InvalidEvent("timestamp must be integer milliseconds, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidEvent("timestamp must be a finite number of milliseconds")
        return int(value)
    if isinstance(value, str):
        value = _parse_iso(value)
    if isinstance(value, _dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, _dt.date):
        return int(_dt.datetime(value.year, value.month, value.day).timestamp() * 1000)
    raise InvalidEvent(
        f"timestamp must be milliseconds, a datetime or an ISO 8601 string, "
        f"not {type(value).__name__}"
    )


def _parse_iso(text: str) -> _dt.datetime:
    stripped = text.strip()
    if stripped.endswith(("Z", "z")):  # fromisoformat reads "Z" only from Python 3.11
        stripped = stripped[:-1] + "+00:00"
    try:
        return _dt.datetime.fromisoformat(stripped)
    except ValueError:
        raise InvalidEvent(f"timestamp {text!r} is not an ISO 8601 date and time") from None


def _check_properties(props: Any) -> tuple[Any, str]:
    """Return properties (possibly converted) and their JSON text."""
    if props is None:
        return {}, "{}"
    if type(props) is not dict:
        if not isinstance(props, Mapping):
            raise InvalidEvent(f"properties must be a mapping, not {type(props).__name__}")
        props = dict(props)  # the C encoder takes only real dicts
    if len(props) > MAX_PROPERTIES:
        raise InvalidEvent(f"Too many properties (max {MAX_PROPERTIES})")
    half = MAX_PROPERTY_KEY_LENGTH // 2  # fits however JavaScript counts it
    try:
        # join() refuses any key that is not a string, and a short total
        # settles every key's length in one step.
        plain = len("".join(props)) <= half or all(len(key) <= half for key in props)
    except TypeError:
        plain = False
    if not plain:
        props = encoding.sanitize(props)
        _check_keys(props)
    text = encoding.dumps(props)
    if (
        len(text) > MAX_PROPERTIES_JSON_LENGTH
        and _props_js_length(text) > MAX_PROPERTIES_JSON_LENGTH
    ):
        raise InvalidEvent("Properties too large (max 32KB)")
    return props, text


def _check_keys(props: dict[str, Any]) -> None:
    if len(props) > MAX_PROPERTIES:
        raise InvalidEvent(f"Too many properties (max {MAX_PROPERTIES})")
    for key in props:
        if js_length(key) > MAX_PROPERTY_KEY_LENGTH:
            raise InvalidEvent(
                f"Property key too long (max {MAX_PROPERTY_KEY_LENGTH} characters): {key[:40]!r}..."
            )


def _props_js_length(ascii_json: str) -> int:
    # The server measures JSON.stringify(properties), which leaves non-ASCII
    # characters unescaped; re-encode that way only when the ASCII form is too long.
    import json

    unescaped = json.dumps(json.loads(ascii_json), ensure_ascii=False, separators=(",", ":"))
    return js_length(unescaped)


def serialize(
    event: dict[str, Any], *, protocol: Protocol, now_ms: int | None = None, own_id: bool = False
) -> str:
    """Check ``event`` against ``protocol``'s schema and return its wire JSON.

    ``event`` must already carry ``eventId`` and ``timestamp``. ``now_ms`` is the
    time the caller stamped a timestamp it generated (which needs no check), and
    ``own_id`` says the id was generated here (a UUID needs no check either).
    Raises :class:`InvalidEvent` when the server would refuse the event.
    """
    quote = encoding.quote
    name = _check_name(event, protocol.name_limit)
    _, props_json = _check_properties(event.get("properties"))
    timestamp = event["timestamp"]
    if timestamp is not now_ms:
        if type(timestamp) is not int:
            timestamp = to_millis(timestamp)
        if timestamp < MIN_TIMESTAMP_MS:
            raise InvalidEvent("timestamp is before 2000-01-01 (milliseconds expected)")
        if timestamp > (now_ms or time.time_ns() // 1_000_000) + MAX_FUTURE_SKEW_MS:
            raise InvalidEvent("timestamp is more than one hour in the future")
    text = protocol.opening + quote(name)
    if own_id:
        text += ',"eventId":"' + event["eventId"] + '"'
    else:
        # /track strips eventId (our deduplication still needs it there).
        event_id = _check_text(event, "eventId", protocol.event_id_limit)
        if event_id is not None:
            text += ',"eventId":' + quote(event_id)
    text += f',"timestamp":{timestamp},"properties":{props_json}'
    for key, prefix, limit in protocol.fields:
        if event.get(key) is not None:
            text += prefix + quote(_check_text(event, key, limit) or "")
    if protocol.anonymize:
        anonymize = event.get("anonymizeVisitorIds")
        if anonymize is not None:
            if anonymize is not True and anonymize is not False and anonymize != "auto":
                raise InvalidEvent(
                    f"anonymizeVisitorIds must be True, False or 'auto', not {anonymize!r}"
                )
            text += ',"anonymizeVisitorIds":' + (
                '"auto"' if anonymize == "auto" else "true" if anonymize else "false"
            )
    return text + "}"
