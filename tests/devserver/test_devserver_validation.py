"""The dev server's schema checks (databuddy_otel.devserver._validation), without HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databuddy_otel.devserver._validation import (
    MalformedJSON,
    js_json_length,
    js_length,
    js_number,
    kept_session_id,
    parse_json,
    validate_legacy_event,
    validate_track,
)

NOW = 1_750_000_000_000
# The basket server's limits (docs/protocol.md), pinned as numbers: importing them from
# the code under test would let a wrong limit pass.
MAX_FUTURE_SKEW_MS = 3_600_000
MAX_PROPERTIES_JSON_LENGTH = 32_768
MIN_TIMESTAMP_MS = 946_684_800_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def track_errors(body: object) -> list[str]:
    events, errors = validate_track(body, now_ms=NOW)
    assert not (events and errors)
    return errors


def legacy(raw: object) -> tuple[Any, list[str]]:
    return validate_legacy_event(raw, now_ms=NOW, client_id="c", new_event_id=lambda: "made")


def properties_of_json_length(length: int) -> dict[str, str]:
    """A properties object whose JSON.stringify is exactly ``length`` long."""
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    return {"k": "x" * (length - overhead)}


def test_js_length_counts_utf16_code_units():
    """Characters outside the BMP count twice, like JavaScript's String.length."""
    assert js_length("abc") == 3
    assert js_length("é") == 1
    assert js_length("😀") == 2
    assert js_length("\ud800") == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (1.5, "1.5"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.25e-7, "1.25e-7"),
        (-123.456, "-123.456"),
        (float("inf"), "null"),
    ],
)
def test_js_number_matches_javascript_string_conversion(value, expected):
    """Floats are written as JavaScript's Number#toString writes them."""
    assert js_number(value) == expected


