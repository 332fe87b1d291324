"""Checks of ``DevServer``'s arguments: each raises at once, with a message naming the
argument and what it takes, so a wrong call fails where it is written rather than as
a puzzling answer later."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from databuddy_otel.devserver._guard import allowed_host
from databuddy_otel.devserver._staged import NO_BODY_STATUSES, CannedReply

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Headers reply_next() writes itself from its other arguments.
_OWN_HEADERS = {
    "content-length": "size",
    "transfer-encoding": "size",
    "content-type": "content_type",
}


def string_set(argument: str, values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError(f"{argument} must be an iterable of strings; wrap {values!r} in a list")
    result = frozenset(values)
    if not all(isinstance(value, str) and value for value in result):
        raise ValueError(f"{argument} must hold non-empty strings, got {sorted(map(repr, result))}")
    return result or None


def host_names(values: Iterable[str] | None) -> frozenset[str]:
    names = string_set("allowed_hosts", values) or frozenset()
    for name in names:
        allowed_host(name)  # raises ValueError naming a bad entry
    return names


def count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (how many requests), not {n!r}")
    return n


def status(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError(f"status must be an HTTP status code in 200..599, not {value!r}")
    return value


def positive_int(argument: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be an int >= 1, not {value!r}")
    return value


def seconds(argument: str, value: float, *, interval: bool = False) -> float:
    """A number of seconds >= 0; an ``interval`` must also be finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{argument} must be a number >= 0, not {value!r}")
    if interval and not 0 < value < math.inf:
        raise ValueError(f"{argument} must be a finite number > 0, not {value!r}")
    return float(value)


def retry_after(value: float | str | None) -> str | None:
    """The ``Retry-After`` value: a string goes out verbatim, a number as seconds."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError(f"retry_after must not hold line breaks or control bytes: {value!r}")
        return value
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"retry_after must be seconds >= 0 or an HTTP date string, not {value!r}")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def canned_reply(
    *,
    status_code: int,
    body: bytes | str,
    content_type: str | None,
    headers: Mapping[str, str] | None,
    size: int | None,
) -> CannedReply:
    """What ``reply_next`` answers, from its arguments."""
    status(status_code)
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body)
    else:
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    if content_type is not None:
        _header_value("content_type", content_type)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(
            f"size must be a number of bytes >= 0, or None for len(body), not {size!r}"
        )
    if status_code in NO_BODY_STATUSES and (body or size):
        raise ValueError(f"a {status_code} answer has no body; leave body and size out")
    pairs: list[tuple[str, str]] = []
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"headers: {name!r} is not an HTTP header name")
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"headers: set {name} with the {_OWN_HEADERS[name.lower()]} argument")
        pairs.append((name, _header_value(f"headers[{name!r}]", value)))
    return CannedReply(status_code, body, content_type, tuple(pairs), size)


def _header_value(argument: str, value: object) -> str:
    if not isinstance(value, str) or _CONTROL.search(value) or not value.isascii():
        raise ValueError(f"{argument} must be an ASCII string without line breaks, not {value!r}")
    return value
