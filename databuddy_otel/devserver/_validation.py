"""Schema checks of the local ingest server, one set per wire generation.

Pure functions, no I/O. Lengths are JavaScript lengths (UTF-16 code units) and the
size of ``properties`` is the length of ``JSON.stringify(properties)``, because that
is what the basket server measures (docs/protocol.md). Error strings follow zod's
wording, prefixed with the dotted path of the offending field
(``"0.name: String must contain at most 256 character(s)"``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Union

from databuddy_otel.devserver._limits import (
    MAX_EVENTS_PER_REQUEST,
    MAX_FUTURE_SKEW_MS,
    MAX_ID_LENGTH,
    MAX_KEPT_SESSION_ID_LENGTH,
    MAX_NAME_LENGTH_LEGACY,
    MAX_NAME_LENGTH_TRACK,
    MAX_NAMESPACE_LENGTH,
    MAX_PROPERTIES,
    MAX_PROPERTIES_JSON_LENGTH,
    MAX_PROPERTY_KEY_LENGTH,
    MAX_SOURCE_LENGTH,
    MAX_WEBSITE_ID_LENGTH,
    MIN_TIMESTAMP_MS,
    SESSION_ID_PATTERN,
)

#: Longest ``eventId`` the legacy schema accepts.
MAX_LEGACY_EVENT_ID_LENGTH = 512
#: ``Number.MAX_SAFE_INTEGER``: the legacy schema has no range, but SQLite and
#: JavaScript both need the timestamp to fit.
_SAFE = 2**53 - 1

_Path = tuple[Union[str, int], ...]
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
# Characters JSON.stringify writes as more than one code unit. Python's json module has
# already merged surrogate pairs, so any surrogate left in a str is a lone one.
_ESCAPED = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')
_SHORT_ESCAPES = frozenset('"\\\b\f\n\r\t')


class MalformedJSON(ValueError):
    """The request body is not a JSON document (as ``JSON.parse`` would see it)."""


@dataclass(frozen=True)
class ValidEvent:
    """An event that passed the schema, in the shape the store keeps."""

    name: str
    timestamp: int
    properties: dict[str, Any]
    event_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    website_id: str | None = None
    namespace: str | None = None
    source: str | None = None
    profile_id: str | None = None
    #: True, False or "auto" (SDK 2.6, /track only).
    anonymize_visitor_ids: bool | str | None = None


def parse_json(data: bytes) -> object:
    """Parse a request body like ``JSON.parse`` would, or raise :class:`MalformedJSON`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON(f"body is not UTF-8: {exc}") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedJSON(str(exc)) from exc


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def js_length(text: str) -> int:
    """``text.length`` in JavaScript: the number of UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def js_json_length(value: object) -> int:
    """``JSON.stringify(value).length`` for a value that came out of :func:`parse_json`.

    Iterative, so nesting as deep as the parser allows cannot exhaust the stack.
    """
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if item is None or item is True:
            total += 4
        elif item is False:
            total += 5
        elif isinstance(item, str):
            total += _js_string_literal_length(item)
        elif isinstance(item, int):
            total += len(str(item)) if abs(item) <= _SAFE else len(_js_int(item))
        elif isinstance(item, float):
            total += len(js_number(item))
        elif isinstance(item, dict):
            total += 2 + max(len(item) - 1, 0) + len(item)  # braces, commas, colons
            for key, child in item.items():
                total += _js_string_literal_length(str(key))
                stack.append(child)
        elif isinstance(item, list):
            total += 2 + max(len(item) - 1, 0)
            stack.extend(item)
        else:  # pragma: no cover - parse_json yields nothing else
            raise TypeError(f"not a JSON value: {type(item).__name__}")
    return total


def _js_string_literal_length(text: str) -> int:
    extra = 2  # the quotes
    for match in _ESCAPED.finditer(text):
        extra += 1 if match.group() in _SHORT_ESCAPES else 5  # \n vs \u0001
    return js_length(text) + extra


def _js_int(value: int) -> str:
    # JavaScript parses every JSON number into a double.
    try:
        return js_number(float(value))
    except OverflowError:
        return "null"


def js_number(value: float) -> str:
    """``String(value)`` in JavaScript (``JSON.stringify`` writes non-finite as null)."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    parts = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, parts.digits)).lstrip("0")
    exponent = int(parts.exponent)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10**n, as in ECMA-262 Number::toString
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text


