"""Bad input never raises: it is refused with a clear message, or converted by the rule."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
from typing import Any

import pytest

from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "Event name is required and must be a string"),
        ({"name": ""}, "Event name is required and must be a string"),
        ({"name": 42}, "Event name is required and must be a string"),
        ({"name": "x" * 257}, "Event name too long (max 256 characters)"),
        ({"name": "e", "properties": [1, 2]}, "properties must be a mapping, not list"),
        (
            {"name": "e", "properties": {str(i): i for i in range(51)}},
            "Too many properties (max 50)",
        ),
        ({"name": "e", "properties": {"blob": "x" * 40_000}}, "Properties too large (max 32KB)"),
        ({"name": "e", "properties": {"k" * 129: 1}}, "Property key too long"),
        ({"name": "e", "anonymousId": "a" * 257}, "anonymousId too long (max 256 characters)"),
        ({"name": "e", "namespace": "n" * 65}, "namespace too long (max 64 characters)"),
        ({"name": "e", "timestamp": 12}, "timestamp is before 2000-01-01"),
        ({"name": "e", "timestamp": "yesterday"}, "timestamp 'yesterday' is not an ISO 8601"),
        ({"name": "e", "timestamp": [1]}, "timestamp must be milliseconds, a datetime or"),
    ],
)
def test_invalid_events_are_refused_with_a_reason(
    server: DevServer, make_client: MakeClient, event: dict[str, Any], message: str
) -> None:
    """An event the server would reject returns success=False, says why, and is not sent."""
    client = make_client()
    resp = client.track(event)
    assert not resp.success
    assert resp.error is not None and resp.error.startswith(message)
    client.flush()
    assert server.request_count == 0
    assert client.stats().undelivered == {"invalid": 1}


def test_legacy_name_limit_is_128(make_client: MakeClient) -> None:
    """The legacy generation's shorter name limit is enforced."""
    client = make_client(protocol="legacy")
    assert client.track(name="x" * 128).success
    resp = client.track(name="x" * 129)
    assert resp.error == "Event name too long (max 128 characters)"


def test_name_length_counts_like_javascript(make_client: MakeClient) -> None:
    """Characters outside the BMP count twice, as the server counts them."""
    client = make_client()
    assert client.track(name="😀" * 128).success
    assert not client.track(name="😀" * 129).success


def test_non_json_values_are_converted(server: DevServer, make_client: MakeClient) -> None:
    """datetime, Decimal, UUID, Enum, set, bytes, NaN, objects and cycles follow the rule."""
    cycle: list[Any] = []
    cycle.append(cycle)
    the_uuid = uuid.UUID("12345678-1234-5678-1234-567812345678")

    class Thing:
        def __str__(self) -> str:
            return "a thing"

    client = make_client()
    resp = client.track(
        name="weird",
        properties={
            "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "day": dt.date(2024, 1, 2),
            "price": decimal.Decimal("9.99"),
            "id": the_uuid,
            "color": Color.RED,
            "tags": {"a"},
            "raw": b"bytes\xff",
            "nan": math.nan,
            "inf": math.inf,
            "thing": Thing(),
            "cycle": cycle,
            "tuple": (1, 2),
        },
    )
    assert resp.success, resp.error
    client.flush()
    [event] = server.events()
    assert event["properties"] == {
        "when": "2024-01-02T03:04:05+00:00",
        "day": "2024-01-02",
        "price": 9.99,
        "id": str(the_uuid),
        "color": "red",
        "tags": ["a"],
        "raw": "bytes\ufffd",
        "nan": None,
        "inf": None,
        "thing": "a thing",
        "cycle": ["[Circular]"],
        "tuple": [1, 2],
    }


def test_ints_too_long_for_json_become_their_digits(
    server: DevServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An int past Python's 4,300-digit text limit is sent as its digits; a vast one as a marker."""
    long = -(10**5000) - 7
    client = make_client()
    resp = client.track(
        name="e",
        properties={"long": long, "ok": 2**64, "vast": [7**200_000]},
    )
    assert resp.success, resp.error
    assert client.flush().success
    [event] = server.events()
    props = event["properties"]
    assert props["long"] == "-1" + "0" * 4996 + "0007"
    assert props["ok"] == 2**64
    assert props["vast"] == ["[BigInt]"]
    too_long_key = client.track(name="e", properties={10**4400: "key"})  # type: ignore[dict-item]
    assert (too_long_key.error or "").startswith("Property key too long (max 128 characters)")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_datetime_timestamp_is_converted(server: DevServer, make_client: MakeClient) -> None:
    """A datetime timestamp becomes integer milliseconds."""
    client = make_client()
    when = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
    client.track(name="e", timestamp=when)
    client.flush()
    assert server.events()[0]["timestamp"] == int(when.timestamp() * 1000)


def test_non_string_keys_are_stringified(server: DevServer, make_client: MakeClient) -> None:
    """Property keys that are not strings become their str()."""
    client = make_client()
    client.track(name="e", properties={1: "one", (2, 3): "tuple"})  # type: ignore[dict-item]
    client.flush()
    assert server.events()[0]["properties"] == {"1": "one", "(2, 3)": "tuple"}


def test_wrong_call_shapes_do_not_raise(make_client: MakeClient) -> None:
    """track() with nonsense arguments reports an error instead of raising."""
    client = make_client()
    assert not client.track(42).success  # type: ignore[arg-type]
    assert not client.track({"name": "a"}, name="b").success
    assert not client.track(nme="typo").success
    assert client.track("shorthand").success
