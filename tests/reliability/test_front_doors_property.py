"""Arbitrary input through every front door: nothing raises, nothing invalid is sent.

The local ingest server is the oracle: a request it refused would show up in
the ``rejected`` counter of the client (or exporter) that sent it.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from databuddy_logging import DatabuddyHandler
from databuddy_logging.structlog import DatabuddyProcessor
from databuddy_otel import Databuddy, DatabuddySpanExporter
from databuddy_otel.devserver import DevServer

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=10)
    | st.datetimes()
    | st.builds(object),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
tags = st.fixed_dictionaries(
    {
        "db_props": st.one_of(
            st.dictionaries(st.text(max_size=140), anything, max_size=55), anything
        )
    },
    optional={
        "db_anonymous_id": anything,
        "db_session_id": anything,
        "db_event_id": anything,
        "db_timestamp": anything,
        "db_namespace": anything,
        "db_source": anything,
    },
)
messages = st.one_of(st.text(max_size=300), st.integers(), st.none())
attribute_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=50),
    st.lists(st.text(max_size=5), max_size=3),
)


def _client(server: DevServer) -> Databuddy:
    return Databuddy(client_id="prop", api_url=server.url, retry_deadline=2, batch_timeout=50)


def _assert_nothing_refused(stats: Any) -> None:
    assert stats.undelivered.get("rejected", 0) == 0, stats


@SETTINGS
@given(message=messages, extra=tags)
def test_logging_handler_never_raises_or_sends_invalid(
    databuddy_server: DevServer, message: Any, extra: dict[str, Any]
) -> None:
    """Any message and db_* extras through DatabuddyHandler: no exception, no refused request."""
    client = _client(databuddy_server)
    handler = DatabuddyHandler(client=client)
    errors: list[logging.LogRecord] = []
    handler.handleError = errors.append  # type: ignore[method-assign]
    logger = logging.Logger("property")
    logger.addHandler(handler)
    logger.info(message, extra=extra)
    client.shutdown(timeout=5)
    assert errors == []
    _assert_nothing_refused(client.stats())


@SETTINGS
@given(event=messages, extra=tags)
def test_structlog_processor_never_raises_or_sends_invalid(
    databuddy_server: DevServer, event: Any, extra: dict[str, Any]
) -> None:
    """Any event and db_* keys through DatabuddyProcessor: the dict comes back, nothing refused."""
    client = _client(databuddy_server)
    log = structlog.wrap_logger(structlog.ReturnLogger(), processors=[DatabuddyProcessor(client)])
    returned = log.info(event, **extra)
    client.shutdown(timeout=5)
    _, event_dict = returned
    assert event_dict.get("event") == event and "db_tracked" in event_dict
    _assert_nothing_refused(client.stats())


@SETTINGS
@given(
    name=st.text(max_size=300),
    attributes=st.dictionaries(st.text(max_size=140), attribute_values, max_size=55),
    ids=st.dictionaries(
        st.sampled_from(
            [
                "databuddy.anonymous_id",
                "databuddy.session_id",
                "databuddy.event_id",
                "databuddy.namespace",
                "databuddy.source",
            ]
        ),
        attribute_values,
    ),
)
def test_span_exporter_never_raises_or_sends_invalid(
    databuddy_server: DevServer, name: str, attributes: dict[str, Any], ids: dict[str, Any]
) -> None:
    """Any tagged span event through DatabuddySpanExporter: no exception, nothing refused."""
    exporter = DatabuddySpanExporter(
        client_id="prop", api_url=databuddy_server.url, retry_deadline=2
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("property").start_as_current_span("work") as span:
        span.add_event(name, {**attributes, **ids, "databuddy.track": True})
    provider.shutdown()
    _assert_nothing_refused(exporter.stats())