@given(json_values)
def test_js_json_length_equals_compact_json_length(value):
    """Without floats, the length matches Python's compact non-ASCII-preserving JSON."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert js_json_length(value) == js_length(text)


def test_js_json_length_escapes_like_json_stringify():
    """Controls, quotes and lone surrogates take their escaped length; big ints become doubles."""
    assert js_json_length("\n") == 4
    assert js_json_length("\x01") == 8
    assert js_json_length('"') == 4
    assert js_json_length("\udc00") == 8
    assert js_json_length(2**64) == len("18446744073709552000")
    assert js_json_length([1.0, 2.5]) == len("[1,2.5]")


@pytest.mark.parametrize("text", [b"", b"{", b"NaN", b"[Infinity]", b"\xff{}", b"[" * 100_000])
def test_parse_json_rejects_what_json_parse_rejects(text):
    """Malformed, non-UTF-8, NaN/Infinity and absurdly deep documents are malformed."""
    with pytest.raises(MalformedJSON):
        parse_json(text)


@given(json_values)
@settings(max_examples=200)
def test_validate_track_never_raises(body):
    """Any JSON document gets events or errors, never an exception."""
    validate_track(body, now_ms=NOW)
    validate_track([body], now_ms=NOW)
    legacy(body)


def test_track_event_with_every_field_is_kept():
    """A full 2.6.x event keeps every schema field, drops unknown keys and keeps eventId."""
    raw = {
        "name": "signup",
        "namespace": "auth",
        "timestamp": NOW - 5,
        "properties": {"plan": "pro"},
        "anonymousId": "anon_1",
        "sessionId": "sess_1",
        "websiteId": "site",
        "source": "server",
        "profileId": "p1",
        "anonymizeVisitorIds": True,
        "eventId": "e1",
        "unknown": 1,
    }
    events, errors = validate_track(raw, now_ms=NOW)
    assert errors == []
    (event,) = events
    assert (event.name, event.namespace, event.source) == ("signup", "auth", "server")
    assert (event.anonymous_id, event.session_id, event.website_id) == ("anon_1", "sess_1", "site")
    assert (event.timestamp, event.properties, event.event_id) == (NOW - 5, {"plan": "pro"}, "e1")


def test_track_defaults_missing_fields():
    """Missing timestamp is now, missing properties {}, nulls are absent, websiteId falls back."""
    raw = {"name": "a", "namespace": None, "anonymousId": None, "sessionId": None}
    (event,), _ = validate_track(raw, now_ms=NOW, default_website_id="query")
    assert (event.timestamp, event.properties, event.website_id) == (NOW, {}, "query")
    assert event.namespace is event.anonymous_id is event.session_id is event.event_id is None


def at_most(field: str, n: int) -> str:
    return f"{field}: String must contain at most {n} character(s)"


def with_name(**fields: Any) -> dict[str, Any]:
    return {"name": "a", **fields}


TOO_MANY = {str(i): i for i in range(51)}
HIGH = NOW + MAX_FUTURE_SKEW_MS


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        ({}, "name: Required"),
        ({"name": None}, "name: Expected string, received null"),
        ({"name": 5}, "name: Expected string, received number"),
        ({"name": ""}, "name: String must contain at least 1 character(s)"),
        ({"name": "x" * 257}, at_most("name", 256)),
        ({"name": "😀" * 129}, at_most("name", 256)),
        (with_name(namespace="x" * 65), at_most("namespace", 64)),
        (with_name(source="x" * 65), at_most("source", 64)),
        (with_name(source=["s"]), "source: Expected string, received array"),
        (with_name(anonymousId="x" * 257), at_most("anonymousId", 256)),
        (with_name(sessionId="x" * 257), at_most("sessionId", 256)),
        (with_name(websiteId="x" * 256), at_most("websiteId", 255)),
        (with_name(websiteId=7), "websiteId: Expected string, received number"),
        (with_name(properties=None), "properties: Expected object, received null"),
        (with_name(properties=[1]), "properties: Expected object, received array"),
        (with_name(properties="x"), "properties: Expected object, received string"),
        (with_name(properties=TOO_MANY), "properties: Too many properties (max 50)"),
        (
            with_name(properties={"k" * 129: 1}),
            "properties: Property key must contain at most 128 character(s)",
        ),
        (
            with_name(properties=properties_of_json_length(32_769)),
            "properties: Properties too large (max 32KB)",
        ),
        (with_name(timestamp=1.5), "timestamp: Expected integer, received float"),
        (with_name(timestamp=True), "timestamp: Expected number, received boolean"),
        (with_name(timestamp="1"), "timestamp: Expected number, received string"),
        (with_name(timestamp=None), "timestamp: Expected number, received null"),
        (
            with_name(timestamp=MIN_TIMESTAMP_MS - 1),
            f"timestamp: Number must be greater than or equal to {MIN_TIMESTAMP_MS}",
        ),
        (with_name(timestamp=HIGH + 1), f"timestamp: Number must be less than or equal to {HIGH}"),
    ],
)
def test_track_rule_violations_are_reported(event, detail):
    """Each /track rule has its own zod-worded detail, path-prefixed."""
    assert track_errors(event) == [detail]
    assert track_errors([{"name": "ok"}, event]) == [f"1.{detail}"]


@pytest.mark.parametrize(
    "event",
    [
        {"name": "x" * 256},
        {"name": "😀" * 128},
        {"name": "a", "namespace": "x" * 64, "source": "x" * 64, "websiteId": "x" * 255},
        {"name": "a", "anonymousId": "x" * 256, "sessionId": "x" * 256},
        {"name": "a", "properties": {str(i): i for i in range(50)}},
        {"name": "a", "properties": {"k" * 128: 1}},
        {"name": "a", "properties": properties_of_json_length(MAX_PROPERTIES_JSON_LENGTH)},
        {"name": "a", "timestamp": MIN_TIMESTAMP_MS},
        {"name": "a", "timestamp": NOW + MAX_FUTURE_SKEW_MS},
        {"name": "a", "timestamp": float(NOW)},
    ],
)
def test_track_limits_are_inclusive(event):
    """Values exactly at each limit are accepted."""
    assert track_errors(event) == []


def test_track_properties_size_counts_utf16_not_bytes():
    """32,768 units of 'é' (65,536 UTF-8 bytes) still fit; astral characters count twice."""
    overhead = len('{"k":""}')
    assert track_errors({"name": "a", "properties": {"k": "é" * (32_768 - overhead)}}) == []
    too_big = {"k": "😀" * ((32_768 - overhead) // 2 + 1)}
    assert track_errors({"name": "a", "properties": too_big}) != []


def test_track_float_timestamp_is_stored_as_int():
    """A whole-number float timestamp becomes an int."""
    (event,), _ = validate_track({"name": "a", "timestamp": 1.75e12}, now_ms=NOW)
    assert event.timestamp == 1_750_000_000_000
    assert isinstance(event.timestamp, int)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "Array must contain at least 1 element(s)"),
        ([{"name": "a"}] * 101, "Array must contain at most 100 element(s)"),
        ("x", "Expected object or array, received string"),
        (None, "Expected object or array, received null"),
        ([{"name": "a"}, 3], "1: Expected object, received number"),
    ],
)
def test_track_body_shape_errors(body, detail):
    """The body must be one object or an array of 1 to 100 objects."""
    assert track_errors(body) == [detail]


def test_track_batch_is_all_or_nothing():
    """One bad event in a batch fails the whole batch, with every error listed."""
    events, errors = validate_track([{"name": "a"}, {"name": ""}, {}], now_ms=NOW)
    assert events == []
    assert errors == ["1.name: String must contain at least 1 character(s)", "2.name: Required"]


@pytest.mark.parametrize(
    ("session_id", "kept"),
    [
        ("sess_abc-123", "sess_abc-123"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("has space", None),
        ("dots.are.out", None),
        ("trailing\n", None),
        ("", None),
        (None, None),
    ],
)
def test_session_ids_not_matching_the_pattern_are_dropped(session_id, kept):
    """Only ids matching SESSION_ID_PATTERN up to 128 chars are kept."""
    assert kept_session_id(session_id) == kept


def test_legacy_event_as_sdk_2_3_sends_it():
    """The 2.3.x body is accepted; nulls are absent; the client id becomes websiteId."""
    raw = {
        "type": "custom",
        "name": "x",
        "eventId": "evt-1",
        "anonymousId": None,
        "sessionId": None,
        "timestamp": NOW,
        "properties": {"a": 1},
    }
    event, errors = legacy(raw)
    assert errors == []
    assert (event.name, event.event_id, event.timestamp) == ("x", "evt-1", NOW)
    assert (event.anonymous_id, event.session_id, event.website_id) == (None, None, "c")
    assert event.properties == {"a": 1}


def test_legacy_defaults_and_server_made_event_id():
    """Without eventId the server makes one; null timestamp/properties mean now and {}."""
    event, errors = legacy({"type": "custom", "name": "x", "timestamp": None, "properties": None})
    assert errors == []
    assert (event.event_id, event.timestamp, event.properties) == ("made", NOW, {})


def custom(**fields: Any) -> dict[str, Any]:
    return {"type": "custom", "name": "x", **fields}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "x"}, ["type: Required"]),
        ({"type": "track", "name": "x"}, ['type: Invalid literal value, expected "custom"']),
        ({"type": "custom"}, ["name: Required"]),
        (custom(name="x" * 129), [at_most("name", 128)]),
        (custom(eventId="e" * 513), [at_most("eventId", 512)]),
        (custom(eventId=None), ["eventId: Expected string, received null"]),
        (custom(anonymousId="a" * 257), [at_most("anonymousId", 256)]),
        (custom(timestamp=1.5), ["timestamp: Expected integer, received float"]),
        (custom(properties=[]), ["properties: Expected object, received array"]),
        (custom(properties=TOO_MANY), ["properties: Too many properties (max 50)"]),
        ([], ["Expected object, received array"]),
    ],
)
def test_legacy_rule_violations_are_reported(raw, expected):
    """Each legacy rule has its own error, relative to the event."""
    event, errors = legacy(raw)
    assert event is None
    assert errors == expected


def test_legacy_limits_are_inclusive():
    """name 128 and eventId 512 are accepted; any integer timestamp is."""
    raw = {"type": "custom", "name": "x" * 128, "eventId": "e" * 512, "timestamp": 5}
    event, errors = legacy(raw)
    assert errors == []
    assert event.timestamp == 5