def kept_session_id(session_id: str | None) -> str | None:
    """The session id as the server keeps it: ids it does not trust become None."""
    if session_id is None or js_length(session_id) > MAX_KEPT_SESSION_ID_LENGTH:
        return None
    return session_id if _SESSION_ID.fullmatch(session_id) else None


def validate_track(
    body: object, *, now_ms: int, default_website_id: str | None = None
) -> tuple[list[ValidEvent], list[str]]:
    """Check a ``POST /track`` body (one object or an array of 1 to 100).

    Returns ``(events, [])`` or ``([], errors)``: the batch is all-or-nothing.
    ``default_website_id`` (the ``website_id`` query parameter) fills in events
    that name no ``websiteId``.
    """
    errors: list[str] = []
    events: list[ValidEvent] = []
    if isinstance(body, list):
        if not body:
            return [], ["Array must contain at least 1 element(s)"]
        if len(body) > MAX_EVENTS_PER_REQUEST:
            return [], [f"Array must contain at most {MAX_EVENTS_PER_REQUEST} element(s)"]
        items: list[tuple[_Path, object]] = [((index,), raw) for index, raw in enumerate(body)]
    elif isinstance(body, dict):
        items = [((), body)]
    else:
        return [], [f"Expected object or array, received {_type_name(body)}"]
    for path, raw in items:
        event = _track_event(raw, path, errors, now_ms=now_ms, website_id=default_website_id)
        if event is not None:
            events.append(event)
    return ([], errors) if errors else (events, [])


def _track_event(
    raw: object, path: _Path, errors: list[str], *, now_ms: int, website_id: str | None
) -> ValidEvent | None:
    if not isinstance(raw, dict):
        errors.append(_issue(path, f"Expected object, received {_type_name(raw)}"))
        return None
    before = len(errors)
    name = _string(raw, "name", path, errors, max_length=MAX_NAME_LENGTH_TRACK, required=True)
    fields = {
        key: _string(raw, key, path, errors, max_length=limit, nullable=True)
        for key, limit in (
            ("namespace", MAX_NAMESPACE_LENGTH),
            ("source", MAX_SOURCE_LENGTH),
            ("anonymousId", MAX_ID_LENGTH),
            ("sessionId", MAX_ID_LENGTH),
            ("websiteId", MAX_WEBSITE_ID_LENGTH),
            ("profileId", MAX_ID_LENGTH),
        )
    }
    anonymize = raw.get("anonymizeVisitorIds")
    if anonymize is not None and anonymize not in (True, False, "auto"):
        errors.append(
            _issue(
                (*path, "anonymizeVisitorIds"),
                f"Expected boolean | 'auto', received {_type_name(anonymize)}",
            )
        )
    properties = _properties(raw, path, errors, nullable=False)
    timestamp = _timestamp(
        raw, path, errors, now_ms=now_ms, low=MIN_TIMESTAMP_MS, high=now_ms + MAX_FUTURE_SKEW_MS
    )
    if len(errors) > before or name is None or properties is None or timestamp is None:
        return None
    event_id = raw.get("eventId")  # not in the schema; kept so tests can count by id
    return ValidEvent(
        name=name,
        timestamp=timestamp,
        properties=properties,
        event_id=event_id if isinstance(event_id, str) else None,
        anonymous_id=fields["anonymousId"],
        session_id=kept_session_id(fields["sessionId"]),
        website_id=fields["websiteId"] or website_id,
        namespace=fields["namespace"],
        source=fields["source"],
        profile_id=fields["profileId"],
        anonymize_visitor_ids=anonymize if anonymize in (True, False, "auto") else None,
    )


