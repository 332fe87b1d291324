"""DatabuddySpanExporter end to end: real TracerProvider + BatchSpanProcessor + dev server."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from databuddy_otel import Undelivered
from databuddy_otel.devserver import DevServer
from databuddy_otel.span_exporter import DatabuddyBaggageProcessor
from tests.conftest import MakeClient
from tests.otel.conftest import MakeSpanExporter, MakeTracerProvider, wait_until

TAG = {"databuddy.track": True}


def batched(make_tracer_provider: MakeTracerProvider, exporter: SpanExporter) -> TracerProvider:
    return make_tracer_provider(BatchSpanProcessor(exporter))


def test_tagged_event_arrives_with_properties_timestamp_and_trace_ids(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """A tagged span event arrives named after the event, with properties, time and trace ids."""
    provider = batched(make_tracer_provider, make_span_exporter())
    with provider.get_tracer("t").start_as_current_span("checkout") as span:
        span.add_event("purchase", {**TAG, "plan": "pro", "seats": 3, "tags": ["a", "b"]})
    provider.force_flush()
    [event] = server.events()
    [recorded] = span.events
    context_ = span.get_span_context()
    assert event["name"] == "purchase"
    assert event["timestamp"] == recorded.timestamp // 1_000_000
    assert event["properties"] == {
        "plan": "pro",
        "seats": 3,
        "tags": ["a", "b"],
        "trace_id": f"{context_.trace_id:032x}",
        "span_id": f"{context_.span_id:016x}",
    }
    assert event["websiteId"] == "test-site"


def test_untagged_events_and_plain_spans_send_nothing(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """Spans without events, untagged events and events tagged other than True send nothing."""
    provider = batched(make_tracer_provider, make_span_exporter())
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("plain"):
        pass
    with tracer.start_as_current_span("noisy") as span:
        span.add_event("log", {"message": "hi"})
        span.add_event("almost", {"databuddy.track": "true"})
        span.add_event("off", {"databuddy.track": False})
    provider.force_flush()
    assert server.request_count == 0


def test_ids_come_from_event_then_span_then_baggage(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """Each id falls back from the event's attributes to the span's, then to the baggage."""
    provider = make_tracer_provider(
        DatabuddyBaggageProcessor(), BatchSpanProcessor(make_span_exporter())
    )
    ctx = baggage.set_baggage("databuddy.anonymous_id", "anon_edge")
    ctx = baggage.set_baggage("databuddy.session_id", "sess_edge", ctx)
    ctx = baggage.set_baggage("databuddy.source", "edge", ctx)
    token = context.attach(ctx)
    try:
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span(
            "s", attributes={"databuddy.session_id": "sess_span"}
        ) as s:
            s.add_event("a", {**TAG, "databuddy.namespace": "billing"})
            s.add_event(
                "b",
                {**TAG, "databuddy.anonymous_id": "anon_event", "databuddy.event_id": "evt-b"},
            )
    finally:
        context.detach(token)
    provider.force_flush()
    events = {e["name"]: e for e in server.events()}
    assert events["a"]["anonymousId"] == "anon_edge"
    assert events["a"]["sessionId"] == "sess_span"
    assert events["a"]["source"] == "edge"
    assert events["a"]["namespace"] == "billing"
    assert events["b"]["anonymousId"] == "anon_event"
    assert events["b"]["eventId"] == "evt-b"
    assert "databuddy.anonymous_id" not in events["b"]["properties"]


def test_baggage_needs_the_baggage_processor(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """Without DatabuddyBaggageProcessor, baggage ids do not reach exported events."""
    provider = batched(make_tracer_provider, make_span_exporter())
    token = context.attach(baggage.set_baggage("databuddy.anonymous_id", "anon_edge"))
    try:
        with provider.get_tracer("t").start_as_current_span("s") as span:
            span.add_event("e", TAG)
    finally:
        context.detach(token)
    provider.force_flush()
    assert server.events()[0]["anonymousId"] is None


def test_baggage_does_not_override_span_attributes_set_at_start(
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """The baggage processor leaves attributes the span was started with alone."""
    provider = make_tracer_provider(DatabuddyBaggageProcessor())
    token = context.attach(baggage.set_baggage("databuddy.anonymous_id", "anon_edge"))
    try:
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("own", attributes={"databuddy.anonymous_id": "a1"}) as a:
            pass
        with tracer.start_as_current_span("inherited") as b:
            pass
    finally:
        context.detach(token)
    assert a.attributes is not None and a.attributes["databuddy.anonymous_id"] == "a1"
    assert b.attributes is not None and b.attributes["databuddy.anonymous_id"] == "anon_edge"


def test_trace_ids_can_be_switched_off(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """include_trace_ids=False sends no trace_id / span_id properties."""
    provider = batched(make_tracer_provider, make_span_exporter(include_trace_ids=False))
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("e", {**TAG, "k": "v"})
    provider.force_flush()
    assert server.events()[0]["properties"] == {"k": "v"}


def test_settings_defaults_fill_namespace_and_source(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """namespace= and source= apply to events that do not set their own."""
    exporter = make_span_exporter(namespace="api", source="backend")
    provider = batched(make_tracer_provider, exporter)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("plain", TAG)
        span.add_event("own", {**TAG, "databuddy.namespace": "jobs"})
    provider.force_flush()
    events = {e["name"]: e for e in server.events()}
    assert (events["plain"]["namespace"], events["plain"]["source"]) == ("api", "backend")
    assert events["own"]["namespace"] == "jobs"


def test_many_events_are_chunked_to_the_wire_limit(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """250 tagged events go out in requests of at most 100 events, none lost."""
    provider = batched(make_tracer_provider, make_span_exporter())
    tracer = provider.get_tracer("t")
    for n in range(25):  # a span keeps at most 128 events by default
        with tracer.start_as_current_span("bulk") as span:
            for i in range(10):
                span.add_event("e", {**TAG, "i": n * 10 + i})
    provider.force_flush()
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(250))
    assert server.request_count == 3


def test_outage_during_export_loses_nothing(
    server: DevServer,
    make_span_exporter: MakeSpanExporter,
    make_tracer_provider: MakeTracerProvider,
) -> None:
    """Events exported while the server answers 503 arrive once it recovers."""
    provider = make_tracer_provider(
        BatchSpanProcessor(make_span_exporter(retry_deadline=10), schedule_delay_millis=20)
    )
    server.set_outage(503)
    tracer = provider.get_tracer("t")
    for i in range(30):
        with tracer.start_as_current_span("s") as span:
            span.add_event("e", {**TAG, "i": i})
    wait_until(lambda: server.request_count >= 2)
    server.set_outage(None)
    events = server.wait_for_events(30, timeout=15)
    assert sorted(e["properties"]["i"] for e in events) == list(range(30))


def test_invalid_events_are_counted_and_the_rest_delivered(
    server: DevServer, make_span_exporter: MakeSpanExporter
) -> None:
    """An event the server would refuse is counted as invalid and reported; others still go."""
    lost: list[Undelivered] = []
    exporter = make_span_exporter(on_undelivered=lost.extend)
    provider = TracerProvider(shutdown_on_exit=False)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("x" * 300, TAG)
        span.add_event("ok", TAG)
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    assert [e["name"] for e in server.events()] == ["ok"]
    assert exporter.stats().undelivered == {"invalid": 1}
    assert [u.reason for u in lost] == ["invalid"]


def test_repeated_event_id_is_sent_once(
    server: DevServer, make_span_exporter: MakeSpanExporter
) -> None:
    """A span exported twice with a caller-chosen event id delivers that event once."""
    exporter = make_span_exporter()
    provider = TracerProvider(shutdown_on_exit=False)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("paid", {**TAG, "databuddy.event_id": "order-1"})
    exporter.export([span])
    exporter.export([span])
    assert [e["eventId"] for e in server.events()] == ["order-1"]
    assert exporter.stats().deduplicated == 1


def test_legacy_protocol(server: DevServer, make_span_exporter: MakeSpanExporter) -> None:
    """protocol='legacy' sends span events to the legacy batch endpoint."""
    exporter = make_span_exporter(protocol="legacy")
    provider = TracerProvider(shutdown_on_exit=False)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("e", {**TAG, "databuddy.anonymous_id": "anon_1"})
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    [event] = server.events()
    assert (event["protocol"], event["anonymousId"]) == ("legacy", "anon_1")


def test_client_reuse_shares_counters_and_leaves_the_client_open(
    server: DevServer, make_client: MakeClient, make_tracer_provider: MakeTracerProvider
) -> None:
    """With a client, events go to its queue and counters; the exporter's shutdown keeps it open."""
    from databuddy_otel.span_exporter import DatabuddySpanExporter

    client = make_client(namespace="shop", batch_timeout=60_000)
    exporter = DatabuddySpanExporter(client)
    provider = batched(make_tracer_provider, exporter)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("from_span", TAG)
    provider.shutdown()
    assert client.stats().queued == 1
    assert client.track(name="after").success
    assert client.flush().success
    assert client.stats().delivered == 2
    assert sorted(e["name"] for e in server.events()) == ["after", "from_span"]
    assert server.events(name="from_span")[0]["namespace"] == "shop"


def test_client_and_settings_together_are_refused(make_client: MakeClient) -> None:
    """Passing client= with connection settings raises, naming the settings."""
    from databuddy_otel.span_exporter import DatabuddySpanExporter

    with pytest.raises(ValueError, match="api_url"):
        DatabuddySpanExporter(client=make_client(), api_url="http://127.0.0.1:1")


def test_export_and_shutdown_race_is_bounded(
    server: DevServer, make_span_exporter: MakeSpanExporter
) -> None:
    """shutdown() during an outage interrupts the retrying export, which returns FAILURE."""
    exporter = make_span_exporter(retry_deadline=30)
    provider = TracerProvider(shutdown_on_exit=False)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.add_event("e", TAG)
    server.set_outage(503)
    results: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export([span])))
    worker.start()
    wait_until(lambda: server.request_count >= 1)
    exporter.shutdown()
    worker.join(timeout=5)
    assert results == [SpanExportResult.FAILURE]
    assert exporter.stats().undelivered == {"shutdown": 1}
