"""How property values become JSON.

The rule, applied everywhere an event is serialized (documented in
docs/configuration.md, "Values JSON cannot encode"):

========================  =========================================
value                     sent as
========================  =========================================
``datetime``, ``date``,   ISO 8601 string (``isoformat()``)
``time``
``Decimal``               number when finite, else string
``UUID``                  string
``Enum``                  its ``value``, converted by this same rule
``set``, ``frozenset``    array (iteration order)
other mappings            object
``tuple``                 array
``bytes``, ``bytearray``  text decoded as UTF-8, bad bytes replaced
NaN, +/-Infinity          ``null``
an int too long for text  its decimal digits as a string (past
                          4,300 digits, Python's limit); past
                          100,000 digits the string ``"[BigInt]"``
a reference cycle         the string ``"[Circular]"``
nesting past 32 levels    the string ``"[MaxDepth]"``
a non-string key          ``str(key)``
anything else             ``str(value)`` (``repr`` if ``str`` fails)
========================  =========================================

Serialization never raises: the fast path is the C encoder; anything it
refuses goes through :func:`sanitize` first.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import json
import json.encoder
import math
from collections.abc import Callable, Mapping
from typing import Any

MAX_DEPTH = 32

#: Longest int written out digit by digit; a longer one is ``"[BigInt]"``.
MAX_INT_DIGITS = 100_000
# An int of this many bits has at most MAX_INT_DIGITS digits (log2(10) < 3.3220).
_MAX_INT_BITS = int(MAX_INT_DIGITS * 3.3219)


def _default(value: Any) -> Any:
    """Convert one value the C encoder cannot handle (see the module table)."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Mapping):  # the C encoder takes only real dicts
        return dict(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return _text(value)


def _missing_c_encoder(*args: Any) -> Callable[[Any, int], Any]:
    # Interpreters without the _json accelerator: same output, pure Python.
    encoder = json.JSONEncoder(default=_default, allow_nan=False, separators=(",", ":"))
    return lambda value, _level: encoder.iterencode(value)


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<unrepresentable {type(value).__name__}>"


#: JSON string literal for a ``str`` (ASCII only; lone surrogates escaped).
quote: Callable[[str], str] = json.encoder.encode_basestring_ascii

# The C encoder, built once (``JSONEncoder.encode`` rebuilds it on every call).
# No cycle markers: a cycle ends in RecursionError and takes the slow path.
_make_encoder: Callable[..., Callable[[Any, int], Any]] = (
    getattr(json.encoder, "c_make_encoder", None) or _missing_c_encoder
)
_iterencode = _make_encoder(None, _default, quote, None, ":", ",", False, False, False)


def dumps(value: Any) -> str:
    """Serialize ``value`` to compact ASCII JSON by the module's rule; never raises."""
    try:
        return "".join(_iterencode(value, 0))
    except (ValueError, TypeError, RecursionError):
        return "".join(_iterencode(sanitize(value), 0))


def sanitize(value: Any) -> Any:
    """Return a copy of ``value`` made only of JSON types, by the module's rule."""
    return _walk(value, 0, set())


def _walk(value: Any, depth: int, seen: set[int]) -> Any:
    if type(value) is int:
        return _number(value)
    if value is None or isinstance(value, (str, bool, int)):
        # ``bool`` and ``int`` subclasses (IntEnum) keep their number.
        return value if type(value) in (str, bool) or value is None else _walk_enum(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return "[MaxDepth]"
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if id(value) in seen:
            return "[Circular]"
        seen.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {
                    k if isinstance(k, str) else _key(k): _walk(v, depth + 1, seen)
                    for k, v in list(value.items())
                }
            return [_walk(v, depth + 1, seen) for v in list(value)]
        except Exception:
            return _text(value)
        finally:
            seen.discard(id(value))
    try:
        converted = _default(value)
    except Exception:
        return _text(value)
    if converted is value or isinstance(converted, str):
        return converted
    return _walk(converted, depth + 1, seen)


def _walk_enum(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _walk(value.value, 0, set())
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    return _number(int(value))


def _number(value: int) -> int | str:
    """``value`` itself, or its digits as text when JSON encoding would refuse it."""
    try:
        str(value)
        return value
    except ValueError:  # longer than sys.get_int_max_str_digits()
        return _digits(value)


def _digits(value: int) -> str:
    # Decimal converts without Python's int-to-text limit (which guards str(int)).
    if value.bit_length() > _MAX_INT_BITS:
        return "[BigInt]"
    return str(decimal.Decimal(value))


def _key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, int) and not isinstance(key, bool):
        number = _number(int(key))
        return number if isinstance(number, str) else str(number)
    if key is None or isinstance(key, (bool, float)):
        return json.dumps(key)
    return _text(key)