def validate_legacy_event(
    raw: object, *, now_ms: int, client_id: str, new_event_id: Callable[[], str]
) -> tuple[ValidEvent | None, list[str]]:
    """Check one event of ``POST /`` or ``POST /batch`` (the seed's generation).

    Returns ``(event, [])`` or ``(None, errors)``; paths in errors are relative to
    the event. The stored ``eventId`` is the client's or ``new_event_id()``.
    """
    errors: list[str] = []
    if not isinstance(raw, dict):
        return None, [f"Expected object, received {_type_name(raw)}"]
    if "type" not in raw:
        errors.append("type: Required")
    elif raw["type"] != "custom":
        errors.append('type: Invalid literal value, expected "custom"')
    path: _Path = ()
    name = _string(raw, "name", path, errors, max_length=MAX_NAME_LENGTH_LEGACY, required=True)
    event_id = _string(raw, "eventId", path, errors, max_length=MAX_LEGACY_EVENT_ID_LENGTH)
    ids = {
        key: _string(raw, key, path, errors, max_length=MAX_ID_LENGTH, nullable=True)
        for key in ("anonymousId", "sessionId")
    }
    timestamp = _timestamp(raw, path, errors, now_ms=now_ms, low=-_SAFE, high=_SAFE, nullable=True)
    properties = _properties(raw, path, errors, nullable=True)
    if errors or name is None or properties is None or timestamp is None:
        return None, errors
    return (
        ValidEvent(
            name=name,
            timestamp=timestamp,
            properties=properties,
            event_id=event_id if event_id is not None else new_event_id(),
            anonymous_id=ids["anonymousId"],
            session_id=kept_session_id(ids["sessionId"]),
            website_id=client_id,
        ),
        [],
    )


def _string(
    raw: dict[str, Any],
    key: str,
    path: _Path,
    errors: list[str],
    *,
    max_length: int,
    required: bool = False,
    nullable: bool = False,
) -> str | None:
    if key not in raw:
        if required:
            errors.append(_issue((*path, key), "Required"))
        return None
    value = raw[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        errors.append(_issue((*path, key), f"Expected string, received {_type_name(value)}"))
        return None
    length = js_length(value)
    if required and length < 1:
        errors.append(_issue((*path, key), "String must contain at least 1 character(s)"))
    elif length > max_length:
        errors.append(
            _issue((*path, key), f"String must contain at most {max_length} character(s)")
        )
    return value


def _timestamp(
    raw: dict[str, Any],
    path: _Path,
    errors: list[str],
    *,
    now_ms: int,
    low: int,
    high: int,
    nullable: bool = False,
) -> int | None:
    """The event's timestamp (now when absent), or None after recording an error."""
    where = (*path, "timestamp")
    value = raw.get("timestamp")
    if "timestamp" not in raw or (value is None and nullable):
        return now_ms
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append(_issue(where, f"Expected number, received {_type_name(value)}"))
        return None
    if isinstance(value, float) and not value.is_integer():
        errors.append(_issue(where, "Expected integer, received float"))
        return None
    if value < low:
        errors.append(_issue(where, f"Number must be greater than or equal to {low}"))
        return None
    if value > high:
        errors.append(_issue(where, f"Number must be less than or equal to {high}"))
        return None
    return int(value)


def _properties(
    raw: dict[str, Any], path: _Path, errors: list[str], *, nullable: bool
) -> dict[str, Any] | None:
    """The event's properties ({} when absent), or None after recording an error."""
    where = (*path, "properties")
    value = raw.get("properties")
    if "properties" not in raw or (value is None and nullable):
        return {}
    if not isinstance(value, dict):
        errors.append(_issue(where, f"Expected object, received {_type_name(value)}"))
        return None
    before = len(errors)
    if len(value) > MAX_PROPERTIES:
        errors.append(_issue(where, f"Too many properties (max {MAX_PROPERTIES})"))
    if any(js_length(key) > MAX_PROPERTY_KEY_LENGTH for key in value):
        message = f"Property key must contain at most {MAX_PROPERTY_KEY_LENGTH} character(s)"
        errors.append(_issue(where, message))
    if js_json_length(value) > MAX_PROPERTIES_JSON_LENGTH:
        message = f"Properties too large (max {MAX_PROPERTIES_JSON_LENGTH // 1024}KB)"
        errors.append(_issue(where, message))
    return None if len(errors) > before else value


def _issue(path: _Path, message: str) -> str:
    return f"{'.'.join(map(str, path))}: {message}" if path else message


def _type_name(value: object) -> str:
    """zod's name for the JSON type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
