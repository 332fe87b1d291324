"""Arbitrary input through the client never raises and never earns a server refusal.

The local ingest server's validation is the oracle: with batching off, each
event's answer comes back to the caller, so a request the server refused as
invalid would show up as an ``HTTP 4xx`` error.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databuddy_otel import Databuddy, EventResponse
from databuddy_otel.devserver import DevServer

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=20),
    st.datetimes(),
    st.dates(),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.builds(object),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
        st.tuples(children, children),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=12,
)
keys = st.one_of(st.text(max_size=140), st.integers(), st.none(), st.tuples(st.integers()))
properties = st.one_of(
    st.dictionaries(keys, values, max_size=55),
    st.lists(st.integers(), max_size=3),
    st.text(max_size=5),
    st.none(),
)
names = st.one_of(st.text(max_size=300), st.integers(), st.none(), st.binary(max_size=5))
ids = st.one_of(st.none(), st.text(max_size=300), st.integers(), st.floats())
timestamps = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.text(max_size=5),
)


def _check(response: EventResponse) -> None:
    assert isinstance(response, EventResponse)
    if not response.success:
        assert response.error, "a failure must say why"
        assert not response.error.startswith("HTTP 4"), f"server refused: {response.error}"


@SETTINGS
@given(
    name=names,
    props=properties,
    anonymous_id=ids,
    session_id=ids,
    timestamp=timestamps,
    namespace=ids,
)
def test_arbitrary_events_never_raise_or_get_refused(
    databuddy_server: DevServer,
    name: Any,
    props: Any,
    anonymous_id: Any,
    session_id: Any,
    timestamp: Any,
    namespace: Any,
) -> None:
    """Any name, properties, ids and timestamp: a result, never an exception or a 4xx."""
    client = _client(databuddy_server)
    response = client.track(
        {
            "name": name,
            "properties": props,
            "anonymousId": anonymous_id,
            "sessionId": session_id,
            "timestamp": timestamp,
            "namespace": namespace,
        }
    )
    _check(response)


@SETTINGS
@given(
    events=st.lists(
        st.dictionaries(st.sampled_from(["name", "properties", "eventId"]), values), max_size=5
    )
)
def test_arbitrary_batches_never_raise_or_get_refused(
    databuddy_server: DevServer, events: list[dict[str, Any]]
) -> None:
    """batch() with arbitrary entries returns a result and never sends an invalid event."""
    result = _client(databuddy_server).batch(events)
    for response in result.results:
        _check(response)
    assert result.error is None or not result.error.startswith("HTTP 4")


def test_special_floats_and_decimals_are_sent_as_null_or_numbers(
    databuddy_server: DevServer,
) -> None:
    """NaN and infinities never reach the wire as invalid JSON."""
    client = _client(databuddy_server)
    response = client.track(
        name="floats",
        properties={"nan": math.nan, "dnan": decimal.Decimal("NaN"), "big": 1e308 * 10},
    )
    _check(response)
    assert response.success


_clients: dict[str, Databuddy] = {}


def _client(server: DevServer) -> Databuddy:
    client = _clients.get(server.url)
    if client is None:
        _clients.clear()
        client = Databuddy(
            client_id="prop", api_url=server.url, enable_batching=False, retry_deadline=2
        )
        _clients[server.url] = client
    return client
